// What-if scenarios against a solved job (POST /v1/comparisons with the job as the base)
// and the comparison shown side by side.
(function (WM) {
  "use strict";
  const { el, fmt } = WM;
  const t = (k, v) => WM.t(k, v);
  let counter = 0;

  function numberField(id, label, value, step) {
    return [el("div", {}, [el("label", { for: id }, label),
      el("input", { id, type: "number", min: "0", step: step || "0.05", value: String(value), inputmode: "decimal" })])];
  }

  // One editable scenario; `context` holds the base request's resources and tiers.
  function addScenario(list, context) {
    counter += 1;
    const id = "sc" + counter;
    const fields = [el("div", {}, [
      el("label", { for: id + "-name" }, t("scenarioName")),
      el("input", { id: id + "-name", type: "text", value: "scenario " + counter, class: "scenario-name" })])];
    context.resources.forEach((r, i) => fields.push(...numberField(`${id}-budget-${i}`, t("budgetTimes", { name: r.name }), 1)));
    context.tiers.forEach((tier, i) => fields.push(...numberField(`${id}-target-${i}`, t("targetOf", { name: tier.name }), tier.target, "1")));
    fields.push(...numberField(id + "-baseline", t("baselineTimes"), 1), ...numberField(id + "-uplift", t("upliftTimes"), 1));
    const box = el("fieldset", { class: "scenario", "data-scenario": id }, [
      el("legend", {}, t("scenario") + " " + counter),
      el("div", { class: "pairs" }, fields),
      el("button", { type: "button", onclick: () => box.remove() }, t("removeScenario")),
    ]);
    list.append(box);
    return box;
  }

  function value(id) {
    const input = document.getElementById(id);
    return input && input.value !== "" ? Number(input.value) : null;
  }

  // The scenarios as the API takes them: only what differs from the base.
  function collect(list, context) {
    return [...list.querySelectorAll("fieldset.scenario")].map((box) => {
      const id = box.dataset.scenario;
      const changes = {};
      context.resources.forEach((r, i) => {
        const m = value(`${id}-budget-${i}`);
        if (m !== null && m !== 1) (changes.budgets = changes.budgets || {})[r.name] = "x" + m;
      });
      context.tiers.forEach((tier, i) => {
        const n = value(`${id}-target-${i}`);
        if (n !== null && n !== tier.target) (changes.targets = changes.targets || {})[tier.name] = Math.round(n);
      });
      const baseline = value(id + "-baseline"), uplift = value(id + "-uplift");
      if ((baseline !== null && baseline !== 1) || (uplift !== null && uplift !== 1)) {
        changes.forecast = {};
        if (baseline !== null && baseline !== 1) changes.forecast.baseline = baseline;
        if (uplift !== null && uplift !== 1) changes.forecast.uplift = uplift;
      }
      return { name: document.getElementById(id + "-name").value.trim() || id, changes };
    });
  }

  // KPIs in rows, scenarios in columns (base first, as the API orders them).
  function sideBySide(result, context) {
    const rows = result.scenarios;
    const kpi = (s) => s.kpis || {};
    const tiers = Object.keys(kpi(rows.find((s) => s.kpis) || {}).achieved || {});
    const lines = [
      [t("status"), (s) => t(s.status)],
      [t("solverStatus"), (s) => (s.kpis ? t(kpi(s).solver_status) + (kpi(s).solver_status !== "optimal" ? " ⚠" : "") : s.error || "—")],
      [t("mipGap"), (s) => fmt.percent(kpi(s).mip_gap, 3)],
      [t("weightedShortfall"), (s) => fmt.number(kpi(s).weighted_shortfall, 2)],
      ...tiers.map((tier) => [t("achieved") + " " + tier, (s) => (s.kpis
        ? kpi(s).achieved[tier] + (kpi(s).target ? " / " + kpi(s).target[tier] : "") : "—")]),
      ...tiers.filter(() => rows.some((s) => kpi(s).p_target)).map((tier) => [t("pTarget") + " " + tier,
        (s) => fmt.percent((kpi(s).p_target || {})[tier])]),
      ...context.resources.map((r) => [t("spend") + " " + r.name, (s) => fmt.amount((kpi(s).spend || {})[r.name], r.unit)]),
      [t("totalGmv"), (s) => fmt.money(kpi(s).total_projected_gmv)],
    ];
    const head = el("thead", {}, el("tr", {}, [el("th", { scope: "col" }, "")].concat(
      rows.map((s) => el("th", { scope: "col", class: "num" }, s.name)))));
    const body = el("tbody", {}, lines.map(([label, get]) => el("tr", {}, [el("th", { scope: "row" }, label)].concat(
      rows.map((s) => el("td", { class: "num" }, get(s)))))));
    return el("table", { class: "data", id: "comparison-table" }, [head, body]);
  }

  function differences(result) {
    return (result.differences || []).map((d) => el("details", { class: "diff" }, [
      el("summary", {}, `${d.scenario}: ${t("partnersChanged")} ${d.partners_changed}, ` +
        `${t("tiersGained")} ${d.tiers_gained}, ${t("tiersLost")} ${d.tiers_lost}`),
      WM.table([
        { label: t("partnerId"), value: (p) => p.partner_id },
        { label: t("tier"), value: (p) => `${p.base_tier || "—"} → ${p.scenario_tier || "—"}` },
        { label: t("projectedGmv") + " Δ", value: (p) => fmt.money(p.projected_gmv_delta), num: true },
        { label: t("allocated") + " Δ", value: (p) => Object.entries(p.amounts || {})
          .map(([r, a]) => `${r} ${a.delta >= 0 ? "+" : ""}${fmt.compact(a.delta)}`).join(", ") },
      ], d.partners, { class: "data" }),
      d.truncated ? el("p", { class: "hint" }, t("diffTruncated", { shown: d.partners.length, total: d.partners_changed })) : null,
    ]));
  }

  function render(container, result, context) {
    const chart = el("div", { class: "chart", "data-chart": "comparison" });
    const caveat = result.scenarios.some((s) => s.kpis && s.kpis.solver_status !== "optimal")
      ? el("p", { class: "caveat" }, "⚠ " + t("notOptimal")) : null;
    container.replaceChildren(el("section", { class: "panel" }, [
      el("h3", {}, t("comparison")), el("div", { class: "table-scroll" }, sideBySide(result, context)), caveat, chart,
      el("h4", {}, t("changes")), ...differences(result)]));
    WM.charts.comparison(chart, result.scenarios);
  }

  WM.whatif = { addScenario, collect, render };
})(window.WM = window.WM || {});
