// The page's only way to the service: the public JSON API, with the user's key (kept in
// sessionStorage, so it goes away with the tab) as a Bearer token.
(function (WM) {
  "use strict";
  const KEY = "windmaker.apiKey";
  const FINAL = ["succeeded", "failed", "cancelled"];

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || "HTTP " + status);
      this.status = status;
      this.body = body || {};
    }
    // "message: field: why; field: why" for the notice bar.
    describe() {
      const parts = [];
      const walk = (prefix, value) => {
        if (Array.isArray(value)) parts.push(prefix + ": " + value.join(" "));
        else if (value && typeof value === "object") {
          Object.entries(value).forEach(([k, v]) => walk(prefix ? prefix + "." + k : k, v));
        }
      };
      walk("", this.body.errors);
      return parts.length ? this.message + " — " + parts.join("; ") : this.message;
    }
  }

  function key() {
    try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }

  function setKey(value) {
    try {
      if (value) sessionStorage.setItem(KEY, value);
      else sessionStorage.removeItem(KEY);
    } catch (e) { /* storage blocked: the key lives only in the field */ }
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (key()) h.Authorization = "Bearer " + key();
    return h;
  }

  async function request(method, path, body) {
    const init = { method, headers: headers() };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  let featurePromise = null;
  // API paths with their parameters blanked: "/v1/allocations/{}/plans/{}.xlsx".
  function features() {
    if (!featurePromise) {
      featurePromise = fetch("/openapi.json", { headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : { paths: {} }))
        .then((spec) => ({
          paths: new Set(Object.keys(spec.paths || {}).map((p) => p.replace(/\{[^}]*\}/g, "{}"))),
          spec,
        }))
        .catch(() => ({ paths: new Set(), spec: {} }));
    }
    return featurePromise;
  }

  async function has(path) {
    return (await features()).paths.has(path);
  }

  // Whether the operation at `path` (parameters blanked) takes the query parameter `name`.
  async function hasParam(path, name) {
    const { spec } = await features();
    const key = Object.keys(spec.paths || {}).find((p) => p.replace(/\{[^}]*\}/g, "{}") === path);
    const op = key ? spec.paths[key].get || {} : {};
    return (op.parameters || []).some((p) => p.name === name && p.in === "query");
  }

  // Poll a job until it is final, calling onUpdate with every view of it.
  async function poll(path, onUpdate, intervalMs) {
    for (;;) {
      const job = await request("GET", path);
      onUpdate(job);
      if (FINAL.includes(job.status)) return job;
      await new Promise((resolve) => setTimeout(resolve, intervalMs || 500));
    }
  }

  // Download with the key (a plain link cannot send it): fetch, then save the bytes.
  async function download(path, filename) {
    const response = await fetch(path, { headers: headers({ Accept: "*/*" }) });
    if (!response.ok) {
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      throw new ApiError(response.status, data);
    }
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = WM.el("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  WM.api = { ApiError, key, setKey, request, features, has, hasParam, poll, download, FINAL };
})(window.WM = window.WM || {});
