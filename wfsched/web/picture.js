// The results picture of one slide: its thumbnail with the tissue outline (or mask) and the
// detected cells drawn over it on a canvas, each layer with a switch.

import { api, artifactPath } from "./api.js";
import { el } from "./dom.js";
import { resultSummary } from "./format.js";

// Cells smaller than this on the canvas are drawn as dots: an outline would be a smudge.
const MIN_OUTLINE_PX = 3;

export class Picture {
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
