// The planner page: the request form, the live job, the plan, what-ifs and the frontier.
(function (WM) {
  "use strict";
  const { el, fmt, api } = WM;
  const t = (k, v) => WM.t(k, v);
  const $ = (id) => document.getElementById(id);
  const fixtures = JSON.parse($("fixture-data").textContent);
  const state = { template: null, job: null, context: null, partners: null, comparison: null, frontier: null };
  // How long a cancelled job's kept plan may take to be stored (the API's own test allows 15 s).
  const KEPT_PLAN_WAIT_MS = 20000;

  function notify(message) {
    const box = $("notice");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function fail(error) {
    if (error instanceof api.ApiError && error.status === 401) {
      notify(t("needKey") + " (" + error.message + ")");
      $("api-key").focus();
    } else notify(error instanceof api.ApiError ? error.describe() : String(error));
  }

  // -- the request form ------------------------------------------------------------------

  function currentFixture() {
    return fixtures.find((f) => f.name === $("fixture").value);
  }

  function loadTemplate(scenario) {
    state.template = JSON.parse(JSON.stringify(scenario || { resources: [], tiers: [] }));
    drawRequestFields();
    $("request-name").value = state.template.name || "";
    $("objective").value = state.template.objective || "max_attainment";
    const options = state.template.options || {};
    $("time-limit").value = options.time_limit_s || 60;
    $("plan-count").value = options.plans || 1;
    $("confidence").value = options.confidence || "";
  }

  function drawRequestFields() {
    const tpl = state.template;
    $("budget-fields").replaceChildren(...tpl.resources.flatMap((r, i) => [
      el("label", { for: "budget-" + i }, t("budgetFor", { name: r.name, unit: r.unit || "" })),
      el("input", { id: "budget-" + i, type: "number", min: "0", step: "any", inputmode: "numeric",
        value: r.budget === null || r.budget === undefined ? "" : String(r.budget), placeholder: t("unlimited"),
        "aria-describedby": "budget-hint-" + i, oninput: () => budgetHint(i) }),
      el("output", { id: "budget-hint-" + i, class: "hint", for: "budget-" + i }),
    ]));
    tpl.resources.forEach((r, i) => budgetHint(i));
    $("target-fields").replaceChildren(...tpl.tiers.flatMap((tier, i) => [
      el("label", { for: "target-" + i }, t("targetFor", { name: tier.name, gmv: fmt.money(tier.min_gmv) })),
      el("input", { id: "target-" + i, type: "number", min: "0", step: "1", inputmode: "numeric", value: String(tier.target) }),
    ]));
  }

  // The budget as a planner reads it ("¥12M", "1B impressions") next to the raw number.
  function budgetHint(i) {
    const input = $("budget-" + i);
    const unit = state.template.resources[i].unit;
    $("budget-hint-" + i).textContent = input.value === "" ? t("unlimited") : fmt.amount(Number(input.value), unit);
  }

  function relabelRequestFields() {
    if (!state.template) return;
    state.template.resources.forEach((r, i) => {
      document.querySelector(`label[for="budget-${i}"]`).textContent = t("budgetFor", { name: r.name, unit: r.unit || "" });
      $("budget-" + i).placeholder = t("unlimited");
      budgetHint(i);
    });
    state.template.tiers.forEach((tier, i) => {
      document.querySelector(`label[for="target-${i}"]`).textContent = t("targetFor", { name: tier.name, gmv: fmt.money(tier.min_gmv) });
    });
  }

  function buildRequest() {
    const request = JSON.parse(JSON.stringify(state.template));
    request.resources.forEach((r, i) => {
      const v = $("budget-" + i).value;
      r.budget = v === "" ? null : Number(v);
    });
    request.tiers.forEach((tier, i) => { tier.target = Math.round(Number($("target-" + i).value)); });
    // The name is the programme an adopted plan belongs to.
    request.name = $("request-name").value.trim();
    request.objective = $("objective").value;
    request.options = Object.assign({}, request.options, {
      time_limit_s: Number($("time-limit").value) || 60,
      plans: Number($("plan-count").value) || 1,
    });
    if (!$("confidence").hidden && $("confidence").value !== "") request.options.confidence = Number($("confidence").value);
    else delete request.options.confidence;
    return request;
  }

  async function submit(event) {
    event.preventDefault();
    notify("");
    const request = buildRequest();
    let body;
    if ($("source-upload").checked) {
      const partners = $("partners-file").files[0];
      if (!partners) { notify(t("chooseFile")); $("partners-file").focus(); return; }
      delete request.partners;
      body = new FormData();
      body.append("partners", partners);
      const packages = $("packages-file").files[0];
      if (packages) body.append("packages", packages);
      body.append("request", JSON.stringify(request));
    } else {
      request.partners = { fixture: $("fixture").value };
      body = request;
    }
    $("solve").disabled = true;
    try {
      const submitted = await api.request("POST", "/v1/allocations", body);
      state.context = {
        id: submitted.id, request,
        fixture: $("source-fixture").checked ? $("fixture").value : null,
        units: Object.fromEntries(request.resources.map((r) => [r.name, r.unit])),
        resources: request.resources.map((r) => ({ name: r.name, unit: r.unit })),
        tiers: request.tiers.map((tier) => ({ name: tier.name, target: tier.target })),
      };
      await follow(submitted.id);
    } catch (error) {
      fail(error);
    } finally {
      $("solve").disabled = false;
    }
  }

  // -- the running job -------------------------------------------------------------------

  function showProgress(job, startedAt) {
    const p = job.progress || {};
    $("progress-status").textContent = t(job.status);
    $("progress-message").textContent = p.message || "—";
    $("progress-best").textContent = p.best_objective !== undefined ? fmt.compact(p.best_objective) : "—";
    $("progress-bound").textContent = p.best_bound !== undefined ? fmt.compact(p.best_bound) : "—";
    $("progress-gap").textContent = p.gap !== undefined ? fmt.percent(p.gap, 3) : "—";
    // Figures the engine has not reported stay out of sight rather than showing dashes.
    document.querySelectorAll("#progress dt[data-figure]").forEach((dt) => {
      const dd = $(dt.dataset.figure);
      dt.hidden = dd.hidden = dd.textContent === "—";
    });
    $("progress-elapsed").textContent = fmt.seconds(p.elapsed_s !== undefined ? p.elapsed_s : elapsed(job, startedAt));
    $("cancel-job").disabled = api.FINAL.includes(job.status);
  }

  // Seconds the job has been running by the server's clock (queued time excluded); the
  // page's own clock only when the server's is not usable.
  function elapsed(job, startedAt) {
    const start = Date.parse(job.started_at || "");
    const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    const seconds = (end - start) / 1000;
    return Number.isFinite(seconds) && seconds >= 0 ? seconds : (Date.now() - startedAt) / 1000;
  }

  async function follow(id) {
    $("progress-section").hidden = false;
    $("plan-section").hidden = true;
    $("whatif-section").hidden = true;
    $("frontier-section").hidden = true;
    const startedAt = Date.now();
    let latest = null;
    // The clock ticks between polls, so a long solve visibly goes on.
    const ticker = setInterval(() => { if (latest) showProgress(latest, startedAt); }, 250);
    let job;
    try {
      job = await api.poll("/v1/allocations/" + id, (j) => { latest = j; showProgress(j, startedAt); });
    } finally {
      clearInterval(ticker);
    }
    if (job.status === "cancelled" && (job.progress || {}).best_objective !== undefined) {
      job = await keptPlans(id, job);
    }
    state.job = job;
    const kept = job.status === "cancelled" && job.plans && job.plans.length > 0;
    if (job.status !== "succeeded" && !kept) {
      notify(t(job.status) + (job.error ? ": " + job.error : ""));
      return;
    }
    state.partners = await partnerInfo(state.context);
    showPlans(job);
    if (kept) {
      // The best plan found before the cancel: readable and downloadable, but not a
      // finished result to adopt or to start what-ifs from (the API refuses both).
      const gap = (job.plans[0].solver || {}).mip_gap;
      notify(t("cancelledKept", { gap: gap === undefined || gap === null ? "—" : fmt.percent(gap, 3) }));
      $("adopt-row").hidden = true;
      await showDownloads();
    } else {
      await showExtras();
    }
    $("plan-heading").scrollIntoView({ block: "start" });
    $("plan-heading").focus({ preventScroll: true });
  }

  // Names and attributes of the job's partners, from its stored request.
  async function partnerInfo(context) {
    try {
      const list = await api.request("GET", `/web/allocations/${context.id}/partners.json`);
      return new Map(list.map((p) => [p.id, p]));
    } catch (error) {
      return new Map();  // the plan reads fine without names
    }
  }

  // -- the plan --------------------------------------------------------------------------

  function selectedPlan() {
    const rank = Number($("plan-rank").value);
    return state.job.plans.find((p) => p.rank === rank) || state.job.plans[0];
  }

  function showPlans(job) {
    $("plan-section").hidden = false;
    $("plan-rank").replaceChildren(...job.plans.map((p) => el("option", { value: String(p.rank) },
      `${p.rank}${p.label ? " — " + p.label : ""}`)));
    drawPlan();
  }

  function drawPlan() {
    if (!state.job || !state.job.plans || !state.job.plans.length) return;
    const plan = selectedPlan();
    const base = `/v1/allocations/${state.job.id}/plans/${plan.rank}`;
    $("download-csv").href = base + ".csv";
    $("download-csv").dataset.filename = `${state.job.id}-plan-${plan.rank}.csv`;
    $("download-report").href = `/web/allocations/${state.job.id}/report.html`;
    $("download-report").dataset.filename = `${state.job.id}-report.html`;
    $("download-csv-all").href = base + ".csv?all=1";
    $("download-csv-all").dataset.filename = `${state.job.id}-plan-${plan.rank}-all.csv`;
    $("download-xlsx").href = base + ".xlsx";
    $("download-xlsx").dataset.filename = `${state.job.id}-plan-${plan.rank}.xlsx`;
    WM.adoption.refresh(state.job, plan.rank);
    WM.plan.render($("plan-view"), plan, { units: state.context.units, partners: state.partners });
  }

  // A cancelled job stores the plan its engine had when it stopped, moments after the
  // cancel itself: wait for it (as long as a stopping solve may take), else go on without.
  async function keptPlans(id, job) {
    const deadline = Date.now() + KEPT_PLAN_WAIT_MS;
    while (!(job.plans && job.plans.length) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      job = await api.request("GET", "/v1/allocations/" + id);
    }
    return job;
  }

  async function showDownloads() {
    $("download-xlsx").hidden = !(await api.has("/v1/allocations/{}/plans/{}.xlsx"));
    $("download-csv-all").hidden = !(await api.hasParam("/v1/allocations/{}/plans/{}.csv", "all"));
  }

  async function showExtras() {
    await showDownloads();
    const adoptable = await api.has("/v1/allocations/{}/plans/{}/adopt");
    $("adopt-row").hidden = !adoptable;
    if (adoptable) WM.adoption.refresh(state.job, selectedPlan().rank);
    $("whatif-section").hidden = false;
    if (!$("scenario-list").children.length) WM.whatif.addScenario($("scenario-list"), state.context);
    if (await api.has("/v1/frontiers")) {
      $("frontier-section").hidden = false;
      $("frontier-resource").replaceChildren(...state.context.resources.map((r) => el("option", { value: r.name }, r.name)));
    }
  }

  async function downloadLink(event) {
    event.preventDefault();
    const link = event.currentTarget;
    try { await api.download(link.getAttribute("href"), link.dataset.filename); } catch (error) { fail(error); }
  }

  async function adopt() {
    notify("");
    try { await WM.adoption.adopt(state.job, selectedPlan().rank); } catch (error) { fail(error); }
  }

  // -- what-if and frontier --------------------------------------------------------------

  async function compare() {
    notify("");
    const scenarios = WM.whatif.collect($("scenario-list"), state.context);
    if (!scenarios.length) return;
    $("compare").disabled = true;
    try {
      const submitted = await api.request("POST", "/v1/comparisons", { base: { allocation_id: state.job.id }, scenarios });
      const result = await api.poll("/v1/comparisons/" + submitted.id, (job) => {
        const p = job.progress || {};
        $("comparison-progress").textContent = t(job.status) + (p.scenarios_total
          ? " — " + t("scenariosDone", { done: p.scenarios_done, total: p.scenarios_total }) : "");
      });
      if (result.status !== "succeeded") notify(t(result.status) + (result.error ? ": " + result.error : ""));
      else {
        state.comparison = result;
        WM.whatif.render($("comparison-view"), result, state.context);
        const link = $("download-comparison-report");
        link.href = `/web/comparisons/${result.id}/report.html`;
        link.dataset.filename = `${result.id}-comparison.html`;
        link.hidden = false;
        const xlsx = $("download-comparison-xlsx");
        xlsx.href = `/v1/comparisons/${result.id}.xlsx`;
        xlsx.dataset.filename = `${result.id}-comparison.xlsx`;
        xlsx.hidden = !(await api.has("/v1/comparisons/{}.xlsx"));
      }
    } catch (error) {
      fail(error);
    } finally {
      $("compare").disabled = false;
    }
  }

  async function drawFrontier() {
    notify("");
    const multipliers = $("frontier-multipliers").value.split(/[,\s]+/).filter(Boolean).map(Number);
    const resource = $("frontier-resource").value;
    $("draw-frontier").disabled = true;
    try {
      const submitted = await api.request("POST", "/v1/frontiers", { base: { allocation_id: state.job.id }, resource, multipliers });
      const result = await api.poll("/v1/frontiers/" + submitted.id, (job) => {
        const p = job.progress || {};
        $("frontier-progress").textContent = t(job.status) + (p.points_total
          ? " — " + t("pointsDone", { done: p.points_done, total: p.points_total }) : "");
      });
      $("frontier-progress").textContent = "";
      if (result.status !== "succeeded") notify(t(result.status) + (result.error ? ": " + result.error : ""));
      else { state.frontier = { points: result.points || [], resource }; renderFrontier(); }
    } catch (error) {
      fail(error);
    } finally {
      $("draw-frontier").disabled = false;
    }
  }

  function renderFrontier() {
    if (!state.frontier) return;
    const { points, resource } = state.frontier;
    const unit = state.context.units[resource];
    const chart = el("div", { class: "chart", "data-chart": "frontier" });
    $("frontier-view").replaceChildren(chart, WM.frontierTable(points, unit, { class: "data", id: "frontier-table" }));
    WM.charts.frontier(chart, points.filter((p) => p.achieved), resource, state.context.tiers);
  }

  // -- wiring ----------------------------------------------------------------------------

  async function detectConfidence() {
    const { spec } = await api.features();
    const options = (((spec.components || {}).schemas || {}).Options || {}).properties || {};
    const supported = "confidence" in options;
    $("confidence").hidden = !supported;
    document.querySelector('label[for="confidence"]').hidden = !supported;
  }

  function relabelFixtures() {
    [...$("fixture").options].forEach((o) => { o.textContent = t("fixtureOption", { name: o.value, count: o.dataset.partners }); });
  }

  function relabel() {
    relabelRequestFields();
    relabelFixtures();
    const f = currentFixture();
    $("fixture-description").textContent = f ? f.description : "";
    if (state.job && !$("plan-section").hidden) {
      const rank = $("plan-rank").value;
      drawPlan();
      $("plan-rank").value = rank;
    }
    if (state.comparison) WM.whatif.render($("comparison-view"), state.comparison, state.context);
    renderFrontier();
  }

  function init() {
    WM.applyLabels();
    relabelFixtures();
    $("api-key").value = api.key();
    $("api-key").addEventListener("input", () => api.setKey($("api-key").value.trim()));
    $("forget-key").addEventListener("click", () => { api.setKey(""); $("api-key").value = ""; });
    $("lang-switch").addEventListener("click", () => WM.setLanguage(WM.lang() === "zh" ? "en" : "zh"));
    WM.onLanguage.push(relabel);
    document.querySelectorAll('input[name="source"]').forEach((radio) => radio.addEventListener("change", () => {
      const upload = $("source-upload").checked;
      $("upload-fields").hidden = !upload;
      $("fixture-fields").hidden = upload;
    }));
    $("fixture").addEventListener("change", () => {
      const f = currentFixture();
      $("fixture-description").textContent = f ? f.description : "";
      loadTemplate(f && f.scenario);
    });
    $("scenario-file").addEventListener("change", async () => {
      const file = $("scenario-file").files[0];
      if (!file) return;
      try { loadTemplate(JSON.parse(await file.text())); } catch (error) { notify(String(error)); }
    });
    $("request-form").addEventListener("submit", submit);
    $("cancel-job").addEventListener("click", async () => {
      if (!state.context) return;
      try { await api.request("DELETE", "/v1/allocations/" + state.context.id); } catch (error) { fail(error); }
    });
    $("plan-rank").addEventListener("change", drawPlan);
    $("download-csv").addEventListener("click", downloadLink);
    $("download-xlsx").addEventListener("click", downloadLink);
    $("download-csv-all").addEventListener("click", downloadLink);
    $("download-comparison-xlsx").addEventListener("click", downloadLink);
    $("download-report").addEventListener("click", downloadLink);
    $("download-comparison-report").addEventListener("click", downloadLink);
    $("adopt").addEventListener("click", adopt);
    $("add-scenario").addEventListener("click", () => WM.whatif.addScenario($("scenario-list"), state.context).querySelector("input").focus());
    $("compare").addEventListener("click", compare);
    $("draw-frontier").addEventListener("click", drawFrontier);
    const f = currentFixture();
    $("fixture-description").textContent = f ? f.description : "";
    loadTemplate(f && f.scenario);
    detectConfidence();
  }

  init();
})(window.WM = window.WM || {});
