// The wfsched web UI: plain ES module, no build step, same origin as the API.
//
// Every /api call carries X-User-ID. Live updates come from Server-Sent Events read with fetch (an
// EventSource cannot send that header); if a stream cannot be opened the page polls the snapshot
// endpoints instead and keeps trying the stream.

const USER_KEY = "wfsched.user";
const IMAGE_KEY = "wfsched.imagePath";
const USER_PATTERN = /^[A-Za-z0-9._@-]{1,128}$/;
// The finished statuses come from the server (wfsched.models.state), written into the page.
const FINISHED = JSON.parse(document.getElementById("finished-statuses").textContent);
const FINISHED_WORKFLOW = new Set(FINISHED.workflow);
const FINISHED_JOB = new Set(FINISHED.job);
// Polling is the fallback only; once a second keeps bars moving without loading the service.
const POLL_MS = 1000;
// Reconnect delays of a dropped stream: quick at first, then every 10 s at most.
const RECONNECT_MS = [250, 1000, 2000, 5000, 10000];
// Cells smaller than this on the canvas are drawn as dots: an outline would be a smudge.
const MIN_OUTLINE_PX = 3;

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// ---------------------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

const session = { user: "" };

function headers(extra = {}) {
  return { "X-User-ID": session.user, ...extra };
}

async function request(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = { detail: `${response.status} ${response.statusText}` };
    }
    throw new ApiError(response.status, parsed);
  }
  return response;
}

const api = {
  json: async (path, options) => (await request(path, options)).json(),
  blob: async (path, options) => (await request(path, options)).blob(),
};

function artifactPath(workflowId, jobId, name) {
  return `/api/workflows/${encodeURIComponent(workflowId)}/jobs/${encodeURIComponent(jobId)}` +
    `/artifacts/${encodeURIComponent(name)}`;
}

// ------------------------------------------------------------------------------------- streams

// Parses a text/event-stream body into {id, event, data} frames; comments (keep-alives) are dropped.
class FrameParser {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.buffer = "";
  }

  push(text) {
    this.buffer += text.replace(/\r\n?/g, "\n");
    let end;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.parse(block);
    }
  }

  parse(block) {
    const frame = { id: null, event: "message", data: [] };
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") frame.id = value;
      else if (field === "event") frame.event = value;
      else if (field === "data") frame.data.push(value);
    }
    if (frame.data.length) this.onFrame({ ...frame, data: frame.data.join("\n") });
  }
}

// One SSE subscription with resume (Last-Event-ID), reconnects, and a polling fallback.
//   onEvent(event)  every event object, in order
//   poll()          called every POLL_MS while the stream is down (the snapshot fallback)
//   onMode(mode)    "connecting" | "live" | "polling" | "closed"
//   isFinal(event)  true after the event that ends the stream (no reconnect then)
class LiveStream {
  constructor(path, { onEvent, poll, onMode = () => {}, isFinal = () => false }) {
    Object.assign(this, { path, onEvent, poll, onMode, isFinal });
    this.lastId = null;
    this.failures = 0;
    this.stopped = false;
    this.controller = null;
    this.pollTimer = null;
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
    this.stopPolling();
    this.onMode("closed");
  }

