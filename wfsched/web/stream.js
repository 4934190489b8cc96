// The live event streams: Server-Sent Events read with fetch, so that they carry X-User-ID (an
// EventSource cannot). A dropped stream reconnects and resumes after the last event it had
// (Last-Event-ID); while it is down the page polls the snapshot endpoints instead.

import { headers } from "./api.js";

// Polling is the fallback only; once a second keeps bars moving without loading the service.
const POLL_MS = 1000;
// Reconnect delays of a dropped stream: quick at first, then every 10 s at most.
const RECONNECT_MS = [250, 1000, 2000, 5000, 10000];

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
export class LiveStream {
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

// The stream indicator next to what it feeds.
export function showMode(node, mode) {
  const labels = {
    connecting: "connecting…",
    live: "live",
    polling: "polling (stream unavailable)",
    closed: "",
  };
  node.dataset.mode = mode;
  node.textContent = labels[mode] ?? "";
}
