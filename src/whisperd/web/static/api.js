// Calls to whisperd's HTTP API from the page: the API key, upload progress, errors in words.

const KEY_STORE = "whisperd.apiKey";

/** The API key kept in this browser (localStorage), or "" when there is none. */
export function savedKey() {
  try {
    return localStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

/** Keep `key` in this browser; an empty key forgets it. */
export function saveKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORE, key);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    // Private mode without storage: the key lasts until the page closes.
  }
}

/** An answer of the API that is not a success, with the words to show for it. */
export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

/** Words for an error envelope (`{"error": {...}}` or `{"detail": ...}`) of status `status`. */
export function errorFrom(status, body) {
  let message = "";
  let code = null;
  let param = null;
  if (body && typeof body === "object") {
    const error = body.error || {};
    message = error.message || (typeof body.detail === "string" ? body.detail : "");
    code = error.code || null;
    param = error.param || null;
  } else if (typeof body === "string") {
    message = body.trim().slice(0, 300);
  }
  if (status === 401) {
    message = message === "Incorrect API key provided."
      ? "The API key was refused: check it and save it again."
      : "This server needs an API key: enter it above.";
  }
  if (!message) message = `The server answered ${status} without saying why.`;
  return new ApiError(status, message, code, param);
}

const OFFLINE = "Cannot reach the whisperd server. Is it still running?";

/** The `Authorization` header for `key` (none without a key). */
function authHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function readBody(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return response.text();
}

/** GET or DELETE `path`; resolves to the parsed body, rejects with an ApiError. */
export async function request(path, { method = "GET", key = savedKey(), signal } = {}) {
  let response;
  try {
    response = await fetch(path, { method, headers: authHeaders(key), signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, OFFLINE);
  }
  const body = await readBody(response);
  if (!response.ok) throw errorFrom(response.status, body);
  return body;
}

/**
 * POST `form` (FormData) to `path` with upload progress.
 * `onProgress(fraction)` gets 0..1 while the body is sent; `signal` aborts.
 * Resolves to the parsed body; rejects with an ApiError (or an AbortError).
 */
export function upload(path, form, { key = savedKey(), onProgress = () => {}, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders(key))) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body = xhr.responseText;
      try {
        body = JSON.parse(body);
      } catch {
        // plain text answer
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(errorFrom(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, OFFLINE));
    xhr.onabort = () => reject(new DOMException("The upload was cancelled.", "AbortError"));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}

/**
 * What the server offers, asked without failing: `{keyRequired, keyRefused, models, jobs}`.
 * `models` is /v1/models' list (empty if it could not be read); `jobs` whether /v1/jobs is on.
 */
export async function probe(key = savedKey()) {
  const found = { keyRequired: false, keyRefused: false, models: [], jobs: false, error: null };
  try {
    found.models = (await request("/v1/models", { key })).data || [];
  } catch (error) {
    if (error.status === 401) {
      found.keyRequired = true;
      found.keyRefused = Boolean(key);
      return found;
    }
    found.error = error.message;
    return found;
  }
  found.keyRequired = Boolean(key);
  try {
    await request("/v1/jobs?limit=1", { key });
    found.jobs = true;
  } catch {
    found.jobs = false;
  }
  return found;
}
