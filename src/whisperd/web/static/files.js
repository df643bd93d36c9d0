// One file's way through the server, shown as an item of the file list with a progress bar.
// With the jobs API on, a file becomes a job: it survives a closed tab, and the page finds it
// again when reopened. Otherwise (or when the server's jobs cannot label speakers) it is one
// request to /v1/audio/transcriptions (or /translations).

import { ApiError, request, upload } from "./api.js";
import { forgetJob, keepMedia, rememberJob } from "./store.js";

const POLL_MS = 300; // the first look at a job; then 1.5 times longer each time, up to
const POLL_MAX_MS = 2000;
const RETRY_MAX_MS = 10000; // between tries while the server cannot be reached

function sizeText(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Whether the file's transcript needs word timings: shown, or labelled by speaker. */
function needsWords(options) {
  return Boolean(options.words || options.diarize);
}

/** The form fields of `options` ({model, language, task, words, diarize, prompt, speakers}). */
export function formFields(options, { job }) {
  const fields = [["response_format", "verbose_json"], ["timestamp_granularities[]", "segment"]];
  if (needsWords(options)) fields.push(["timestamp_granularities[]", "word"]);
  if (options.model) fields.push(["model", options.model]);
  if (options.language) fields.push(["language", options.language]);
  if (options.prompt) fields.push(["prompt", options.prompt]);
  if (options.diarize) {
    fields.push(["diarize", "true"]);
    for (const [name, value] of Object.entries(options.speakers || {})) {
      if (value !== null && value !== undefined) fields.push([name, String(value)]);
    }
  }
  if (job && options.task === "translate") fields.push(["task", "translate"]);
  return fields;
}

/** A file of the list: its item, its progress and, once done, its transcript. */
export class FileTask {
  /**
   * @param {{name: string, type: string, size: number, options: object}} about
   * @param {{onDone: (task) => void, onShow: (task) => void}} hooks
   */
  constructor(about, hooks) {
    this.about = about;
    this.hooks = hooks;
    this.media = null; // the File or Blob, for the player
    this.jobId = null;
    this.transcript = null;
    this.controller = new AbortController();
    this.finished = false;
    this.item = this.build();
  }

  build() {
    const item = document.createElement("li");
    item.className = "file";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = this.about.name;
    const size = document.createElement("span");
    size.className = "hint";
    size.textContent = ` ${sizeText(this.about.size)}`;
    name.append(size);
    const actions = document.createElement("span");
    actions.className = "actions";
    this.showButton = document.createElement("button");
    this.showButton.type = "button";
    this.showButton.textContent = "Show";
    this.showButton.hidden = true;
    this.showButton.setAttribute("aria-label", `Show the transcript of ${this.about.name}`);
    this.showButton.addEventListener("click", () => this.hooks.onShow(this));
    this.removeButton = document.createElement("button");
    this.removeButton.type = "button";
    this.removeButton.className = "secondary";
    this.removeButton.textContent = "Cancel";
    this.removeButton.setAttribute("aria-label", `Cancel ${this.about.name}`);
    this.removeButton.addEventListener("click", () => this.remove());
    actions.append(this.showButton, this.removeButton);
    this.bar = document.createElement("progress");
    this.bar.max = 1;
    this.bar.setAttribute("aria-label", `Progress of ${this.about.name}`);
    this.state = document.createElement("span");
    this.state.className = "state";
    this.state.setAttribute("role", "status");
    item.append(name, actions, this.bar, this.state);
    return item;
  }

  say(text, { fraction = null, error = false } = {}) {
    this.state.textContent = text;
    this.state.classList.toggle("error", error);
    if (fraction === null) this.bar.removeAttribute("value");
    else this.bar.value = fraction;
  }

  /** Send `file` with the task's options: as a job when `jobs` is on, else one request. */
  async start(file, { jobs }) {
    this.media = file;
    try {
      this.say("Uploading…", { fraction: 0 });
      if (jobs && !(await this.asJob(file))) await this.once(file);
    } catch (error) {
      this.fail(error);
    }
  }

  form(file, { job }) {
    const form = new FormData();
    for (const [name, value] of formFields(this.about.options, { job })) form.append(name, value);
    form.append("file", file, file.name);
    return form;
  }

  progress() {
    return (fraction) => this.say(`Uploading… ${Math.round(fraction * 100)}%`, { fraction });
  }

  /**
   * Run `file` as a job and follow it; false (nothing kept) when the server's jobs refuse
   * speaker labels (before jobs could label speakers), so that it runs as one request.
   */
  async asJob(file) {
    let job;
    try {
      const form = this.form(file, { job: true });
      job = await upload("/v1/jobs", form, { onProgress: this.progress(), signal: this.controller.signal });
    } catch (error) {
      if (this.about.options.diarize && error.status === 400 && error.param === "diarize") return false;
      throw error;
    }
    this.jobId = job.id;
    rememberJob({ id: job.id, ...this.about, created: Date.now() });
    await keepMedia(job.id, file);
    await this.follow();
    return true;
  }

  /** Transcribe `file` in one request (the page must stay open until it answers). */
  async once(file) {
    const path = this.about.options.task === "translate" ? "/v1/audio/translations" : "/v1/audio/transcriptions";
    const form = this.form(file, { job: false });
    const sent = upload(path, form, { onProgress: this.progress(), signal: this.controller.signal });
    // Once the body is sent, the answer comes when the whole file is transcribed.
    const timer = setInterval(() => {
      if (this.bar.value >= 1) this.say("Transcribing… (keep this page open)");
    }, 250);
    try {
      this.done(await sent);
    } finally {
      clearInterval(timer);
    }
  }

  /** Follow job `jobId` to its end (also a job found again after the page was reopened). */
  async follow() {
    let wait = POLL_MS;
    while (!this.controller.signal.aborted) {
      let job;
      try {
        job = await request(`/v1/jobs/${encodeURIComponent(this.jobId)}`, { signal: this.controller.signal });
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.status === 404) {
          forgetJob(this.jobId);
          throw new ApiError(404, "The server no longer has this job (it was deleted or expired).");
        }
        if (error.status === 401) throw error;
        this.say(`${error.message} Trying again…`, { error: true });
        wait = Math.min(wait * 2, RETRY_MAX_MS);
        await sleep(wait);
        continue;
      }
      if (job.status === "succeeded") {
        this.say("Fetching the transcript…", { fraction: 1 });
        const words = needsWords(this.about.options) ? "&timestamp_granularities[]=word" : "";
        const path = `/v1/jobs/${encodeURIComponent(this.jobId)}/result?response_format=verbose_json`
          + `&timestamp_granularities[]=segment${words}`;
        this.done(await request(path, { signal: this.controller.signal }));
        return;
      }
      if (job.status === "failed") throw new ApiError(400, job.error?.message || "The job failed.");
      if (job.status === "cancelled") throw new ApiError(0, "The job was cancelled.");
      const fraction = job.progress?.fraction;
      if (job.status === "queued") this.say("Waiting in the server's queue (you may close this page)…", { fraction: 0 });
      else this.say(`Transcribing… ${Math.round((fraction || 0) * 100)}% (you may close this page)`, { fraction: fraction ?? null });
      await sleep(wait);
      wait = Math.min(wait * 1.5, POLL_MAX_MS);
    }
  }

  done(transcript) {
    this.transcript = transcript;
    this.finished = true;
    const seconds = transcript.duration ? `, ${Math.round(transcript.duration)} s of audio` : "";
    this.say(`Done${seconds}.`, { fraction: 1 });
    this.showButton.hidden = false;
    this.removeButton.textContent = "Remove";
    this.removeButton.setAttribute("aria-label", `Remove ${this.about.name}`);
    this.hooks.onDone(this);
  }

  fail(error) {
    if (error.name === "AbortError") return;
    this.finished = true;
    this.say(error.message || String(error), { fraction: 0, error: true });
    this.bar.hidden = true;
    this.removeButton.textContent = "Remove";
    this.removeButton.setAttribute("aria-label", `Remove ${this.about.name}`);
    if (this.jobId) forgetJob(this.jobId);
  }

  /** Stop the file's work (a job is cancelled on the server) and take it off the list. */
  async remove() {
    const running = !this.finished;
    this.controller.abort();
    if (this.jobId) {
      if (running) await request(`/v1/jobs/${encodeURIComponent(this.jobId)}`, { method: "DELETE" }).catch(() => {});
      forgetJob(this.jobId);
    }
    this.item.remove();
    this.hooks.onRemove?.(this);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