  async run() {
    while (!this.stopped) {
      this.onMode(this.pollTimer ? "polling" : "connecting");
      const finished = await this.connectOnce();
      if (finished || this.stopped) break;
      this.failures += 1;
      this.startPolling();
      const delay = RECONNECT_MS[Math.min(this.failures - 1, RECONNECT_MS.length - 1)];
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    this.stopPolling();
    if (!this.stopped) this.onMode("closed");
  }

  // Reads the stream until it ends; true when it ended for good (its final event came).
  async connectOnce() {
    this.controller = new AbortController();
    const extra = { Accept: "text/event-stream" };
    if (this.lastId !== null) extra["Last-Event-ID"] = this.lastId;
    let final = false;
    try {
      const response = await fetch(this.path, { headers: headers(extra), signal: this.controller.signal });
      const type = response.headers.get("content-type") || "";
      if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
        response.body?.cancel();
        return false;
      }
      this.failures = 0;
      this.stopPolling();
      this.onMode("live");
      const parser = new FrameParser((frame) => {
        if (frame.id !== null) this.lastId = frame.id;
        let event;
        try {
          event = JSON.parse(frame.data);
        } catch {
          return;
        }
        event.type = event.type || frame.event;
        this.onEvent(event);
        if (this.isFinal(event)) final = true;
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
        if (final) {
          reader.cancel();
          break;
        }
      }
    } catch (error) {
      if (error.name !== "AbortError") console.warn("stream", this.path, error);
    }
    return final;
  }

  startPolling() {
    if (this.pollTimer || this.stopped || !this.poll) return;
    this.onMode("polling");
    const tick = async () => {
      try {
        await this.poll();
      } catch (error) {
        console.warn("poll", this.path, error);
      }
    };
    tick();
    this.pollTimer = setInterval(tick, POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}

function showMode(node, mode) {
  const labels = {
    connecting: "connecting…",
    live: "live",
    polling: "polling (stream unavailable)",
    closed: "",
  };
  node.dataset.mode = mode;
  node.textContent = labels[mode] ?? "";
}

// -------------------------------------------------------------------------------- formatting

function percentText(value) {
  return `${Math.round(value)} %`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function when(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function number(value, digits = 0) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

function badge(status, testid) {
  return el("span", { class: `badge ${status}`, "data-testid": testid, dataset: { status } }, status);
}

function queueText(position) {
  return position === null || position === undefined ? "" : `#${position} in line`;
}

// --------------------------------------------------------------------------------- the user

const userForm = $("[data-testid=user-form]");
const userInput = $("#user-input");

function setUser(user) {
  session.user = user;
  localStorage.setItem(USER_KEY, user);
  userInput.value = user;
  document.body.dataset.user = user;
  route();
}

userForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const user = userInput.value.trim();
  if (!USER_PATTERN.test(user)) {
    userInput.setCustomValidity("1 to 128 characters: letters, digits, . _ @ -");
    userInput.reportValidity();
    return;
  }
  userInput.setCustomValidity("");
  setUser(user);
});
userInput.addEventListener("input", () => userInput.setCustomValidity(""));

// --------------------------------------------------------------------------- submit a workflow

const submitError = $("[data-testid=submit-error]");
const submitOk = $("[data-testid=submit-ok]");
const formPanel = $("#panel-form");
const jsonPanel = $("#panel-json");
const jsonText = $("#wf-json");
const imageInput = $("#wf-image");
const tissueBox = $("#wf-tissue");
const cellsBox = $("#wf-cells");

function formBody() {
  const image = imageInput.value.trim();
  const jobs = [];
  if (tissueBox.checked) {
    jobs.push({ job_id: "tissue", job_type: "tissue_mask", image_path: image, branch: "main" });
  }
  if (cellsBox.checked) {
    const params = { model: $("#wf-model").value };
    const tile = Number($("#wf-tile").value);
    const halo = Number($("#wf-halo").value);
    if (tile) params.tile_size_px = tile;
    if (halo) params.halo_px = halo;
    const job = { job_id: "cells", job_type: "cell_segmentation", image_path: image, branch: "main", params };
    if (tissueBox.checked) job.depends_on = ["tissue"];
    jobs.push(job);
  }
  return { name: $("#wf-name").value.trim() || "Untitled workflow", jobs };
}

function showSubmitError(error) {
  submitOk.hidden = true;
  submitError.replaceChildren();
  const body = error instanceof ApiError ? error.body : { detail: String(error.message || error) };
  const title = error instanceof ApiError ? `The service refused the workflow (${error.status})` : "Not submitted";
  const problems = Array.isArray(body.problems) ? body.problems : [];
  // With problems listed per job, the detail (the same sentences joined) would say it all twice.
  const detail = problems.length
    ? `${problems.length} problem${problems.length === 1 ? "" : "s"}, by job:` : body.detail || "";
  submitError.append(el("strong", {}, title), el("p", { "data-testid": "submit-error-detail" }, detail));
  if (problems.length) {
    const list = el("ul", { class: "problems", "data-testid": "submit-problems" });
    for (const problem of problems) {
      list.append(el("li", { dataset: { jobId: problem.job_id ?? "" } },
        problem.job_id ? el("code", {}, problem.job_id) : el("em", {}, "workflow"), " — ", problem.reason));
    }
    submitError.append(list);
  }
  submitError.hidden = false;
}

async function submit(body) {
  submitError.hidden = true;
  submitOk.hidden = true;
  try {
    const created = await api.json("/api/workflows", { method: "POST", body });
    const where = created.queue_position ? `queued, #${created.queue_position} in line` : created.status;
    submitOk.replaceChildren("Submitted ",
      el("a", { href: `#/workflows/${created.workflow_id}`, "data-testid": "submitted-link" }, body.name || "workflow"),
      ` — ${where}.`);
    submitOk.hidden = false;
    home.reload();
    location.hash = `#/workflows/${created.workflow_id}`;
  } catch (error) {
    showSubmitError(error);
  }
}

formPanel.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = formBody();
  if (!imageInput.value.trim()) {
    showSubmitError(new Error("Enter the path of a slide."));
    imageInput.focus();
    return;
  }
  if (!body.jobs.length) {
    showSubmitError(new Error("Choose at least one job."));
    return;
  }
  localStorage.setItem(IMAGE_KEY, imageInput.value.trim());
  submit(body);
});

jsonPanel.addEventListener("submit", (event) => {
  event.preventDefault();
  let body;
  try {
    body = JSON.parse(jsonText.value);
  } catch (error) {
    showSubmitError(new Error(`The JSON does not parse: ${error.message}`));
    jsonText.focus();
    return;
  }
  submit(body);
});

function selectTab(which) {
  const json = which === "json";
  if (json && !jsonText.value.trim()) jsonText.value = JSON.stringify(formBody(), null, 2);
  formPanel.hidden = json;
  jsonPanel.hidden = !json;
  for (const [tab, selected] of [[$("#tab-form"), !json], [$("#tab-json"), json]]) {
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
}

$("#tab-form").addEventListener("click", () => selectTab("form"));
$("#tab-json").addEventListener("click", () => selectTab("json"));
$(".tabs").addEventListener("keydown", (event) => {
  if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
  const toJson = $("#tab-json").getAttribute("aria-selected") !== "true";
  selectTab(toJson ? "json" : "form");
  (toJson ? $("#tab-json") : $("#tab-form")).focus();
});
$("#to-json").addEventListener("click", () => {
  jsonText.value = JSON.stringify(formBody(), null, 2);
  selectTab("json");
  jsonText.focus();
});
$("#json-format").addEventListener("click", () => {
  try {
    jsonText.value = JSON.stringify(JSON.parse(jsonText.value), null, 2);
  } catch (error) {
    showSubmitError(new Error(`The JSON does not parse: ${error.message}`));
  }
});
cellsBox.addEventListener("change", () => {
  for (const input of $("#cells-options").querySelectorAll("input, select")) input.disabled = !cellsBox.checked;
});

// -------------------------------------------------------------------------- my workflows list

const home = {
  rows: new Map(),
  cursor: null,
  stream: null,
  reloadTimer: null,
  generation: 0,

  table: $("[data-testid=workflow-list] tbody"),
  empty: $("[data-testid=workflow-list-empty]"),
  more: $("[data-testid=load-more]"),
  filter: $("[data-testid=status-filter]"),
  live: $("[data-testid=events-live]"),

  show() {
    this.reload();
    if (!this.stream) {
      this.stream = new LiveStream("/api/events", {
        onEvent: (event) => this.apply(event),
        poll: () => this.reload(),
        onMode: (mode) => showMode(this.live, mode),
      }).start();
    }
  },

  hide() {
    this.stream?.stop();
    this.stream = null;
  },

  async reload(append = false) {
    const generation = ++this.generation;
    const params = new URLSearchParams({ limit: "50" });
    if (this.filter.value) params.set("status", this.filter.value);
    if (append && this.cursor) params.set("cursor", this.cursor);
    let page;
    try {
      page = await api.json(`/api/workflows?${params}`);
    } catch (error) {
      console.warn("list", error);
      return;
    }
    if (generation !== this.generation) return;
    if (!append) {
      this.rows.clear();
      this.table.replaceChildren();
    }
    for (const workflow of page.workflows) this.row(workflow);
    this.cursor = page.next_cursor;
    this.more.hidden = !this.cursor;
    this.empty.hidden = this.rows.size > 0;
  },

  row(workflow) {
    const id = workflow.workflow_id;
    let row = this.rows.get(id);
    if (!row) {
      row = el("tr", { "data-testid": "workflow-row", dataset: { workflowId: id } },
        el("td", {}, el("a", { href: `#/workflows/${id}`, class: "wf-link" }), el("code", { class: "wf-id" })),
        el("td", { class: "status" }),
        el("td", { class: "queue" }),
        el("td", { class: "time" }));
      this.rows.set(id, row);
      this.table.append(row);
    }
    const [nameCell, statusCell, queueCell, timeCell] = row.children;
    nameCell.firstChild.textContent = workflow.name;
    nameCell.lastChild.textContent = id.slice(0, 12);
    statusCell.replaceChildren(badge(workflow.status, "workflow-row-status"));
    queueCell.textContent = queueText(workflow.queue_position) || "—";
    queueCell.dataset.testid = "workflow-row-queue";
    timeCell.textContent = when(workflow.created_at);
    row.dataset.status = workflow.status;
    Object.assign(row, { workflow });
  },

  apply(event) {
    const row = this.rows.get(event.workflow_id);
    if (!row) {
      // A workflow this page has not listed yet (submitted elsewhere): fetch the page again, once.
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => this.reload(), 300);
      return;
    }
    const workflow = { ...row.workflow };
    const data = event.data || {};
    if (event.type === "workflow.queued") {
      workflow.status = "queued";
      workflow.queue_position = data.queue_position ?? workflow.queue_position;
    } else if (event.type === "workflow.admitted") {
      workflow.status = data.status || "running";
      workflow.queue_position = null;
    } else if (event.type === "workflow.finished") {
      workflow.status = data.status;
      workflow.queue_position = null;
    } else {
      return;
    }
    this.row(workflow);
  },
};

home.filter.addEventListener("change", () => home.reload());
home.more.addEventListener("click", () => home.reload(true));

// ---------------------------------------------------------------------------- one workflow

const view = {
  id: null,
  workflow: null,
  jobs: new Map(),
  stream: null,
  refreshTimer: null,
  pictures: new Map(),

  body: $("#workflow-body"),
  notFound: $("[data-testid=not-found]"),
  lanes: $("[data-testid=lanes]"),
  cancel: $("[data-testid=cancel-button]"),
  live: $("[data-testid=stream-live]"),

  async show(id) {
    this.hide();
    this.id = id;
    this.body.hidden = true;
    this.notFound.hidden = true;
    let workflow;
    try {
      workflow = await api.json(`/api/workflows/${encodeURIComponent(id)}`);
    } catch (error) {
      if (this.id !== id) return;
      this.notFound.textContent = error.status === 404
        ? `Workflow ${id} was not found for user ${session.user}.`
        : `Cannot load workflow ${id}: ${error.message}`;
      this.notFound.hidden = false;
      return;
    }
    if (this.id !== id) return;
    this.build(workflow);
    this.body.hidden = false;
    if (!FINISHED_WORKFLOW.has(workflow.status)) {
      this.stream = new LiveStream(`/api/progress/${encodeURIComponent(id)}/stream`, {
        onEvent: (event) => this.apply(event),
        poll: () => this.poll(),
        onMode: (mode) => showMode(this.live, mode),
        isFinal: (event) => event.type === "workflow.finished",
      }).start();
    }
  },

  hide() {
    this.stream?.stop();
    this.stream = null;
    clearTimeout(this.refreshTimer);
    this.id = null;
    this.workflow = null;
    this.jobs.clear();
    this.pictures.clear();
    // Nothing of the last workflow stays in the page (another user may be next).
    this.lanes.replaceChildren();
    $("[data-testid=pictures]").replaceChildren();
    $("[data-testid=artifacts]").replaceChildren();
    $("[data-testid=results]").hidden = true;
  },

  build(workflow) {
    this.workflow = workflow;
    this.jobs.clear();
    $("[data-testid=workflow-name]").textContent = workflow.name;
    $("[data-testid=workflow-id]").textContent = workflow.workflow_id;
    document.title = `${workflow.name} · wfsched`;
    const byId = new Map(workflow.jobs.map((job) => [job.job_id, job]));
    const lanes = [];
    for (const [branch, jobIds] of Object.entries(workflow.branches)) {
      const list = el("ol", { class: "lane-jobs" });
      for (const jobId of jobIds) {
        const job = byId.get(jobId);
        const card = this.jobCard(job);
        this.jobs.set(jobId, { job, card, rate: null, eta: null });
        list.append(card);
      }
      lanes.push(el("section", { class: "lane", "data-testid": "lane", dataset: { branch }, "aria-label": `Branch ${branch}` },
        el("h3", { class: "lane-title" }, el("span", { class: "lane-name" }, branch),
          el("span", { class: "lane-count" }, `${jobIds.length} job${jobIds.length === 1 ? "" : "s"}, in order`)),
        list));
    }
    this.lanes.replaceChildren(...lanes);
    this.lanes.style.setProperty("--lanes", String(Math.min(lanes.length, 3)));
    for (const entry of this.jobs.values()) this.renderJob(entry);
    this.renderWorkflow();
    this.renderResults();
  },

  jobCard(job) {
    return el("li", { class: "job", "data-testid": "job", dataset: { jobId: job.job_id } },
      el("div", { class: "job-head" },
        el("span", { class: "job-id" }, job.job_id),
        el("code", { class: "job-type" }, job.job_type),
        el("span", { class: "job-status" })),
      el("div", { class: "bar", role: "progressbar", "aria-label": `Progress of ${job.job_id}`,
        "aria-valuemin": "0", "aria-valuemax": "100", "data-testid": "job-progress",
        dataset: { jobId: job.job_id } }, el("span", { class: "fill" })),
      el("div", { class: "job-stats", "data-testid": "job-stats" }),
      job.depends_on?.length ? el("p", { class: "job-deps" }, "after ", job.depends_on.join(", ")) : null,
      el("p", { class: "job-image", title: job.image_path }, job.image_path),
      el("div", { class: "job-error", role: "alert", "data-testid": "job-error", hidden: true }),
      el("div", { class: "job-result", "data-testid": "job-result", hidden: true }));
  },

  renderJob(entry) {
    const { job, card } = entry;
    const percent = jobPercent(job);
    card.dataset.status = job.status;
    $(".job-status", card).replaceChildren(badge(job.status, "job-status"));
    const bar = $(".bar", card);
    const indeterminate = job.status === "running" && !job.progress_total;
    bar.classList.toggle("indeterminate", indeterminate);
    bar.dataset.status = job.status;
    bar.dataset.percent = String(Math.round(percent * 100) / 100);
    bar.setAttribute("aria-valuenow", String(Math.round(percent)));
    if (indeterminate) bar.removeAttribute("aria-valuenow");
    $(".fill", bar).style.width = `${percent}%`;

    const parts = [];
    if (job.progress_total) parts.push(`${number(job.progress_done)} / ${number(job.progress_total)} tiles`);
    if (job.status === "running" || job.progress_total) parts.push(percentText(percent));
    if (job.status === "running" && entry.rate) parts.push(`${number(entry.rate, 1)} tiles/s`);
    if (job.status === "running" && entry.eta !== null && entry.eta !== undefined) {
      parts.push(`ETA ${duration(entry.eta)}`);
    }
    if (FINISHED_JOB.has(job.status) && job.started_at && job.finished_at) {
      parts.push(`took ${duration(job.finished_at - job.started_at)}`);
    }
    if (job.status === "pending") parts.push("waiting for its turn");
    $(".job-stats", card).textContent = parts.join(" · ");

    const error = $(".job-error", card);
    error.hidden = !job.error;
    error.textContent = job.error || "";

    const result = $(".job-result", card);
    const summary = resultSummary(job);
    result.hidden = !summary;
    result.textContent = summary;
  },

  renderWorkflow() {
    const workflow = this.workflow;
    const status = $("[data-testid=workflow-status]");
    status.className = `badge ${workflow.status}`;
    status.dataset.status = workflow.status;
    status.textContent = workflow.status;
    const queue = $("[data-testid=workflow-queue]");
    queue.hidden = workflow.queue_position === null || workflow.queue_position === undefined;
    queue.textContent = queueText(workflow.queue_position);
    const times = [`submitted ${when(workflow.created_at)}`];
    if (workflow.admitted_at) times.push(`admitted ${when(workflow.admitted_at)}`);
    if (workflow.finished_at) times.push(`finished ${when(workflow.finished_at)}`);
    $("[data-testid=workflow-times]").textContent = times.join(" · ");
    const jobs = [...this.jobs.values()].map((entry) => entry.job);
    const percent = jobs.length ? jobs.reduce((sum, job) => sum + jobPercent(job), 0) / jobs.length : 0;
    const bar = $("[data-testid=workflow-progress]");
    bar.dataset.percent = String(Math.round(percent * 100) / 100);
    bar.dataset.status = workflow.status;
    bar.setAttribute("aria-valuenow", String(Math.round(percent)));
    $(".fill", bar).style.width = `${percent}%`;
    $("[data-testid=workflow-percent]").textContent = percentText(percent);
    this.cancel.disabled = FINISHED_WORKFLOW.has(workflow.status);
    this.cancel.textContent = workflow.status === "cancelled" ? "Cancelled" : "Cancel workflow";
  },

  apply(event) {
    if (event.workflow_id !== this.id || !this.workflow) return;
    const data = event.data || {};
    const entry = data.job_id ? this.jobs.get(data.job_id) : null;
    switch (event.type) {
      case "workflow.queued":
        this.workflow.status = "queued";
        this.workflow.queue_position = data.queue_position ?? null;
        break;
      case "workflow.admitted":
        this.workflow.status = data.status || "running";
        this.workflow.queue_position = null;
        this.workflow.admitted_at = this.workflow.admitted_at || event.ts;
        break;
      case "workflow.finished":
        this.workflow.status = data.status;
        this.workflow.queue_position = null;
        this.workflow.finished_at = this.workflow.finished_at || event.ts;
        this.refresh(0);
        break;
      case "job.state":
        if (!entry) return;
        entry.job.status = data.status;
        if (data.error !== undefined) entry.job.error = data.error;
        if (data.status === "running") {
          entry.job.started_at = entry.job.started_at || event.ts;
          entry.rate = entry.eta = null;
        } else if (FINISHED_JOB.has(data.status)) {
          entry.job.finished_at = entry.job.finished_at || event.ts;
          // The result (and its artifacts) is in the workflow, not in the event.
          this.refresh(200);
        }
        this.renderJob(entry);
        break;
      case "job.progress":
        if (!entry) return;
        entry.job.progress_done = data.done;
        entry.job.progress_total = data.total;
        entry.rate = data.rate_per_s ?? entry.rate;
        entry.eta = data.eta_s ?? null;
        if (!FINISHED_JOB.has(entry.job.status)) entry.job.status = "running";
        this.renderJob(entry);
        break;
      default:
        return;
    }
    this.renderWorkflow();
  },

  // The snapshot fallback while the stream is down.
  async poll() {
    const id = this.id;
    const snapshot = await api.json(`/api/progress/${encodeURIComponent(id)}`);
    if (id !== this.id) return;
    let settled = false;
    for (const progress of snapshot.jobs) {
      const entry = this.jobs.get(progress.job_id);
      if (!entry) continue;
      if (entry.job.status !== progress.status && FINISHED_JOB.has(progress.status)) settled = true;
      Object.assign(entry.job, { status: progress.status, progress_done: progress.done, progress_total: progress.total });
      this.renderJob(entry);
    }
    Object.assign(this.workflow, { status: snapshot.status, queue_position: snapshot.queue_position });
    this.renderWorkflow();
    if (settled || FINISHED_WORKFLOW.has(snapshot.status)) this.refresh(0);
    if (FINISHED_WORKFLOW.has(snapshot.status)) this.stream?.stop();
  },

  // Reloads the whole workflow (results, errors, times) soon, coalescing bursts of events.
  refresh(delayMs) {
    clearTimeout(this.refreshTimer);
    const id = this.id;
    this.refreshTimer = setTimeout(async () => {
      try {
        const workflow = await api.json(`/api/workflows/${encodeURIComponent(id)}`);
        if (id !== this.id) return;
        this.workflow = workflow;
        for (const job of workflow.jobs) {
          const entry = this.jobs.get(job.job_id);
          if (!entry) continue;
          entry.job = job;
          this.renderJob(entry);
        }
        this.renderWorkflow();
        this.renderResults();
      } catch (error) {
        console.warn("refresh", error);
      }
    }, delayMs);
  },

  async cancelWorkflow() {
    this.cancel.disabled = true;
    const error = $("[data-testid=workflow-error]");
    error.hidden = true;
    try {
      await request(`/api/workflows/${encodeURIComponent(this.id)}/cancel`, { method: "POST" });
      this.refresh(0);
    } catch (failure) {
      error.textContent = `Cannot cancel: ${failure.message}`;
      error.hidden = false;
      this.cancel.disabled = FINISHED_WORKFLOW.has(this.workflow.status);
    }
  },

  renderResults() {
    const workflow = this.workflow;
    const section = $("[data-testid=results]");
    const withArtifacts = workflow.jobs.filter((job) => job.result && Array.isArray(job.result.artifacts));
    section.hidden = withArtifacts.length === 0;
    this.renderDownloads(withArtifacts);
    const pictures = $("[data-testid=pictures]");
    for (const [image, group] of pictureGroups(withArtifacts)) {
      const key = `${image}|${group.map((job) => job.job_id).join(",")}`;
      if (this.pictures.has(key)) continue;
      const previous = pictures.querySelector(`[data-image="${CSS.escape(image)}"]`);
      const picture = new Picture(workflow.workflow_id, image, group);
      this.pictures.set(key, picture);
      if (previous) previous.replaceWith(picture.node);
      else pictures.append(picture.node);
      picture.draw();
    }
  },

  renderDownloads(jobs) {
    const list = $("[data-testid=artifacts]");
    list.replaceChildren(...jobs.map((job) =>
      el("li", {},
        el("span", { class: "dl-job" }, job.job_id, " ", el("code", {}, job.job_type)),
        el("span", { class: "dl-files" }, ...job.result.artifacts.map((name) =>
          el("a", { href: artifactPath(this.workflow.workflow_id, job.job_id, name), class: "dl",
            "data-testid": "artifact-link", dataset: { jobId: job.job_id, name },
            download: name.endsWith(".zarr") ? `${name}.zip` : name,
            onclick: (event) => { event.preventDefault(); download(event.currentTarget); } }, name))))));
  },
};

view.cancel.addEventListener("click", () => view.cancelWorkflow());

// What a bar shows: the work done. A job that failed, was skipped or cancelled keeps what it did
// (the snapshot endpoint counts it as 100, "settled"; a full grey bar would read as "done").
function jobPercent(job) {
  if (job.status === "succeeded") return 100;
  if (job.progress_total) return Math.min(100, (100 * job.progress_done) / job.progress_total);
  return 0;
}

function resultSummary(job) {
  const result = job.result;
  if (!result || job.status !== "succeeded") return "";
  if (job.job_type === "tissue_mask") {
    return `Tissue ${number(result.tissue_area_mm2, 2)} mm² (${number(100 * result.tissue_fraction, 1)} % of the slide)` +
      (result.slide_width_px ? ` · slide ${number(result.slide_width_px)} × ${number(result.slide_height_px)} px` : "");
  }
  if (job.job_type === "cell_segmentation") {
    return `${number(result.cell_count)} cells · ${number(result.cells_per_mm2)} per mm² of ` +
      `${number(result.tissue_area_mm2, 2)} mm² tissue`;
  }
  return "";
}

// Authenticated download: the link's URL needs the X-User-ID header, so fetch it and save the blob.
async function download(link) {
  link.classList.add("busy");
  try {
    const blob = await api.blob(link.getAttribute("href"));
    const url = URL.createObjectURL(blob);
    const save = el("a", { href: url, download: link.getAttribute("download") });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    link.title = `Download failed: ${error.message}`;
    link.classList.add("failed");
  } finally {
    link.classList.remove("busy");
  }
}

// ------------------------------------------------------------------------------- pictures

// Jobs with pictures to draw, by slide: the tissue job's thumbnail and mask, the cells' detections.
function pictureGroups(jobs) {
  const groups = new Map();
  for (const job of jobs) {
    if (job.status !== "succeeded") continue;
    const names = job.result.artifacts;
    const drawable = names.includes("thumbnail.png") || names.includes("tissue_mask.png") ||
      names.includes("detections.geojson");
    if (!drawable) continue;
    if (!groups.has(job.image_path)) groups.set(job.image_path, []);
    groups.get(job.image_path).push(job);
  }
  return groups;
}

class Picture {
  constructor(workflowId, image, jobs) {
    this.workflowId = workflowId;
    this.jobs = jobs;
    this.layers = { thumbnail: null, outline: null, mask: null, cells: null };
    this.canvas = el("canvas", { "data-testid": "result-canvas", role: "img",
      "aria-label": `Slide ${image} with its tissue mask and detected cells`, width: 640, height: 480 });
    this.maskToggle = el("input", { type: "checkbox", checked: true, "data-testid": "layer-mask",
      onchange: () => this.compose() });
    this.cellsToggle = el("input", { type: "checkbox", checked: true, "data-testid": "layer-cells",
      onchange: () => this.compose() });
    this.status = el("p", { class: "picture-status", "data-testid": "picture-status", role: "status" }, "Drawing…");
    this.node = el("figure", { class: "card picture", "data-testid": "picture", dataset: { image } },
      el("div", { class: "canvas-wrap" }, this.canvas),
      el("figcaption", {},
        el("p", { class: "picture-title", title: image }, image.split("/").pop()),
        el("div", { class: "legend" },
          el("label", { class: "check" }, this.maskToggle, el("span", { class: "swatch mask" }), "Tissue mask"),
          el("label", { class: "check" }, this.cellsToggle, el("span", { class: "swatch cells" }), "Detected cells")),
        this.status));
  }

