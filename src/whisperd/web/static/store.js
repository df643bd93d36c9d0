// What the page keeps in this browser so that closing the tab loses no work: the jobs it
// submitted (localStorage) and their audio, for the player (IndexedDB, where Blobs fit).

const JOBS = "whisperd.jobs";
const DB = "whisperd";
const MEDIA = "media";

/** The jobs this browser submitted: [{id, name, type, options, created}], oldest first. */
export function savedJobs() {
  try {
    const jobs = JSON.parse(localStorage.getItem(JOBS) || "[]");
    return Array.isArray(jobs) ? jobs.filter((job) => job && typeof job.id === "string") : [];
  } catch {
    return [];
  }
}

function writeJobs(jobs) {
  try {
    localStorage.setItem(JOBS, JSON.stringify(jobs));
  } catch {
    // No storage (private mode, full): the jobs still run on the server.
  }
}

export function rememberJob(record) {
  writeJobs([...savedJobs().filter((job) => job.id !== record.id), record]);
}

export function forgetJob(id) {
  writeJobs(savedJobs().filter((job) => job.id !== id));
  withStore("readwrite", (store) => store.delete(id)).catch(() => {});
}

function openDb() {
  return new Promise((resolve, reject) => {
    if (!("indexedDB" in window)) {
      reject(new Error("no IndexedDB"));
      return;
    }
    const opening = indexedDB.open(DB, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(MEDIA);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

async function withStore(mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const request = action(db.transaction(MEDIA, mode).objectStore(MEDIA));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/** Keep `blob` as job `id`'s audio; a browser without room keeps none (no error). */
export function keepMedia(id, blob) {
  return withStore("readwrite", (store) => store.put(blob, id)).catch(() => undefined);
}

/** Job `id`'s audio, or null. */
export function mediaOf(id) {
  return withStore("readonly", (store) => store.get(id)).then((blob) => blob || null, () => null);
}
