// How percentages, durations, times, numbers, statuses and job results read on the page.

import { el } from "./dom.js";

export function percentText(value) {
  return `${Math.round(value)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function when(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function number(value, digits = 0) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function badge(status, testid) {
  return el("span", { class: `badge ${status}`, "data-testid": testid, dataset: { status } }, status);
}

export function queueText(position) {
  return position === null || position === undefined ? "" : `#${position} in line`;
}

// A succeeded job's result in one line (its job card and the picture's caption); "" otherwise.
export function resultSummary(job) {
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
