// The page: asks the server what it offers, then wires the key, the files, the viewer and the
// live microphone together.

import { probe, request, saveKey, savedKey } from "./api.js";
import { FileTask } from "./files.js";
import { FORMATS } from "./formats.js";
import { LiveSession } from "./live.js";
import { readOptions, subtitleStyle, wireOptions } from "./options.js";
import { mediaOf, savedJobs } from "./store.js";
import { copyToClipboard, saveFile } from "./takeaway.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

const page = {
  jobs: false,
  shown: null, // the FileTask in the viewer
  live: null,
  viewer: null,
};

function languageName(code) {
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

/** Fill the model and language lists from /v1/models. */
function offerModels(models) {
  const select = $("model");
  const chosen = select.value;
  select.replaceChildren();
  const fallback = new Option("Server default", "");
  select.append(fallback);
  const defaults = models.filter((model) => model.default);
  const serving = defaults.find((model) => model.loaded) || defaults[0];
  for (const model of models) {
    if (model === serving) {
      fallback.textContent = `Server default (${shortName(model.id)})`;
      fallback.dataset.languages = JSON.stringify(model.capabilities?.languages || []);
      fallback.dataset.translation = String(Boolean(model.capabilities?.translation));
      continue;
    }
    if (model.default || (!model.downloaded && !model.loaded)) continue;
    const option = new Option(shortName(model.id), model.id);
    option.dataset.languages = JSON.stringify(model.capabilities?.languages || []);
    option.dataset.translation = String(Boolean(model.capabilities?.translation));
    select.append(option);
  }
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
  offerLanguages();
}

function shortName(id) {
  const parts = id.split("/").filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join("/")}` : id;
}

function offerLanguages() {
  const option = $("model").selectedOptions[0];
  let codes = [];
  try {
    codes = JSON.parse(option?.dataset.languages || "[]");
  } catch {
    codes = [];
  }
  const select = $("language");
  const chosen = select.value;
  select.replaceChildren(new Option(codes.length === 1 ? `${languageName(codes[0])} (the only one)` : "Detect", ""));
  const named = codes.length > 1 ? codes.map((code) => [languageName(code), code]) : [];
  named.sort((a, b) => a[0].localeCompare(b[0]));
  for (const [name, code] of named) select.append(new Option(name, code));
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
  const translate = $("task").querySelector('option[value="translate"]');
  translate.disabled = option?.dataset.translation === "false";
  if (translate.disabled && $("task").value === "translate") $("task").value = "transcribe";
}

// -- the server and its key ------------------------------------------------------------------

async function connect() {
  const found = await probe();
  const status = $("server-status");
  $("key-panel").hidden = !found.keyRequired;
  $("api-key").value = savedKey();
  if (found.keyRefused) {
    $("key-message").textContent = "The saved API key was refused: check it and save it again.";
  } else if (found.keyRequired && !savedKey()) {
    $("key-message").textContent = "Enter the API key to use this server.";
  } else {
    $("key-message").textContent = "";
  }
  if (found.error) {
    status.textContent = found.error;
    return found;
  }
  if (found.keyRequired && (found.keyRefused || !savedKey())) {
    status.textContent = "Waiting for an API key.";
    return found;
  }
  page.jobs = found.jobs;
  offerModels(found.models);
  status.textContent = found.jobs
    ? "Ready. Files run as jobs: you may close this page and come back."
    : "Ready. Keep this page open while files are transcribed (the server has no jobs API).";
  return found;
}

function wireKey() {
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    saveKey($("api-key").value.trim());
    const found = await connect();
    if (!found.keyRefused && !found.error && savedKey()) {
      $("key-message").textContent = "";
      $("server-status").textContent += " The key is saved in this browser.";
      resumeJobs();
    }
  });
  $("key-forget").addEventListener("click", () => {
    saveKey("");
    $("api-key").value = "";
    connect();
  });
}

// -- files -----------------------------------------------------------------------------------

function hooks() {
  return {
    onDone: (task) => {
      if (!page.shown) show(task);
    },
    onShow: (task) => show(task),
    onRemove: (task) => {
      if (page.shown === task) {
        page.viewer.stop();
        page.shown = null;
        $("viewer").hidden = true;
      }
    },
  };
}

function addFiles(files) {
  $("files-message").textContent = "";
  let chosen;
  try {
    chosen = readOptions();
  } catch (error) {
    $("files-message").textContent = `${error.message} Nothing was sent.`;
    return;
  }
  for (const file of files) {
    const task = new FileTask({ name: file.name, type: file.type, size: file.size, options: chosen }, hooks());
    $("file-list").append(task.item);
    task.start(file, { jobs: page.jobs });
  }
}

const resumed = new Set();

/** Find again the jobs this browser submitted before (the page was closed or reloaded). */
async function resumeJobs() {
  for (const record of savedJobs()) {
    if (resumed.has(record.id)) continue;
    resumed.add(record.id);
    const task = new FileTask(record, hooks());
    task.jobId = record.id;
    $("file-list").append(task.item);
    task.say("Checking the job on the server…");
    task.media = await mediaOf(record.id);
    task.follow().catch((error) => task.fail(error));
  }
}

function wireFiles() {
  const input = $("file-input");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) addFiles(files);
    else $("files-message").textContent = "Nothing to transcribe was dropped: drop audio or video files.";
  });
  // A file dropped beside the zone would make the browser leave the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("model").addEventListener("change", offerLanguages);
}

// -- the viewer ------------------------------------------------------------------------------

function show(task) {
  page.shown = task;
  $("viewer").hidden = false;
  $("viewer-name").textContent = task.about.name;
  $("diarized-download").hidden = !(task.transcript.segments || []).some((s) => s.speaker);
  page.viewer.show(task.transcript, task.media);
  const query = $("search").value;
  $("search-count").textContent = query ? matchesText(page.viewer.search(query)) : "";
}

function matchesText(count) {
  return count === 1 ? "1 match (Enter: next)" : `${count} matches${count ? " (Enter: next)" : ""}`;
}

/** Download the shown transcript as `format` (srt and vtt shaped by the subtitle options). */
function download(format) {
  const task = page.shown;
  if (!task) return;
  let style = null;
  $("subtitle-message").textContent = "";
  if (format === "srt" || format === "vtt") {
    try {
      style = subtitleStyle();
    } catch (error) {
      $("subtitle-options").open = true;
      $("subtitle-message").textContent = `${error.message} Nothing was saved.`;
      return;
    }
  }
  const [suffix, type, render] = FORMATS[format];
  const name = `${task.about.name.replace(/\.[^.]+$/, "") || "transcript"}.${suffix}`;
  saveFile(name, render(task.transcript, style), type);
}

function copyText() {
  if (page.shown) copyToClipboard(FORMATS.txt[2](page.shown.transcript), $("copy-status"));
}

function wireViewer() {
  page.viewer = new Viewer($("player-box"), $("transcript"));
  document.querySelector("#viewer .downloads").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-format]");
    if (button) download(button.dataset.format);
  });
  $("copy").addEventListener("click", copyText);
  $("search").addEventListener("input", () => {
    const query = $("search").value;
    $("search-count").textContent = query ? matchesText(page.viewer.search(query)) : "";
  });
  $("search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      page.viewer.nextMatch();
    }
  });
}

// -- live microphone -------------------------------------------------------------------------

/** The live transcript so far: one line per finished turn, of every session. */
function liveText() {
  const turns = [...$("live-text").querySelectorAll("p.final")].map((node) => node.textContent.trim());
  return turns.filter(Boolean).map((turn) => `${turn}\n`).join("");
}

function wireLiveTakeaway() {
  const buttons = [$("live-download"), $("live-copy")];
  const update = () => {
    const empty = !liveText();
    for (const button of buttons) button.disabled = empty;
  };
  new MutationObserver(update).observe($("live-text"), { childList: true, subtree: true, characterData: true });
  update();
  $("live-download").addEventListener("click", () => {
    const stamp = new Date().toISOString().slice(0, 16).replace("T", "-").replace(":", "");
    saveFile(`live-${stamp}.txt`, liveText(), "text/plain");
  });
  $("live-copy").addEventListener("click", () => copyToClipboard(liveText(), $("live-copy-status")));
}

function wireLive() {
  wireLiveTakeaway();
  const toggle = $("live-toggle");
  const ended = () => {
    toggle.textContent = "Start listening";
    toggle.setAttribute("aria-pressed", "false");
    toggle.disabled = false;
    page.live = null;
  };
  toggle.addEventListener("click", async () => {
    if (page.live) {
      toggle.disabled = true;
      page.live.stop();
      return;
    }
    $("live-message").textContent = "";
    const session = new LiveSession({
      text: $("live-text"),
      status: (text) => { $("live-status").textContent = text; },
      error: (text) => { $("live-message").textContent = text; },
      ended,
    });
    page.live = session;
    toggle.textContent = "Stop listening";
    toggle.setAttribute("aria-pressed", "true");
    try {
      await session.start({ language: $("language").value, key: savedKey() });
    } catch (error) {
      $("live-message").textContent = error.message;
      session.release();
      ended();
    }
  });
}

async function main() {
  wireKey();
  wireOptions();
  wireFiles();
  wireViewer();
  wireLive();
  const found = await connect();
  if (!found.error && !(found.keyRequired && (found.keyRefused || !savedKey()))) resumeJobs();
  // Keep the status line true while the page stays open.
  let unhealthy = false;
  setInterval(async () => {
    try {
      await request("/health");
      if (unhealthy) await connect();
      unhealthy = false;
    } catch (error) {
      unhealthy = true;
      $("server-status").textContent = error.status === 503
        ? "The server is loading its model or shutting down: wait a moment."
        : error.message;
    }
  }, 15000);
}

main();
