// Atlas Codex console: plain JavaScript, no build step, no third-party code.
// Every value from the API is put on the page as text (textContent), never as HTML, with its
// bidirectional control characters shown as escapes (a value cannot read reversed).
"use strict";

(() => {
  const KEY_STORAGE = "atlas-codex-api-key";
  const TERMINAL = new Set(["completed", "failed", "cancelled", "timeout"]);
  const POLL_MS = 1000;
  const PAGE_SIZE = 20;
  const base = location.pathname.replace(/\/console\/?$/, "");
  const websocketUrl = (document.querySelector('meta[name="atlas-websocket"]') || {}).content || "";
  const VIEWS = ["view-key", "view-jobs", "view-job", "view-new"];

  const $ = (id) => document.getElementById(id);
  let apiKey = sessionStorage.getItem(KEY_STORAGE);
  let keyOwner = null;
  let offeredKey = null;
  // Bidirectional controls and marks: shown as ⟨U+202E⟩, so "evil" never reads "live".
  const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
  const live = { timer: null, socket: null, jobId: null };
  let listCursors = [];

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `the API answered ${status}`);
      this.status = status;
      this.code = error.code || "http_" + status;
      this.field = error.field || null;
      this.correlationId = error.correlation_id || null;
    }

    describe() {
      const field = this.field ? ` (field: ${this.field})` : "";
      return `${this.message}${field} [${this.code}, HTTP ${this.status}]`;
    }
  }

  async function api(method, path, body) {
    const headers = { "x-api-key": apiKey || "" };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(base + path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, data);
      if (response.status === 401) {
        forgetKey(error.message);
      }
      throw error;
    }
    return { status: response.status, data };
  }

  function describe(error) {
    return error instanceof ApiError ? error.describe() : String(error && error.message ? error.message : error);
  }

  // ------------------------------------------------------------------ small DOM helpers

  function visible(text) {
    return String(text).replace(
      BIDI,
      (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`,
    );
  }

  function setText(node, text) {
    node.textContent = visible(text || "");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function link(href, text) {
    return el("a", { href }, text);
  }

  function jobLink(id) {
    return link(`#/jobs/${encodeURIComponent(id)}`, id);
  }

  function status(value) {
    return el("span", { class: `status status-${value}` }, value);
  }

  function usd(value, digits = 4) {
    return typeof value === "number" ? `$${value.toFixed(digits)}` : "";
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  function summary(target, rows) {
    clear(target);
    for (const [term, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      target.append(el("dt", {}, term), el("dd", {}, value));
    }
  }

  function notice(text) {
    setText($("notice"), text);
  }

  function show(viewId, title) {
    for (const id of VIEWS) $(id).hidden = id !== viewId;
    for (const [nav, view] of [["nav-jobs", "view-jobs"], ["nav-new", "view-new"]]) {
      if (view === viewId) $(nav).setAttribute("aria-current", "page");
      else $(nav).removeAttribute("aria-current");
    }
    document.title = `${title} · Atlas Codex console`;
    $("forget-key").hidden = !apiKey;
    showOwner();
    const heading = $(viewId).querySelector("h1");
    heading.tabIndex = -1;
    heading.focus();
  }

  // ------------------------------------------------------------------ the key

  function keyFromFragment() {
    // A link may offer a key (local mode's banner does), never use it unasked: whoever sent
    // the link would own every job made with it. The key leaves the address bar at once.
    const match = location.hash.match(/^#key=([^&]+)$/);
    if (!match) return;
    history.replaceState(null, "", location.pathname + location.search + "#/jobs");
    let given = match[1];
    try {
      given = decodeURIComponent(given);
    } catch (_) {
      return;
    }
    if (given !== apiKey) offeredKey = given;
  }

  function keyLabel(key) {
    return key ? `${key.slice(0, 16)}…` : "";
  }

  function showOwner() {
    const shown = apiKey && keyOwner ? `signed in as ${keyOwner} (key ${keyLabel(apiKey)})` : "";
    setText($("key-owner"), shown);
  }

  function learnOwner(listing) {
    if (listing && typeof listing.owner_id === "string") {
      keyOwner = listing.owner_id;
      showOwner();
    }
  }

  function forgetKey(reason) {
    apiKey = null;
    keyOwner = null;
    sessionStorage.removeItem(KEY_STORAGE);
    stopLive();
    showKey(reason);
  }

  function showKey(reason) {
    show("view-key", "Sign in");
    setText($("key-error"), reason);
    $("api-key").value = "";
    $("key-offer").hidden = true;
  }

  function offerKey() {
    show("view-key", "Sign in");
    const current = apiKey
      ? ` You are signed in as ${keyOwner || "another owner"} (key ${keyLabel(apiKey)}); that key stays in use unless you switch.`
      : "";
    setText(
      $("key-offer"),
      `A link offered the API key ${keyLabel(offeredKey)}. Use it only if it is yours: every job ` +
        `made with it belongs to its owner.${current}`,
    );
    $("key-offer").hidden = false;
    setText($("key-error"), "");
    $("api-key").value = offeredKey;
    offeredKey = null;
  }

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const given = $("api-key").value.trim();
    if (!given) {
      setText($("key-error"), "Type your API key (it starts with ack_).");
      $("api-key").focus();
      return;
    }
    const previous = apiKey;
    apiKey = given;
    try {
      learnOwner((await api("GET", "/jobs?limit=1")).data);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        setText($("key-error"), describe(error));
        apiKey = previous;
      }
      $("api-key").focus();
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, apiKey);
    $("key-offer").hidden = true;
    if (!location.hash || location.hash === "#/jobs") route();
    else location.hash = "#/jobs";
  });

  $("forget-key").addEventListener("click", () => forgetKey("The key was forgotten."));

  // ------------------------------------------------------------------ jobs

  function hashQuery() {
    const index = location.hash.indexOf("?");
    return new URLSearchParams(index >= 0 ? location.hash.slice(index + 1) : "");
  }

  async function showJobs() {
    show("view-jobs", "Jobs");
    const query = hashQuery();
    $("filter-status").value = query.get("status") || "";
    $("filter-type").value = query.get("type") || "";
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const name of ["status", "type", "cursor"]) {
      if (query.get(name)) params.set(name, query.get(name));
    }
    const body = $("jobs-table").tBodies[0];
    clear(body);
    let page;
    try {
      page = (await api("GET", `/jobs?${params}`)).data;
      learnOwner(page);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(describe(error));
      return;
    }
    for (const job of page.jobs) {
      body.append(
        el(
          "tr",
          {},
          el("td", { class: "mono" }, jobLink(job.job_id)),
          el("td", {}, job.type),
          el("td", {}, status(job.status)),
          el("td", {}, job.quality || ""),
          el("td", { class: "num" }, usd(job.cost.actual_usd)),
          el("td", {}, job.created_at),
        ),
      );
    }
    $("jobs-empty").hidden = page.jobs.length > 0;
    const next = $("jobs-next");
    next.hidden = !page.next_cursor;
    next.onclick = () => {
      const q = hashQuery();
      listCursors.push(q.get("cursor") || "");
      q.set("cursor", page.next_cursor);
      location.hash = `#/jobs?${q}`;
    };
    $("jobs-first").hidden = !query.get("cursor");
    $("jobs-first").onclick = () => {
      const q = hashQuery();
      q.delete("cursor");
      listCursors = [];
      location.hash = `#/jobs?${q}`;
    };
  }

  $("job-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    if ($("filter-status").value) q.set("status", $("filter-status").value);
    if ($("filter-type").value) q.set("type", $("filter-type").value);
    listCursors = [];
    location.hash = `#/jobs?${q}`;
  });

  // ------------------------------------------------------------------ one job

  async function showJob(jobId, { quiet = false } = {}) {
    if (!quiet) {
      show("view-job", `Job ${jobId}`);
      setText($("job-title"), `Job ${jobId}`);
      for (const id of ["job-result", "job-children", "job-reextract"]) $(id).hidden = true;
    }
    let job;
    try {
      job = (await api("GET", `/jobs/${encodeURIComponent(jobId)}`)).data;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(describe(error));
      return;
    }
    // Left meanwhile: for another view, or another job (a batch's child ids begin with its id).
    if (routedJobId() !== jobId) return;
    renderJob(job);
    if (job.type === "batch") await renderChildren(job.job_id);
    if (routedJobId() !== jobId) return;
    await renderResult(job);
    if (routedJobId() !== jobId) return;
    watch(job);
  }

  function renderJob(job) {
    const children = job.children
      ? `${job.children.total} in all: ${job.children.completed} completed, ${job.children.failed} failed, ${job.children.cancelled} cancelled`
      : null;
    summary($("job-summary"), [
      ["Status", status(job.status)],
      ["Type", job.type],
      ["Quality", job.quality],
      ["Created", job.created_at],
      ["Updated", job.updated_at],
      ["Deadline", job.deadline_at],
      ["Cost", `${usd(job.cost.actual_usd, 6)} spent (estimated ${usd(job.cost.estimated_usd, 6)})`],
      ["Model", job.model],
      ["Strategies tried", job.fallback_chain.join(" → ")],
      ["Correlation id", job.correlation_id],
      ["Batch", job.parent_id ? jobLink(job.parent_id) : null],
      ["Children", children],
      ["Continued in", job.continued_in ? jobLink(job.continued_in) : null],
      ["Continues", job.continues ? jobLink(job.continues) : null],
      ["Re-extraction of", job.reextraction_of ? jobLink(job.reextraction_of.job_id) : null],
      ["Webhook", job.webhook ? `${job.webhook.state} (${job.webhook.attempts.length} attempts)` : null],
    ]);

    const quality = clear($("job-quality"));
    if (job.quality === "partial") {
      quality.append(
        el(
          "div",
          { class: "callout", id: "partial-reasons" },
          el("h2", {}, "Partial result: why"),
          el("ul", {}, job.quality_reasons.map((reason) => el("li", {}, reason))),
        ),
      );
    }
    const error = clear($("job-error"));
    if (job.error) {
      error.append(
        el(
          "div",
          { class: "callout bad" },
          el("h2", {}, `Error: ${job.error.code}`),
          el("p", {}, job.error.message),
          job.error.retryable ? el("p", {}, "The error is transient: the job may be retried.") : null,
        ),
      );
    }

    const timeline = clear($("job-timeline").tBodies[0]);
    for (const change of job.timeline) {
      timeline.append(el("tr", {}, el("td", {}, status(change.status)), el("td", {}, change.at), el("td", {}, change.reason || "")));
    }

    const attempts = clear($("job-attempts").tBodies[0]);
    for (const attempt of job.attempts) {
      attempts.append(
        el(
          "tr",
          {},
          el("td", {}, attempt.strategy),
          el("td", {}, attempt.model || "—"),
          el("td", { class: "num" }, attempt.input_tokens),
          el("td", { class: "num" }, attempt.cached_input_tokens),
          el("td", { class: "num" }, attempt.output_tokens),
          el("td", { class: "num" }, attempt.estimated_cost_usd === null ? "" : usd(attempt.estimated_cost_usd, 6)),
          el("td", { class: "num" }, attempt.cost_usd === null ? "" : usd(attempt.cost_usd, 6)),
          el("td", {}, attempt.error ? `${attempt.error.code}: ${attempt.error.message}` : ""),
        ),
      );
    }
    $("attempts-empty").hidden = job.attempts.length > 0;
    $("job-attempts").hidden = job.attempts.length === 0;

    const notes = clear($("job-notes"));
    for (const [title, items] of [["Routing", job.routing], ["Warnings", job.warnings]]) {
      if (!items.length) continue;
      notes.append(el("h2", {}, title), el("ul", { id: `job-${title.toLowerCase()}` }, items.map((item) => el("li", {}, item))));
    }

    setText($("job-request"), json(job.request));
    const cancel = $("job-cancel");
    cancel.hidden = TERMINAL.has(job.status);
    cancel.onclick = async () => {
      cancel.disabled = true;
      try {
        const cancelled = (await api("DELETE", `/jobs/${encodeURIComponent(job.job_id)}`)).data;
        notice(`Job ${job.job_id} is ${cancelled.status}.`);
        renderJob(cancelled);
        watch(cancelled);
      } catch (error) {
        notice(describe(error));
      } finally {
        cancel.disabled = false;
      }
    };
    $("job-refresh").onclick = () => showJob(job.job_id, { quiet: true });
    $("job-reextract").hidden = !(job.status === "completed" && job.type !== "batch");
    $("reextract-form").onsubmit = (event) => reextract(event, job);
  }

  // A view's section is drawn by the last request made for it, and only while its job is
  // still the one shown: a refresh and a poll that overlap would otherwise both clear it,
  // then both fill it (every row twice), and a late answer would draw over the next job.
  const drawing = {};
  function ticket(name, jobId) {
    const mine = (drawing[name] || 0) + 1;
    drawing[name] = mine;
    return () => drawing[name] === mine && routedJobId() === jobId;
  }

  async function renderChildren(parentId, cursor) {
    const section = $("job-children");
    const body = $("children-table").tBodies[0];
    const current = ticket("children", parentId);
    const params = new URLSearchParams({ parent: parentId, limit: "50" });
    if (cursor) params.set("cursor", cursor);
    let page;
    try {
      page = (await api("GET", `/jobs?${params}`)).data;
      learnOwner(page);
    } catch (error) {
      if (current()) notice(describe(error));
      return;
    }
    if (!current()) return; // a newer drawing of the children is on its way
    if (!cursor) clear(body);
    section.hidden = false;
    for (const child of page.jobs) {
      body.append(
        el(
          "tr",
          {},
          el("td", { class: "mono" }, jobLink(child.job_id)),
          el("td", {}, child.request.urls.join(" ")),
          el("td", {}, status(child.status)),
          el("td", {}, child.quality || ""),
        ),
      );
    }
    const more = $("children-next");
    more.hidden = !page.next_cursor;
    more.onclick = () => renderChildren(parentId, page.next_cursor);
  }

  async function renderResult(job) {
    const section = $("job-result");
    const current = ticket("result", job.job_id);
    if (!job.result_available && job.status !== "failed") {
      clear($("result-body"));
      section.hidden = true;
      return;
    }
    let view;
    try {
      view = (await api("GET", `/jobs/${encodeURIComponent(job.job_id)}/result?include_evidence=true`)).data;
    } catch (error) {
      if (!current()) return;
      const target = clear($("result-body"));
      section.hidden = !(error instanceof ApiError && error.status !== 409);
      if (!section.hidden) target.append(el("p", { class: "error" }, describe(error)));
      return;
    }
    if (!current()) return; // a newer drawing of the result is on its way
    const target = clear($("result-body"));
    section.hidden = false;
    if (view.delivery === "url") {
      target.append(
        el("p", {}, "The result is too large to show here: ", link(view.url, "download it (JSON)"), ` (the link is valid for ${view.expires_in_s} s).`),
      );
      return;
    }
    const result = view.result;
    target.append(el("h3", {}, "Data"), el("pre", { id: "result-data", tabindex: 0, "aria-label": "The extracted data as JSON" }, json(result.data)));
    if (result.diff) {
      const rows = result.diff.map((d) => el("tr", {}, el("td", { class: "mono" }, d.path), el("td", {}, d.change), el("td", { class: "mono" }, JSON.stringify(d.before)), el("td", { class: "mono" }, JSON.stringify(d.after))));
      target.append(
        el("h3", {}, "Changes against the earlier result"),
        rows.length
          ? el("table", { id: "result-diff" }, el("thead", {}, el("tr", {}, ["Field", "Change", "Before", "After"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows))
          : el("p", {}, "No field changed."),
      );
    }
    result.pages.forEach((page, index) => target.append(renderPage(page, index)));
  }

  function renderPage(page, index) {
    const box = el("section", { class: "page", "aria-labelledby": `page-${index}` }, el("h3", { id: `page-${index}` }, `Page ${index + 1}: ${page.url}`));
    const facts = el("dl", { class: "summary" });
    const view = page.view
      ? `${page.view.name} view, ${page.view.tokens} of ${page.view.full_page_tokens} tokens${page.view.widened ? " (widened to the full page)" : ""}`
      : null;
    const rendered = page.rendered
      ? `in a browser, ${page.rendered.ms} ms (${page.rendered.waited}${page.rendered.truncated ? ", cut to the size limit" : ""}): ${page.rendered.reason}`
      : null;
    summary(facts, [
      ["Status", status(page.status)],
      ["HTTP status", page.http_status],
      ["Strategy", page.strategy],
      ["Rendered", rendered],
      ["Model read", view],
      ["Not found", page.missing.join(", ")],
      ["Unverified", page.unverified.join(", ")],
      ["Problems", page.quality_problems.join("; ")],
      ["Error", page.error ? `${page.error.code}: ${page.error.message}` : null],
    ]);
    box.append(facts);
    const evidence = Object.entries(page.evidence || {});
    if (evidence.length) {
      const rows = evidence.map(([path, item]) =>
        el(
          "tr",
          {},
          el("td", { class: "mono" }, path),
          el("td", {}, item.kind),
          el("td", { class: "mono" }, item.source),
          el("td", { class: item.verified ? "verified-yes" : "verified-no" }, item.verified ? "verified" : "not found in the page"),
        ),
      );
      box.append(
        el(
          "table",
          { class: "evidence" },
          el("caption", {}, "Evidence: where each value came from"),
          el("thead", {}, el("tr", {}, ["Field", "Kind", "Selector, path or quote", "Verified"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows),
        ),
      );
    }
    return box;
  }

  async function reextract(event, job) {
    event.preventDefault();
    const mode = document.querySelector('input[name="rx-mode"]:checked').value;
    const spec = $("rx-spec").value.trim();
    const body = { diff: $("rx-diff").checked, include_evidence: true };
    try {
      body[mode] = mode === "instruction" ? spec : parseJson(spec, mode === "selectors" ? "Selectors" : "JSON schema");
    } catch (error) {
      notice(error.message);
      $("rx-spec").focus();
      return;
    }
    try {
      const created = (await api("POST", `/jobs/${encodeURIComponent(job.job_id)}/reextract`, body)).data;
      location.hash = `#/jobs/${encodeURIComponent(created.job.job_id)}`;
    } catch (error) {
      notice(describe(error));
    }
  }

  // ------------------------------------------------------------------ live updates

  function stopLive() {
    if (live.timer) clearTimeout(live.timer);
    if (live.socket) live.socket.close();
    live.timer = null;
    live.socket = null;
    live.jobId = null;
  }

  function watch(job) {
    if (live.timer) clearTimeout(live.timer);
    live.timer = null;
    if (TERMINAL.has(job.status)) {
      if (live.socket) live.socket.close();
      live.socket = null;
      return;
    }
    live.jobId = job.job_id;
    if (websocketUrl && subscribe(job.job_id)) return;
    live.timer = setTimeout(() => showJob(job.job_id, { quiet: true }), POLL_MS);
  }

  function subscribe(jobId) {
    if (live.socket && live.socket.readyState <= WebSocket.OPEN) return true;
    try {
      const socket = new WebSocket(`${websocketUrl}?api_key=${encodeURIComponent(apiKey)}`);
      socket.onopen = () => socket.send(JSON.stringify({ action: "subscribe", job_id: jobId }));
      socket.onmessage = (message) => {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (_) {
          return;
        }
        if (event.type === "job.status" && event.job_id === live.jobId) showJob(event.job_id, { quiet: true });
      };
      socket.onerror = () => {
        // The WebSocket is not reachable: poll instead.
        live.socket = null;
        if (live.jobId) live.timer = setTimeout(() => showJob(live.jobId, { quiet: true }), POLL_MS);
      };
      live.socket = socket;
      return true;
    } catch (_) {
      return false;
    }
  }

  // ------------------------------------------------------------------ a new job

  function parseJson(text, what) {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(`${what}: not valid JSON (${error.message})`);
    }
  }

  function newRequest() {
    const type = $("new-type").value;
    const urls = $("new-urls").value.split("\n").map((u) => u.trim()).filter(Boolean);
    if (!urls.length) throw new Error("URLs: give at least one URL");
    const body = { type, urls, include_evidence: $("new-evidence").checked };
    const mode = document.querySelector('input[name="mode"]:checked').value;
    const spec = $("new-spec").value.trim();
    if (mode === "instruction") body.instruction = spec;
    else if (mode === "selectors") body.selectors = parseJson(spec, "Selectors");
    else if (mode === "json_schema") body.json_schema = parseJson(spec, "JSON schema");
    const maxPages = $("new-max-pages").value;
    if (maxPages) body.crawl = { max_pages: Number(maxPages) };
    const maxCost = $("new-max-cost").value;
    if (maxCost) body.max_cost_usd = Number(maxCost);
    const webhook = $("new-webhook").value.trim();
    if (webhook) body.webhook_url = webhook;
    return body;
  }

  function showNew() {
    show("view-new", "New job");
    setText($("new-error"), "");
    $("quote").hidden = true;
  }

  // The form's request, or null with the problem shown under the form.
  function formRequest() {
    setText($("new-error"), "");
    try {
      return newRequest();
    } catch (error) {
      setText($("new-error"), error.message);
      return null;
    }
  }

  $("new-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = formRequest();
    if (!body) return;
    const submit = $("new-submit");
    submit.disabled = true;
    try {
      let job;
      if (body.type === "sync") {
        delete body.type;
        job = (await api("POST", "/extract", body)).data.job;
      } else {
        job = (await api("POST", "/jobs", body)).data;
      }
      location.hash = `#/jobs/${encodeURIComponent(job.job_id)}`;
    } catch (error) {
      setText($("new-error"), describe(error));
    } finally {
      submit.disabled = false;
    }
  });

  $("new-quote").addEventListener("click", async () => {
    const body = formRequest();
    if (!body) return;
    if (body.type === "sync") body.type = "async";
    const button = $("new-quote");
    button.disabled = true;
    try {
      const quote = (await api("POST", "/jobs/quote", body)).data;
      summary($("quote-body"), [
        ["Strategies", quote.strategy_chain.join(" → ")],
        ["Models", quote.models_available ? `available${quote.model ? ` (${quote.model}, tier ${quote.tier})` : ""}` : "not available"],
        ["Pages", `${quote.pages.expected} expected, ${quote.pages.fetched} fetched for this quote${quote.pages.failed.length ? `, ${quote.pages.failed.length} could not be read` : ""}`],
        ["Input tokens", quote.input_tokens],
        ["Cost", `${usd(quote.low_usd, 6)} low · ${usd(quote.expected_usd, 6)} expected · ${usd(quote.high_usd, 6)} high`],
        ["Ceiling", quote.max_cost_usd === null ? null : usd(quote.max_cost_usd, 6)],
        ["Notes", quote.notes.length ? el("ul", {}, quote.notes.map((n) => el("li", {}, n))) : null],
      ]);
      $("quote").hidden = false;
    } catch (error) {
      setText($("new-error"), describe(error));
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------------ routing

  // The job the address names, or null when it names another view.
  function routedJobId() {
    const match = (location.hash || "").match(/^#\/jobs\/([^/?]+)$/);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch (_) {
      return match[1]; // not percent-encoded text: the API answers that no such job exists
    }
  }

  function route() {
    stopLive();
    notice("");
    if (offeredKey) {
      offerKey();
      return;
    }
    if (!apiKey) {
      showKey();
      return;
    }
    const hash = location.hash || "#/jobs";
    const jobId = routedJobId();
    if (jobId !== null) showJob(jobId);
    else if (hash.startsWith("#/new")) showNew();
    else showJobs();
  }

  keyFromFragment();
  if (apiKey && !offeredKey) {
    api("GET", "/jobs?limit=1").then((answer) => learnOwner(answer.data), () => {});
  }
  $("live-mode").textContent = websocketUrl ? "live updates: WebSocket" : "live updates: polling";
  window.addEventListener("hashchange", () => {
    keyFromFragment();
    route();
  });
  route();
})();
