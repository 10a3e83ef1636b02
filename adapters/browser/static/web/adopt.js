// Adopting a plan: the programme (the request's name) and its adopted plan, read from
// GET /v1/programmes/{name}/adopted so the page always shows what the server holds, and
// the programme's earlier adoptions.
(function (WM) {
  "use strict";
  const { el, api } = WM;
  const t = (k, v) => WM.t(k, v);
  const $ = (id) => document.getElementById(id);

  const programmePath = (name) => "/v1/programmes/" + encodeURIComponent(name);

  function when(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso || "";
    return date.toLocaleString(WM.lang() === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
  }

  // The programme's adoptions, newest first; the current one (if any) comes first with
  // `current: true`. Read from the history rather than /adopted, which answers 404 (a
  // console error in the browser) for a programme with nothing adopted yet.
  async function adoptions(programme) {
    return (await api.request("GET", programmePath(programme) + "/history?page_size=10")) || [];
  }

  function showStatus(job, rank, adoption) {
    const status = $("adopt-status");
    const button = $("adopt");
    const mine = adoption && adoption.job_id === job.id && adoption.rank === rank;
    delete status.dataset.adoptedBy;
    delete status.dataset.adoptedAt;
    status.classList.toggle("adopted", Boolean(mine));
    if (!job.name) {
      status.textContent = t("adoptNeedsName");
    } else if (mine) {
      status.dataset.adoptedBy = adoption.adopted_by;
      status.dataset.adoptedAt = adoption.adopted_at;
      status.textContent = t("adopted", { who: adoption.adopted_by, when: when(adoption.adopted_at) });
    } else if (adoption) {
      status.textContent = t("adoptedElsewhere", { job: adoption.job_id.slice(0, 8), rank: adoption.rank,
        who: adoption.adopted_by, when: when(adoption.adopted_at) });
    } else {
      status.textContent = t("notAdopted", { name: job.name });
    }
    button.disabled = !job.name || Boolean(mine);
  }

  function showHistory(items) {
    const box = $("adopt-history");
    box.hidden = items.length < 1;
    if (box.hidden) return;
    box.replaceChildren(el("summary", {}, t("adoptHistory", { count: items.length })), WM.table([
      { label: t("adoptedAt"), value: (a) => when(a.adopted_at) },
      { label: t("adoptedBy"), value: (a) => a.adopted_by },
      { label: t("job"), value: (a) => a.job_id },
      { label: t("planRank"), value: (a) => a.rank, num: true },
      { label: t("status"), value: (a) => (a.current ? t("currentAdoption") : t("replaced")) },
    ], items, { class: "data", id: "adopt-history-table" }));
  }

  // Show the programme's adoption state for plan `rank` of `job` (no-op without the API).
  async function refresh(job, rank) {
    if ($("adopt-row").hidden) return;
    $("programme-name").textContent = job.name || "—";
    try {
      const items = job.name ? await adoptions(job.name) : [];
      showStatus(job, rank, items.find((a) => a.current) || null);
      showHistory(items);
    } catch (error) {
      $("adopt-status").textContent = error instanceof api.ApiError ? error.describe() : String(error);
    }
  }

  async function adopt(job, rank) {
    $("adopt").disabled = true;
    try {
      await api.request("POST", `/v1/allocations/${job.id}/plans/${rank}/adopt`);
    } finally {
      await refresh(job, rank);
    }
  }

  WM.adoption = { refresh, adopt };
})(window.WM = window.WM || {});
