// The home page's list of the user's workflows: status badges and places in line, kept current
// by the user's event stream (/api/events), a page of 50 at a time.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { badge, queueText, when } from "./format.js";
import { LiveStream, showMode } from "./stream.js";

export const workflowList = {
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

workflowList.filter.addEventListener("change", () => workflowList.reload());
workflowList.more.addEventListener("click", () => workflowList.reload(true));
