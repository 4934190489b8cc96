// One workflow's page: its branches as lanes of jobs with live progress bars, the overall bar,
// cancelling, and its results (results.js). Kept current by the workflow's event stream; a
// workflow already finished is drawn once.

import { api, request, session } from "./api.js";
import { $, el } from "./dom.js";
import { badge, duration, number, percentText, queueText, resultSummary, when } from "./format.js";
import { FINISHED_JOB, FINISHED_WORKFLOW, jobPercent, workflowPercent } from "./progress.js";
import { results } from "./results.js";
import { LiveStream, showMode } from "./stream.js";

export const workflowView = {
  id: null,
  workflow: null,
  jobs: new Map(),
  stream: null,
  refreshTimer: null,

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
    // Nothing of the last workflow stays in the page (another user may be next).
    this.lanes.replaceChildren();
    results.clear();
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
    results.render(this.workflow);
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
    bar.dataset.percent = String(percent);
    bar.setAttribute("aria-valuenow", String(Math.round(percent)));
    if (indeterminate) bar.removeAttribute("aria-valuenow");
    $(".fill", bar).style.width = `${percent}%`;

    const parts = [];
    if (job.progress_total) parts.push(`${number(job.progress_done)} / ${number(job.progress_total)} tiles`);
    // Once finished the percent is 100 whatever the outcome (as the server counts it); the tiles
    // say how far a job that failed or was cancelled got.
    if (job.status === "running") parts.push(percentText(percent));
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
    const percent = workflowPercent(workflow.jobs);
    const bar = $("[data-testid=workflow-progress]");
    bar.dataset.percent = String(percent);
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
        results.render(this.workflow);
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

};

workflowView.cancel.addEventListener("click", () => workflowView.cancelWorkflow());
