// Calls to the service's /api, same origin. Every call carries the user's X-User-ID; the page
// reads its streams with fetch too (an EventSource cannot send that header), so it needs no
// stream tokens.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// Who the page speaks for; app.js sets it when the user is chosen.
export const session = { user: "" };

export function headers(extra = {}) {
  return { "X-User-ID": session.user, ...extra };
}

// The response of a call that succeeded; an ApiError with the service's error body otherwise.
export async function request(path, { method = "GET", body, signal } = {}) {
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

export const api = {
  json: async (path, options) => (await request(path, options)).json(),
  blob: async (path, options) => (await request(path, options)).blob(),
};

export function artifactPath(workflowId, jobId, name) {
  return `/api/workflows/${encodeURIComponent(workflowId)}/jobs/${encodeURIComponent(jobId)}` +
    `/artifacts/${encodeURIComponent(name)}`;
}
