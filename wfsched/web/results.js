// The results of a workflow: a picture per slide (picture.js) and a download link for every
// artifact of every job.

import { api, artifactPath } from "./api.js";
import { $, el } from "./dom.js";
import { Picture } from "./picture.js";

export const results = {
  // Pictures drawn, by slide and the jobs drawn on it: a refresh redraws only what changed.
  pictures: new Map(),

  section: $("[data-testid=results]"),
  picturesNode: $("[data-testid=pictures]"),
  artifacts: $("[data-testid=artifacts]"),

  // Nothing of the last workflow stays in the page (another user may be next).
  clear() {
    this.pictures.clear();
    this.picturesNode.replaceChildren();
    this.artifacts.replaceChildren();
    this.section.hidden = true;
  },

  render(workflow) {
    const withArtifacts = workflow.jobs.filter((job) => job.result && Array.isArray(job.result.artifacts));
    this.section.hidden = withArtifacts.length === 0;
    this.renderDownloads(workflow.workflow_id, withArtifacts);
    for (const [image, group] of pictureGroups(withArtifacts)) {
      const key = `${image}|${group.map((job) => job.job_id).join(",")}`;
      if (this.pictures.has(key)) continue;
      const previous = this.picturesNode.querySelector(`[data-image="${CSS.escape(image)}"]`);
      const picture = new Picture(workflow.workflow_id, image, group);
      this.pictures.set(key, picture);
      if (previous) previous.replaceWith(picture.node);
      else this.picturesNode.append(picture.node);
      picture.draw();
    }
  },

  renderDownloads(workflowId, jobs) {
    this.artifacts.replaceChildren(...jobs.map((job) =>
      el("li", {},
        el("span", { class: "dl-job" }, job.job_id, " ", el("code", {}, job.job_type)),
        el("span", { class: "dl-files" }, ...job.result.artifacts.map((name) =>
          el("a", { href: artifactPath(workflowId, job.job_id, name), class: "dl",
            "data-testid": "artifact-link", dataset: { jobId: job.job_id, name },
            download: name.endsWith(".zarr") ? `${name}.zip` : name,
            onclick: (event) => { event.preventDefault(); download(event.currentTarget); } }, name))))));
  },
};

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

