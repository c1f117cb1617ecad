// The server's API: JSON over HTTP, the access cookie sent by the browser; every
// request that changes something carries the X-Clan-Ui header the server asks for.

export class ApiError extends Error {
  constructor(message, issues = [], status = 0) {
    super(message);
    this.issues = issues;
    this.status = status;
  }
}

async function call(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") options.headers["X-Clan-Ui"] = "1";
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api${path}`, options);
  } catch (e) {
    throw new ApiError(`clan ui does not answer (${e.message}): is it still running?`);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(data.error ?? `${response.status} ${response.statusText}`, data.issues ?? [], response.status);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path, body) => call("DELETE", path, body);

/// Follows a job's events (server-sent events) until it ends.
export function followJob(id, onEvent, onEnd) {
  const source = new EventSource(`/api/jobs/${id}/events`);
  source.addEventListener("event", (e) => onEvent(JSON.parse(e.data)));
  source.addEventListener("end", (e) => {
    source.close();
    onEnd(JSON.parse(e.data));
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) onEnd({ status: "failed", error: "the connection to clan ui was lost" });
  };
  return () => source.close();
}

export const enc = encodeURIComponent;
