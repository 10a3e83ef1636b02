// The frontier of one resource as a table: a row per budget point, in budget order, with
// the tiers reached, P(meet target) per tier when the plan has forecast uncertainty, and a
// note where a point kept a cheaper point's plan (a larger budget is never worse).
(function (WM) {
  "use strict";
  const { el, fmt } = WM;
  const t = (k, v) => WM.t(k, v);

  function tierNames(points) {
    const names = [];
    points.forEach((p) => Object.keys(p.achieved || p.p_target || {}).forEach((n) => {
      if (!names.includes(n)) names.push(n);
    }));
    return names;
  }

  // A failed point has only budget, status and error: its other cells read "—".
  function frontierTable(points, unit, attrs) {
    const tiers = tierNames(points);
    const withP = points.some((p) => p.p_target && Object.values(p.p_target).some((v) => v !== null));
    const columns = [
      { label: t("budget"), value: (p) => fmt.amount(p.budget, unit), num: true },
      { label: t("status"), value: (p) => t(p.status) + (p.error ? ": " + p.error : "") },
      ...tiers.map((tier) => ({ label: t("achieved") + " " + tier, num: true,
        value: (p) => (p.achieved && p.achieved[tier] !== undefined ? p.achieved[tier] : "—") })),
      ...(withP ? tiers.map((tier) => ({ label: t("pTarget") + " " + tier, num: true,
        value: (p) => fmt.percent((p.p_target || {})[tier], 1) })) : []),
      { label: t("weightedShortfall"), value: (p) => fmt.number(p.weighted_shortfall, 2), num: true },
      { label: t("totalGmv"), value: (p) => fmt.money(p.total_projected_gmv), num: true },
      { label: t("totalCost"), value: (p) => fmt.money(p.total_cost), num: true },
      { label: t("mipGap"), value: (p) => fmt.percent(p.mip_gap, 3), num: true },
      { label: t("frontierNote"), value: (p) => (p.carried_from === null || p.carried_from === undefined
        ? "" : t("carriedFrom", { budget: fmt.amount(p.carried_from, unit) })) },
    ];
    return el("div", { class: "table-scroll" }, WM.table(columns, points, attrs));
  }

  WM.frontierTable = frontierTable;
})(window.WM = window.WM || {});