  job(type) {
    return this.jobs.find((job) => job.job_type === type);
  }

  artifact(job, name) {
    return job && job.result.artifacts.includes(name) ? artifactPath(this.workflowId, job.job_id, name) : null;
  }

  async draw() {
    try {
      const tissueJob = this.job("tissue_mask");
      const cellsJob = this.job("cell_segmentation");
      const thumbnailUrl = this.artifact(tissueJob, "thumbnail.png");
      // The tissue outline comes from the GeoJSON (level-0 px, crisp at any scale); the PNG mask is
      // the fallback, coarse (~8 µm/px) and so blurry when stretched.
      const outlineUrl = this.artifact(tissueJob, "tissue.geojson") || this.artifact(cellsJob, "tissue.geojson");
      const maskUrl = outlineUrl ? null
        : this.artifact(tissueJob, "tissue_mask.png") || this.artifact(cellsJob, "tissue_mask.png");
      const detectionsUrl = this.artifact(cellsJob, "detections.geojson");
      const [thumbnail, outline, mask, detections] = await Promise.all([
        thumbnailUrl ? api.blob(thumbnailUrl).then((blob) => createImageBitmap(blob)) : null,
        outlineUrl ? api.json(outlineUrl) : null,
        maskUrl ? api.blob(maskUrl).then((blob) => createImageBitmap(blob)) : null,
        detectionsUrl ? api.json(detectionsUrl) : null,
      ]);
      const slideWidthPx = tissueJob?.result.slide_width_px ?? extent(detections).width;
      const slideHeightPx = tissueJob?.result.slide_height_px ?? extent(detections).height;
      // The thumbnail sets the canvas; without one the slide is drawn at most 1024 px on its long side.
      const width = thumbnail ? thumbnail.width : Math.round(slideWidthPx * Math.min(1, 1024 / Math.max(slideWidthPx, slideHeightPx)));
      const height = thumbnail ? thumbnail.height : Math.round(width * (slideHeightPx / slideWidthPx));
      this.canvas.width = Math.max(1, width);
      this.canvas.height = Math.max(1, height);
      this.layers.thumbnail = thumbnail;
      const scale = this.canvas.width / slideWidthPx;
      this.layers.outline = outline ? outlineLayer(outline, scale) : null;
      this.layers.mask = mask ? tint(mask) : null;
      this.layers.cells = detections ? cellsLayer(detections, scale) : null;
      this.maskToggle.disabled = !outline && !mask;
      this.cellsToggle.disabled = !detections;
      this.compose();
      const parts = [];
      if (tissueJob) parts.push(resultSummary(tissueJob));
      if (cellsJob) parts.push(resultSummary(cellsJob));
      this.status.textContent = parts.filter(Boolean).join(" · ");
      this.canvas.dataset.cellsDrawn = String(this.layers.cells?.count ?? 0);
      this.canvas.dataset.ready = "true";
    } catch (error) {
      this.status.textContent = `Cannot draw the results: ${error.message}`;
      this.canvas.dataset.ready = "error";
    }
  }

