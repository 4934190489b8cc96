// Submitting a workflow: the form (a tissue mask and a cell segmentation of one slide) or the
// request body as JSON; the service's refusal is shown with its problems listed per job.

import { api, ApiError } from "./api.js";
import { $, el } from "./dom.js";
import { workflowList } from "./list.js";

// The last slide path submitted, offered again next time.
const IMAGE_KEY = "wfsched.imagePath";

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
    workflowList.reload();
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

imageInput.value = localStorage.getItem(IMAGE_KEY) || "";

export function hideSubmitError() {
  submitError.hidden = true;
}
