// Vega-Lite charts of a plan, a comparison and a frontier (the vendored vega-embed draws
// them as SVG, so the static report can carry them too).
(function (WM) {
  "use strict";
  const t = (k, v) => WM.t(k, v);
  const FONT = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif";
  const BASE = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: {
      font: FONT, view: { stroke: null }, axis: { labelFontSize: 12, titleFontSize: 12 },
      legend: { labelFontSize: 12, titleFontSize: 12, orient: "bottom" },
    },
  };

  // Partner counts are whole: no 0.5 ticks on a count axis.
  const COUNT_AXIS = { tickMinStep: 1, format: "d" };

  function render(container, spec) {
    container.classList.add("chart");
    const full = Object.assign({}, BASE, spec);
    return vegaEmbed(container, full, { actions: false, renderer: "svg" })
      .catch((error) => { container.textContent = String(error); });
  }

  // Achieved against target per tier: a bar per tier, a tick at its target.
  function attainment(container, plan) {
    const values = plan.tiers.map((tier) => ({
      tier: tier.name, achieved: tier.achieved, target: tier.target,
      met: tier.achieved >= tier.target ? t("targetMet") : t("targetMissed"),
    }));
    return render(container, {
      description: t("attainment"), title: t("attainment"), width: 320, height: 40 * values.length + 20,
      data: { values },
      encoding: { y: { field: "tier", type: "nominal", title: t("tier"), sort: null } },
      layer: [
        { mark: { type: "bar", height: 22 },
          encoding: { x: { field: "achieved", type: "quantitative", title: t("achievedVsTarget"), axis: COUNT_AXIS },
            color: { field: "met", type: "nominal", title: null,
              scale: { domain: [t("targetMet"), t("targetMissed")], range: ["#2b6cb0", "#dd6b20"] } },
            tooltip: [{ field: "tier", title: t("tier") }, { field: "achieved", title: t("achieved") },
              { field: "target", title: t("target") }] } },
        { mark: { type: "tick", color: "#c53030", thickness: 3, size: 32 },
          encoding: { x: { field: "target", type: "quantitative" } } },
        { mark: { type: "text", align: "left", dx: 4 },
          encoding: { x: { field: "achieved", type: "quantitative" }, text: { field: "achieved" } } },
      ],
    });
  }

  // Share of each budget used (resources have different units, so compare shares).
  function spendByResource(container, plan) {
    const values = plan.resources.map((r) => ({
      resource: r.name,
      used: r.utilization === null || r.utilization === undefined ? 0 : r.utilization,
      label: WM.fmt.amount(r.allocated, r.unit) + " / " +
        (r.budget === null ? "∞" : WM.fmt.amount(r.budget, r.unit)),
    }));
    return render(container, {
      description: t("spendByResource"), title: t("spendByResource"), width: 320,
      height: 36 * values.length + 20, data: { values },
      encoding: {
        y: { field: "resource", type: "nominal", title: t("resource"), sort: null },
        x: { field: "used", type: "quantitative", title: t("utilization"),
          axis: { format: "%" }, scale: { domain: [0, 1] } },
      },
      layer: [
        { mark: { type: "bar", color: "#2f855a", height: 20 },
          encoding: { tooltip: [{ field: "resource" }, { field: "label", title: t("allocated") }] } },
        { mark: { type: "text", align: "left", dx: 4 },
          encoding: { text: { field: "used", type: "quantitative", format: ".0%" } } },
      ],
    });
  }

  // Sum of each resource by the values of one partner attribute: one small bar chart per
  // resource, since their units differ.
  function spendByAttribute(container, rows, attribute, resources) {
    const sums = {};
    rows.forEach((row) => {
      const group = row.attributes && row.attributes[attribute] !== undefined
        ? String(row.attributes[attribute]) : "—";
      resources.forEach((r) => {
        const k = r.name + "\u0000" + group;
        sums[k] = (sums[k] || 0) + ((row.amounts && row.amounts[r.name]) || 0);
      });
    });
    const charts = resources.map((r) => ({
      title: r.name + (r.unit ? " (" + r.unit + ")" : ""), width: 200,
      data: { values: Object.entries(sums).filter(([k]) => k.startsWith(r.name + "\u0000"))
        .map(([k, v]) => ({ group: k.split("\u0000")[1], amount: v })) },
      mark: { type: "bar", color: "#6b46c1" },
      encoding: {
        y: { field: "group", type: "nominal", title: attribute, sort: "-x" },
        x: { field: "amount", type: "quantitative", title: t("allocated"), axis: { format: "~s" } },
        tooltip: [{ field: "group", title: attribute }, { field: "amount", format: ",.0f" }],
      },
    }));
    return render(container, { description: t("spendByAttribute"), hconcat: charts });
  }

  // Achieved per tier in each scenario, the target as a rule.
  function comparison(container, scenarios) {
    const values = [];
    scenarios.filter((s) => s.kpis).forEach((s) => {
      Object.entries(s.kpis.achieved).forEach(([tier, n]) => {
        values.push({ scenario: s.name, tier, achieved: n,
          target: s.kpis.target ? s.kpis.target[tier] : null });
      });
    });
    return render(container, {
      description: t("comparison"), title: t("achieved") + " — " + t("comparison"),
      data: { values },
      facet: { column: { field: "tier", type: "nominal", title: t("tier"), sort: null } },
      spec: {
        width: 220, height: 180,
        layer: [
          { mark: "bar", encoding: {
            x: { field: "scenario", type: "nominal", title: null, sort: null, axis: { labelAngle: -30 } },
            y: { field: "achieved", type: "quantitative", title: t("achieved"), axis: COUNT_AXIS },
            color: { field: "scenario", type: "nominal", legend: null, sort: null },
            tooltip: [{ field: "scenario" }, { field: "achieved" }, { field: "target" }] } },
          { mark: { type: "tick", color: "#c53030", thickness: 3 }, encoding: {
            x: { field: "scenario", type: "nominal", sort: null },
            y: { field: "target", type: "quantitative" } } },
        ],
      },
      resolve: { scale: { y: "independent" } },
    });
  }

  // Frontier: tiers achieved as the resource's budget grows, each tier's target as a
  // dashed rule in its colour (where a line crosses its rule, that target is met).
  function frontier(container, points, resource, tiers) {
    const values = [];
    points.forEach((p) => Object.entries(p.achieved || {}).forEach(([tier, n]) => {
      values.push({ budget: p.budget, tier, achieved: n });
    }));
    const targets = (tiers || []).filter((tier) => values.some((v) => v.tier === tier.name))
      .map((tier) => ({ tier: tier.name, target: tier.target }));
    const color = { field: "tier", type: "nominal", title: t("tier") };
    return render(container, {
      description: t("frontier"), title: t("frontier") + ": " + resource, width: 420, height: 220,
      layer: [
        { data: { values }, mark: { type: "line", point: true },
          encoding: {
            x: { field: "budget", type: "quantitative", title: t("budget") + " " + resource, axis: { format: "~s" } },
            y: { field: "achieved", type: "quantitative", title: t("achievedVsTargetDashed"), axis: COUNT_AXIS },
            color,
            tooltip: [{ field: "tier" }, { field: "budget", format: ",.0f" }, { field: "achieved" }],
          } },
        { data: { values: targets }, mark: { type: "rule", strokeDash: [6, 4] },
          encoding: { y: { field: "target", type: "quantitative" }, color,
            tooltip: [{ field: "tier" }, { field: "target", title: t("target") }] } },
      ],
    });
  }

  WM.charts = { render, attainment, spendByResource, spendByAttribute, comparison, frontier };
})(window.WM = window.WM || {});