  compose() {
    const ctx = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    ctx.fillStyle = "#f3f1ee";
    ctx.fillRect(0, 0, width, height);
    if (this.layers.thumbnail) ctx.drawImage(this.layers.thumbnail, 0, 0, width, height);
    if (this.layers.outline && this.maskToggle.checked) {
      ctx.save();
      ctx.fillStyle = "rgba(0, 200, 160, 0.16)";
      ctx.fill(this.layers.outline, "evenodd");
      ctx.strokeStyle = "rgba(0, 235, 185, 0.95)";
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke(this.layers.outline);
      ctx.restore();
    } else if (this.layers.mask && this.maskToggle.checked) {
      ctx.drawImage(this.layers.mask, 0, 0, width, height);
    }
    const cells = this.layers.cells;
    if (cells && this.cellsToggle.checked) {
      ctx.save();
      ctx.fillStyle = "rgba(255, 214, 0, 0.28)";
      ctx.strokeStyle = "rgba(255, 221, 0, 1)";
      ctx.lineWidth = Math.max(1, width / 600);
      if (cells.outlines) {
        ctx.fill(cells.path);
        ctx.stroke(cells.path);
      } else {
        ctx.fillStyle = "rgba(255, 214, 0, 0.9)";
        ctx.fill(cells.path);
      }
      ctx.restore();
    }
  }
}

// The mask (white = tissue) as a translucent teal overlay with a stronger edge.
function tint(mask) {
  const canvas = document.createElement("canvas");
  canvas.width = mask.width;
  canvas.height = mask.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(mask, 0, 0);
  const image = ctx.getImageData(0, 0, mask.width, mask.height);
  const px = image.data;
  const w = mask.width;
  const on = (i) => px[i * 4] > 127;
  const inside = new Uint8Array(w * mask.height);
  for (let i = 0; i < inside.length; i++) inside[i] = on(i) ? 1 : 0;
  for (let i = 0; i < inside.length; i++) {
    const x = i % w;
    const edge = inside[i] && (
      x === 0 || x === w - 1 || i < w || i >= inside.length - w ||
      !inside[i - 1] || !inside[i + 1] || !inside[i - w] || !inside[i + w]);
    px[i * 4] = 0;
    px[i * 4 + 1] = edge ? 150 : 190;
    px[i * 4 + 2] = edge ? 120 : 150;
    px[i * 4 + 3] = edge ? 230 : inside[i] ? 70 : 0;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

// The tissue annotation (Polygon / MultiPolygon with holes) scaled from level-0 pixels to the canvas.
function outlineLayer(collection, scale) {
  const path = new Path2D();
  for (const feature of collection.features || []) {
    const geometry = feature.geometry || {};
    const polygons = geometry.type === "Polygon" ? [geometry.coordinates]
      : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
    for (const polygon of polygons) {
      for (const ring of polygon) {
        ring.forEach(([x, y], i) => (i ? path.lineTo(x * scale, y * scale) : path.moveTo(x * scale, y * scale)));
        path.closePath();
      }
    }
  }
  return path;
}

function* rings(geometry) {
  if (!geometry) return;
  if (geometry.type === "Polygon") yield geometry.coordinates[0];
  else if (geometry.type === "MultiPolygon") for (const polygon of geometry.coordinates) yield polygon[0];
  else if (geometry.type === "Point") yield [geometry.coordinates];
}

function extent(collection) {
  let width = 1;
  let height = 1;
  for (const feature of collection?.features ?? []) {
    for (const ring of rings(feature.geometry)) {
      for (const [x, y] of ring) {
        width = Math.max(width, x);
        height = Math.max(height, y);
      }
    }
  }
  return { width, height };
}

// The detections scaled from level-0 pixels to the canvas: outlines, or dots where cells are tiny.
function cellsLayer(collection, scale) {
  const features = (collection.features || []).filter((f) => (f.properties?.objectType ?? "detection") === "detection");
  let sizeSum = 0;
  const boxes = [];
  for (const feature of features) {
    for (const ring of rings(feature.geometry)) {
      let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
      for (const [x, y] of ring) {
        minX = Math.min(minX, x); maxX = Math.max(maxX, x);
        minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      }
      sizeSum += Math.max(maxX - minX, maxY - minY) * scale;
      boxes.push({ ring, cx: (minX + maxX) / 2, cy: (minY + maxY) / 2 });
    }
  }
  const outlines = boxes.length > 0 && sizeSum / boxes.length >= MIN_OUTLINE_PX;
  const path = new Path2D();
  for (const { ring, cx, cy } of boxes) {
    if (outlines && ring.length > 2) {
      path.moveTo(ring[0][0] * scale, ring[0][1] * scale);
      for (let i = 1; i < ring.length; i++) path.lineTo(ring[i][0] * scale, ring[i][1] * scale);
      path.closePath();
    } else {
      path.moveTo(cx * scale + 1.5, cy * scale);
      path.arc(cx * scale, cy * scale, 1.5, 0, 2 * Math.PI);
    }
  }
  return { path, outlines, count: features.length };
}

// ---------------------------------------------------------------------------------- routing

function route() {
  const noUser = !session.user;
  $("#no-user").hidden = !noUser;
  const match = location.hash.match(/^#\/workflows\/([^/]+)$/);
  $("#home-view").hidden = noUser || Boolean(match);
  $("#workflow-view").hidden = noUser || !match;
  home.hide();
  view.hide();
  if (noUser) {
    userInput.focus();
    return;
  }
  if (match) {
    view.show(decodeURIComponent(match[1]));
  } else {
    document.title = "wfsched";
    submitError.hidden = true;
    home.show();
  }
}

window.addEventListener("hashchange", route);
imageInput.value = localStorage.getItem(IMAGE_KEY) || "";
const stored = localStorage.getItem(USER_KEY) || "";
if (USER_PATTERN.test(stored)) setUser(stored);
else route();
