// One plan, read as a planner reads it: summary, attainment per tier, spend by resource and
// by a partner attribute, why (explanation, when the API gives one), and every allocation.
(function (WM) {
  "use strict";
  const { el, fmt } = WM;
  const t = (k, v) => WM.t(k, v);

  function section(title, children) {
    return el("section", { class: "panel" }, [el("h3", {}, title)].concat(children));
  }

  function summary(plan) {
    const s = plan.solver || {};
    const o = plan.objective || {};
    const items = [
      [t("solverStatus"), t(s.status || "error")], [t("engine"), s.engine],
      [t("mipGap"), fmt.percent(s.mip_gap, 3)], [t("seconds"), fmt.seconds(s.seconds)],
      [t("totalGmv"), fmt.money(o.total_projected_gmv)],
      [t("incrementalGmv"), fmt.money(o.incremental_gmv)],
      [t("weightedShortfall"), fmt.number(o.weighted_shortfall, 2)],
      [t("totalCost"), fmt.money(o.total_cost)],
    ];
    const dl = el("dl", { class: "figures" }, items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const caveat = s.status && s.status !== "optimal"
      ? el("p", { class: "caveat" }, t("notOptimal")) : null;
    return section(t("summary") + (plan.label ? " — " + plan.label : ""), [dl, caveat]);
  }

  function attainment(plan, ctx) {
    const unc = plan.uncertainty;
    const byName = {};
    (unc ? unc.tiers : []).forEach((u) => { byName[u.name] = u; });
    const columns = [
      { label: t("tier"), value: (r) => r.name },
      { label: t("minGmv"), value: (r) => fmt.money(r.min_gmv), num: true },
      { label: t("target"), value: (r) => r.target, num: true },
      { label: t("achieved"), value: (r) => r.achieved, num: true },
      { label: t("shortfall"), value: (r) => r.shortfall, num: true },
    ];
    if (unc) {
      columns.push(
        { label: t("expectedAchieved"), value: (r) => fmt.number((byName[r.name] || {}).expected_achieved, 1), num: true },
        { label: t("atConfidence") + " " + fmt.percent(unc.confidence, 1), value: (r) => (byName[r.name] || {}).achieved_at_confidence, num: true },
        { label: t("pTarget"), value: (r) => fmt.percent((byName[r.name] || {}).p_target, 1), num: true });
    }
    const chart = el("div", { class: "chart", "data-chart": "attainment" });
    WM.charts.attainment(chart, plan);
    return section(t("attainment"), [chart, WM.table(columns, plan.tiers, { class: "data", id: ctx.prefix + "tier-table" })]);
  }

  function spend(plan, ctx) {
    const unit = (name) => (ctx.units || {})[name];
    const rows = plan.resources.map((r) => Object.assign({ unit: unit(r.name) }, r));
    const chart = el("div", { class: "chart", "data-chart": "spend" });
    WM.charts.spendByResource(chart, { resources: rows });
    const table = WM.table([
      { label: t("resource"), value: (r) => r.name },
      { label: t("budget"), value: (r) => (r.budget === null ? "∞" : fmt.amount(r.budget, r.unit)), num: true },
      { label: t("allocated"), value: (r) => fmt.amount(r.allocated, r.unit), num: true },
      { label: t("utilization"), value: (r) => fmt.percent(r.utilization), num: true },
    ], rows, { class: "data" });
    return section(t("spendByResource"), [chart, table]);
  }

  function byAttribute(plan, ctx, rows) {
    const names = new Set();
    rows.forEach((r) => Object.keys(r.attributes || {}).forEach((k) => names.add(k)));
    if (!names.size) return section(t("spendByAttribute"), [el("p", { class: "hint" }, t("noAttributes"))]);
    const keys = [...names];
    const preferred = ["region", "category"].find((k) => names.has(k)) || keys[0];
    const chart = el("div", { class: "chart", "data-chart": "attribute" });
    const resources = plan.resources.map((r) => ({ name: r.name, unit: (ctx.units || {})[r.name] }));
    const select = el("select", { id: ctx.prefix + "group-by", onchange: () => WM.charts.spendByAttribute(chart, rows, select.value, resources) },
      keys.map((k) => el("option", { value: k, selected: k === preferred }, k)));
    WM.charts.spendByAttribute(chart, rows, preferred, resources);
    return section(t("spendByAttribute"), [
      el("div", { class: "field-row" }, [el("label", { for: ctx.prefix + "group-by" }, t("groupBy")), select]), chart]);
  }

  // {"supply_chain": {">=": 50}, "region": "East"} -> "supply_chain ≥ 50, region = East"
  const OPS = { ">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "!=": "≠", in: "∈", not_in: "∉" };
  function where(rule) {
    return Object.entries(rule || {}).map(([field, test]) => (test && typeof test === "object" && !Array.isArray(test)
      ? Object.entries(test).map(([op, v]) => `${field} ${OPS[op] || op} ${Array.isArray(v) ? v.join(" / ") : v}`).join(", ")
      : `${field} = ${Array.isArray(test) ? test.join(" / ") : test}`)).join(", ");
  }

  // What a binding constraint is about, in one cell: resource or tier, partner, group rule.
  function bindingSubject(r) {
    return [r.resource, r.tier, r.partner_id, r.side ? t("side_" + r.side) : null, where(r.where),
      r.count ? t("partnersCount", { count: r.count }) : null].filter(Boolean).join(" · ");
  }

  // How far a marginal value can be trusted (docs/insight.md): priced or not, proven or not.
  function marginalNote(r) {
    const priced = r.kind === "budget" || r.kind === "group_budget";
    const mv = r.marginal_value;
    if (!priced) return "";
    if (!mv) return t("notPriced");
    return (mv.proven ? t("proven") : t("notProven")) + (mv.note ? " — " + mv.note : "");
  }

  function explanation(plan, ctx) {
    const ex = plan.explanation;
    if (!ex) return null;
    const parts = [];
    const units = ctx.units || {};
    const amounts = (m) => Object.entries(m || {}).filter(([, v]) => v)
      .map(([r, v]) => r + " " + fmt.amount(v, units[r])).join(", ");
    const info = ctx.partners || new Map();
    if (ex.near_misses && ex.near_misses.length) {
      const named = ex.near_misses.some((r) => info.has(r.partner_id));
      parts.push(el("h4", {}, t("nearMisses")), el("p", { class: "hint" }, t("nearMissesHint")), WM.table([
        { label: t("partnerId"), value: (r) => r.partner_id },
        ...(named ? [{ label: t("name"), value: (r) => (info.get(r.partner_id) || {}).name || "" }] : []),
        { label: t("nextTier"), value: (r) => r.tier },
        { label: t("gmvGap"), value: (r) => fmt.money(r.gmv_gap), num: true },
        { label: t("cheapestExtra"), value: (r) => amounts(r.cheapest_extra) },
        { label: t("extraCost"), value: (r) => fmt.money(r.extra_cost), num: true },
      ], ex.near_misses, { class: "data", id: ctx.prefix + "near-miss-table" }));
    }
    if (ex.binding && ex.binding.length) {
      const mv = (r) => r.marginal_value || {};
      parts.push(el("h4", {}, t("binding")), el("p", { class: "hint" }, t("bindingHint")), WM.table([
        { label: t("kind"), value: (r) => t("kind_" + r.kind) },
        { label: t("constraintOn"), value: bindingSubject },
        { label: t("utilization"), value: (r) => fmt.percent(r.utilization), num: true },
        { label: t("gmvPerUnit"), value: (r) => fmt.sig(mv(r).gmv), num: true },
        { label: t("shortfallPerUnit"), value: (r) => fmt.sig(mv(r).weighted_shortfall), num: true },
        { label: t("marginalNote"), value: marginalNote },
      ], ex.binding, { class: "data", id: ctx.prefix + "binding-table" }));
    }
    const tt = ex.to_targets;
    if (tt) {
      // Not met with a reason (e.g. a tier out of reach at any budget): say why.
      const line = tt.met === false && tt.reason ? tt.reason
        : tt.met === false ? t("toTargetsUnmet", { extra: amounts(tt.extra) || "—", shortfall: fmt.number(tt.weighted_shortfall, 2) })
        : t("toTargetsMet", { extra: amounts(tt.extra) || "—", cost: fmt.money(tt.extra_cost) });
      parts.push(el("h4", {}, t("toTargets")), el("p", { id: ctx.prefix + "to-targets" }, line));
    }
    return parts.length ? section(t("whyHeading"), parts) : null;
  }

  // The sortable, filterable partner table: exactly the plan's allocations.
  function partnerTable(plan, ctx, rows) {
    const resources = plan.resources.map((r) => r.name);
    const hasNames = rows.some((r) => r.name);
    const hasPackages = rows.some((r) => r.package);
    const hasP = rows.some((r) => r.p_reach !== undefined && r.p_reach !== null);
    const columns = [{ key: "partner_id", label: t("partnerId"), get: (r) => r.partner_id }];
    if (hasNames) columns.push({ key: "name", label: t("name"), get: (r) => r.name || "" });
    columns.push({ key: "tier", label: t("tier"), get: (r) => r.tier || "" });
    if (hasP) columns.push({ key: "p_reach", label: t("pReach"), get: (r) => r.p_reach, num: true, show: (v) => fmt.percent(v) });
    resources.forEach((name) => columns.push({
      key: "amount:" + name, label: name, get: (r) => (r.amounts || {})[name] || 0, num: true, show: fmt.whole }));
    if (hasPackages) columns.push({ key: "package", label: t("package"), get: (r) => r.package || "" });
    columns.push(
      { key: "baseline_gmv", label: t("baselineGmv"), get: (r) => r.baseline_gmv, num: true, show: fmt.whole },
      { key: "projected_gmv", label: t("projectedGmv"), get: (r) => r.projected_gmv, num: true, show: fmt.whole },
      { key: "incremental_gmv", label: t("incrementalGmv"), get: (r) => r.incremental_gmv, num: true, show: fmt.whole });

    const state = { key: "projected_gmv", dir: -1, text: "", tier: "" };
    const filter = el("input", { id: ctx.prefix + "partner-filter", type: "search", autocomplete: "off" });
    const tierSelect = el("select", { id: ctx.prefix + "tier-filter" }, [
      el("option", { value: "" }, t("anyTier")),
      ...plan.tiers.map((tier) => el("option", { value: tier.name }, tier.name)),
      el("option", { value: "\u0000none" }, t("noTier"))]);
    const count = el("p", { class: "hint", id: ctx.prefix + "partner-count", "aria-live": "polite" });
    const tbody = el("tbody");
    const headRow = el("tr");
    const table = el("table", { class: "data partners", id: ctx.prefix + "partner-table" }, [el("thead", {}, headRow), tbody]);

    columns.forEach((c) => {
      const button = el("button", { type: "button", class: "sort", onclick: () => {
        state.dir = state.key === c.key ? -state.dir : (c.num ? -1 : 1);
        state.key = c.key;
        draw();
      } }, c.label);
      c.th = el("th", { scope: "col", class: c.num ? "num" : null }, button);
      headRow.append(c.th);
    });

    function draw() {
      const text = state.text.toLowerCase();
      const shown = rows.filter((r) => {
        if (state.tier === "\u0000none" ? r.tier : state.tier && r.tier !== state.tier) return false;
        return !text || [r.partner_id, r.name || "", r.tier || ""].some((v) => v.toLowerCase().includes(text));
      });
      const col = columns.find((c) => c.key === state.key);
      shown.sort((a, b) => {
        const x = col.get(a), y = col.get(b);
        if (x === y) return 0;
        return (x > y ? 1 : -1) * state.dir;
      });
      columns.forEach((c) => c.th.setAttribute("aria-sort", c.key === state.key ? (state.dir > 0 ? "ascending" : "descending") : "none"));
      tbody.replaceChildren(...shown.map((r) => el("tr", { "data-partner-id": r.partner_id },
        columns.map((c) => el("td", { class: c.num ? "num" : null }, c.show ? c.show(c.get(r)) : c.get(r))))));
      count.textContent = t("rowsShown", { shown: shown.length, total: rows.length });
    }
    filter.addEventListener("input", () => { state.text = filter.value; draw(); });
    tierSelect.addEventListener("change", () => { state.tier = tierSelect.value; draw(); });
    draw();
    return section(t("partners"), [
      el("div", { class: "field-row" }, [
        el("label", { for: ctx.prefix + "partner-filter" }, t("filter")), filter,
        el("label", { for: ctx.prefix + "tier-filter" }, t("tierFilter")), tierSelect]),
      count, el("div", { class: "table-scroll" }, table)]);
  }

  // ctx: {units: {resource: unit}, partners: Map(id -> {name, attributes}) | null}
  function render(container, plan, ctx) {
    ctx = Object.assign({ prefix: "" }, ctx);
    const info = ctx.partners || new Map();
    const rows = plan.allocations.map((a) => {
      const p = info.get(a.partner_id);
      return Object.assign({ name: p ? p.name : "", attributes: p ? p.attributes : null }, a);
    });
    container.replaceChildren(...[
      summary(plan),
      // With the uncertainty columns the tier table needs the full width.
      el("div", { class: plan.uncertainty ? "stacked" : "two-up" }, [attainment(plan, ctx), spend(plan, ctx)]),
      info.size ? byAttribute(plan, ctx, rows) : null,
      explanation(plan, ctx),
      partnerTable(plan, ctx, rows),
    ].filter(Boolean));
  }

  WM.plan = { render };
})(window.WM = window.WM || {});
