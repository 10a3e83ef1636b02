// Labels in English and Chinese. Static elements carry data-i18n="key"; code that builds
// elements calls WM.t(key, {name: value}). The switch keeps the choice in localStorage.
(function (WM) {
  "use strict";
  const LABELS = {
    en: {
      title: "Windmaker planner", apiKey: "API key", forgetKey: "Forget key", apiDocs: "API docs",
      switchTo: "中文",
      requestHeading: "1. Request", partnersLegend: "Partners", sourceFixture: "Bundled fixture",
      sourceUpload: "Upload CSV", fixture: "Fixture", fixtureOption: "{name} — {count} partners", partnersFile: "Partners CSV",
      packagesFile: "Packages CSV (optional)",
      scenarioFile: "Scenario JSON (optional: resources, tiers, constraints)",
      budgetsLegend: "Budgets", targetsLegend: "Tier targets", settingsLegend: "Settings",
      objective: "Objective", objMaxAttainment: "Reach the targets, then most GMV",
      objMinCost: "Reach the targets at least cost", objMaxGmv: "Most GMV",
      confidence: "Confidence (0.5–0.999, blank: median forecast)",
      timeLimit: "Time limit (seconds)", planCount: "Alternative plans", solve: "Solve",
      budgetFor: "Budget: {name} ({unit})", targetFor: "Target: partners ≥ {gmv} ({name})",
      unlimited: "blank = unlimited",
      progressHeading: "2. Progress", status: "Status", message: "Message",
      bestObjective: "Best plan (objective)", bestBound: "Bound", gap: "Gap", elapsed: "Elapsed",
      cancel: "Cancel",
      cancelledKept: "Cancelled: this is the best plan found before the cancel (gap {gap}, not proven optimal).",
      planHeading: "3. Plan", planRank: "Plan", downloadCsv: "Download CSV",
      downloadXlsx: "Download XLSX", downloadReport: "Download report (HTML)",
      downloadComparisonReport: "Download comparison report (HTML)",
      downloadCsvAll: "Download all partners (CSV)", downloadComparisonXlsx: "Download comparison XLSX",
      requestName: "Programme name", programme: "Programme", adopt: "Adopt this plan",
      adopted: "✓ Adopted by {who} on {when}",
      adoptedElsewhere: "The programme's adopted plan is job {job}…, plan {rank} (by {who} on {when}).",
      notAdopted: "No plan of programme “{name}” is adopted yet.",
      adoptNeedsName: "Give the request a programme name to adopt its plans.",
      adoptHistory: "Adoption history ({count})", adoptedAt: "Adopted on", adoptedBy: "By", job: "Job",
      currentAdoption: "current", replaced: "replaced",
      whatifHeading: "4. What-if scenarios",
      whatifHint: "Each scenario changes the request above; all are solved against this job's plan as the base and shown side by side.",
      addScenario: "Add scenario", compare: "Compare", removeScenario: "Remove scenario",
      scenarioName: "Scenario name", budgetTimes: "{name} budget ×", targetOf: "Target {name}",
      baselineTimes: "Baseline forecast ×", upliftTimes: "Uplift forecast ×",
      frontierHeading: "5. Budget frontier", frontierResource: "Resource",
      frontierMultipliers: "Budget multipliers", drawFrontier: "Draw frontier",
      frontierNote: "Note", carriedFrom: "keeps the plan of {budget}",
      summary: "Summary", solverStatus: "Solver status", engine: "Engine", mipGap: "Gap",
      seconds: "Solve time", totalGmv: "Projected GMV", incrementalGmv: "Incremental GMV",
      weightedShortfall: "Weighted shortfall", totalCost: "Total cost",
      attainment: "Attainment against target", tier: "Tier", minGmv: "Minimum GMV",
      target: "Target", achieved: "Achieved", achievedVsTarget: "Partners reached (red mark: target)",
      achievedVsTargetDashed: "Partners reached (dashed: target)",
      targetMet: "target met", targetMissed: "short of target", shortfall: "Shortfall",
      pTarget: "P(meet target)", expectedAchieved: "Expected", atConfidence: "At confidence",
      spendByResource: "Spend by resource", resource: "Resource", budget: "Budget",
      allocated: "Allocated", utilization: "Used", spendByAttribute: "Spend by attribute",
      groupBy: "Group by", noAttributes: "Partner attributes are not available for this plan.",
      partners: "Partners", filter: "Filter partners", tierFilter: "Tier",
      anyTier: "Any tier", noTier: "No tier", rowsShown: "{shown} of {total} partners",
      partnerId: "Partner", name: "Name", baselineGmv: "Baseline GMV",
      projectedGmv: "Projected GMV", package: "Package", pReach: "P(reach)",
      nearMisses: "Near misses", gmvGap: "GMV gap", cheapestExtra: "Cheapest extra",
      extraCost: "Extra cost", binding: "Binding constraints", kind: "Kind",
      whyHeading: "What limits this plan", nextTier: "Next tier",
      nearMissesHint: "Partners closest to their next tier: the least extra that lifts each one there, cheapest first.",
      bindingHint: "Constraints the plan runs up against. Marginal value: what one more unit of that budget buys, from a re-solve with 1% more.",
      constraintOn: "On", marginalNote: "How sure", notPriced: "not priced (no time left)",
      proven: "proven", notProven: "not proven optimal", partnersCount: "{count} partners",
      side_max: "cap", side_min: "floor",
      kind_budget: "Budget", kind_max_share: "Max share", kind_group_budget: "Group budget",
      kind_group_count: "Group count", kind_bound: "Partner bound", kind_eligibility: "Eligibility",
      kind_pin: "Pinned amount", kind_one_package: "One package",
      toTargetsMet: "Extra budget {extra} (cost {cost}) would meet every target.",
      toTargetsUnmet: "Not reachable even with budgets lifted ({extra}); weighted shortfall {shortfall} remains.",
      marginalValue: "Marginal value", gmvPerUnit: "GMV per extra unit",
      shortfallPerUnit: "Shortfall per extra unit", toTargets: "Budget to meet every target",
      comparison: "Side by side", scenario: "Scenario", spend: "Spend",
      changes: "Partner changes", partnersChanged: "Partners changed", tiersGained: "Tiers gained",
      tiersLost: "Tiers lost", frontier: "Frontier", points: "Points",
      queued: "queued", running: "running", succeeded: "succeeded", failed: "failed",
      cancelled: "cancelled", optimal: "optimal", feasible: "feasible", infeasible: "infeasible",
      time_limit: "time limit", interrupted: "interrupted", error: "error",
      notOptimal: "Not proven optimal: the gap says how far from the best possible it may be.",
      needKey: "This service needs an API key: enter it at the top of the page.",
      chooseFile: "Choose a partners CSV file first.",
      scenariosDone: "{done} of {total} scenarios solved", pointsDone: "{done} of {total} budgets solved",
      diffTruncated: "The first {shown} of {total} changed partners are listed.",
      reportTitle: "Windmaker plan report", comparisonReport: "Windmaker comparison report",
    },
    zh: {
      title: "Windmaker 规划台", apiKey: "API 密钥", forgetKey: "清除密钥", apiDocs: "API 文档",
      switchTo: "English",
      requestHeading: "1. 请求", partnersLegend: "合作伙伴", sourceFixture: "内置数据集",
      sourceUpload: "上传 CSV", fixture: "数据集", fixtureOption: "{name} — {count} 个伙伴", partnersFile: "合作伙伴 CSV",
      packagesFile: "套餐 CSV（可选）",
      scenarioFile: "场景 JSON（可选：资源、层级、约束）",
      budgetsLegend: "预算", targetsLegend: "层级目标", settingsLegend: "设置",
      objective: "目标函数", objMaxAttainment: "先达成目标，再最大化 GMV",
      objMinCost: "以最低成本达成目标", objMaxGmv: "最大化 GMV",
      confidence: "置信度（0.5–0.999，留空：按中位预测）",
      timeLimit: "时间上限（秒）", planCount: "备选方案数", solve: "求解",
      budgetFor: "预算：{name}（{unit}）", targetFor: "目标：GMV ≥ {gmv} 的伙伴数（{name}）",
      unlimited: "留空 = 不限",
      progressHeading: "2. 进度", status: "状态", message: "消息",
      bestObjective: "当前最优方案（目标值）", bestBound: "界", gap: "间隙", elapsed: "已用时间",
      cancel: "取消",
      cancelledKept: "已取消：以下是取消前找到的最佳方案（差距 {gap}，未证明最优）。",
      planHeading: "3. 方案", planRank: "方案", downloadCsv: "下载 CSV",
      downloadXlsx: "下载 XLSX", downloadReport: "下载报告（HTML）",
      downloadComparisonReport: "下载对比报告（HTML）",
      downloadCsvAll: "下载全部伙伴（CSV）", downloadComparisonXlsx: "下载对比 XLSX",
      requestName: "项目名称", programme: "项目", adopt: "采用此方案",
      adopted: "✓ {who} 于 {when} 采用",
      adoptedElsewhere: "本项目已采用的方案是任务 {job}… 的方案 {rank}（{who} 于 {when} 采用）。",
      notAdopted: "项目“{name}”尚未采用任何方案。",
      adoptNeedsName: "请为请求填写项目名称后再采用方案。",
      adoptHistory: "采用记录（{count}）", adoptedAt: "采用时间", adoptedBy: "采用人", job: "任务",
      currentAdoption: "当前", replaced: "已被替换",
      whatifHeading: "4. 假设情景",
      whatifHint: "每个情景在上述请求的基础上做改动；全部以本任务的方案为基准求解并并排显示。",
      addScenario: "添加情景", compare: "对比", removeScenario: "删除情景",
      scenarioName: "情景名称", budgetTimes: "{name} 预算 ×", targetOf: "目标 {name}",
      baselineTimes: "基线预测 ×", upliftTimes: "增量预测 ×",
      frontierHeading: "5. 预算前沿", frontierResource: "资源",
      frontierMultipliers: "预算倍数", drawFrontier: "绘制前沿",
      frontierNote: "说明", carriedFrom: "沿用 {budget} 的方案",
      summary: "概要", solverStatus: "求解状态", engine: "引擎", mipGap: "间隙",
      seconds: "求解用时", totalGmv: "预计 GMV", incrementalGmv: "增量 GMV",
      weightedShortfall: "加权缺口", totalCost: "总成本",
      attainment: "目标达成情况", tier: "层级", minGmv: "GMV 门槛",
      target: "目标", achieved: "达成", achievedVsTarget: "达成伙伴数（红线：目标）",
      achievedVsTargetDashed: "达成伙伴数（虚线：目标）",
      targetMet: "已达目标", targetMissed: "未达目标", shortfall: "缺口",
      pTarget: "达成目标概率", expectedAchieved: "期望达成", atConfidence: "置信水平下达成",
      spendByResource: "按资源的投入", resource: "资源", budget: "预算",
      allocated: "已分配", utilization: "使用率", spendByAttribute: "按属性的投入",
      groupBy: "分组依据", noAttributes: "此方案没有可用的伙伴属性。",
      partners: "合作伙伴", filter: "筛选伙伴", tierFilter: "层级",
      anyTier: "全部层级", noTier: "未达层级", rowsShown: "显示 {shown} / 共 {total} 个伙伴",
      partnerId: "伙伴", name: "名称", baselineGmv: "基线 GMV",
      projectedGmv: "预计 GMV", package: "套餐", pReach: "达成概率",
      nearMisses: "差一点达标", gmvGap: "GMV 差距", cheapestExtra: "最省的追加",
      extraCost: "追加成本", binding: "起作用的约束", kind: "类型",
      whyHeading: "方案受什么限制", nextTier: "下一层级",
      nearMissesHint: "最接近下一层级的伙伴：使其达到该层级所需的最少追加，按成本从低到高。",
      bindingHint: "方案触及的约束。边际价值：该预算每多一单位能带来的收益（按增加 1% 重新求解得出）。",
      constraintOn: "对象", marginalNote: "可信度", notPriced: "未计算（时间不足）",
      proven: "已证明", notProven: "未证明最优", partnersCount: "{count} 个伙伴",
      side_max: "上限", side_min: "下限",
      kind_budget: "预算", kind_max_share: "单个伙伴份额上限", kind_group_budget: "分组预算",
      kind_group_count: "分组数量", kind_bound: "伙伴上下限", kind_eligibility: "资格",
      kind_pin: "固定金额", kind_one_package: "单一套餐",
      toTargetsMet: "追加预算 {extra}（成本 {cost}）即可达成全部目标。",
      toTargetsUnmet: "即使放宽预算（{extra}）也无法达成全部目标；仍有加权缺口 {shortfall}。",
      marginalValue: "边际价值", gmvPerUnit: "每追加一单位的 GMV",
      shortfallPerUnit: "每追加一单位的缺口变化", toTargets: "达成全部目标所需预算",
      comparison: "并排对比", scenario: "情景", spend: "投入",
      changes: "伙伴变化", partnersChanged: "变化的伙伴", tiersGained: "新达层级",
      tiersLost: "失去层级", frontier: "前沿", points: "点",
      queued: "排队中", running: "求解中", succeeded: "已完成", failed: "失败",
      cancelled: "已取消", optimal: "最优", feasible: "可行", infeasible: "不可行",
      time_limit: "超时", interrupted: "已中断", error: "错误",
      notOptimal: "未证明最优：间隙表示与最优解可能的差距。",
      needKey: "此服务需要 API 密钥：请在页面顶部输入。",
      chooseFile: "请先选择合作伙伴 CSV 文件。",
      scenariosDone: "已求解 {done} / {total} 个情景", pointsDone: "已求解 {done} / {total} 个预算点",
      diffTruncated: "仅列出 {total} 个变化伙伴中的前 {shown} 个。",
      reportTitle: "Windmaker 方案报告", comparisonReport: "Windmaker 对比报告",
    },
  };
  const STORE_KEY = "windmaker.lang";
  let lang = "en";
  try {
    lang = localStorage.getItem(STORE_KEY) === "zh" ? "zh" : "en";
  } catch (e) { /* storage blocked: English */ }

  WM.t = function (key, values) {
    let text = (LABELS[lang] && LABELS[lang][key]) || LABELS.en[key] || key;
    if (values) {
      text = text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
    }
    return text;
  };
  WM.lang = () => lang;
  WM.onLanguage = [];

  WM.applyLabels = function (root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = WM.t(el.dataset.i18n);
    });
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    const sw = document.getElementById("lang-switch");
    if (sw) {
      sw.textContent = WM.t("switchTo");
      sw.lang = lang === "zh" ? "en" : "zh";
    }
    const titleKey = document.documentElement.dataset.i18nTitle;
    if (titleKey) document.title = WM.t(titleKey);
  };

  WM.setLanguage = function (next) {
    lang = next === "zh" ? "zh" : "en";
    try { localStorage.setItem(STORE_KEY, lang); } catch (e) { /* not kept */ }
    WM.applyLabels();
    WM.onLanguage.forEach((fn) => fn(lang));
  };
})(window.WM = window.WM || {});
