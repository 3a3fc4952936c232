/**
 * One writer per folder. A harvest or a training run started again on a folder another
 * process is still writing would interleave their shards or checkpoints and leave neither
 * run's result; so each claims its folders first, with a `.saekit-lock` file holding its pid.
 * A claim left by a process that no longer runs (a killed run, before its --resume) is
 * taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { processRuns } from "../core/atomic.js";

export const LOCK_FILE = ".saekit-lock";

/** The lock files this process holds now. */
const mine = new Set<string>();

/**
 * Claims every folder in `dirs` (creating them) for this process, for `what` ("training",
 * "harvesting"); throws, naming the process, where another live one holds one. Returns the
 * release, which the caller runs when done (also on failure).
 */
export function claimFolders(dirs: readonly string[], what: string): () => void {
  const held: string[] = [];
  const release = () => {
    for (const path of held.splice(0)) {
      mine.delete(path);
      try {
        if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
      } catch {
        // Gone already.
      }
    }
  };
  try {
    for (const dir of dirs) {
      mkdirSync(dir, { recursive: true });
      held.push(claim(join(resolve(dir), LOCK_FILE), dir, what));
    }
  } catch (err) {
    release();
    throw err;
  }
  return release;
}

function claim(path: string, dir: string, what: string): string {
  if (mine.has(path)) throw new Error(`${dir} is being written already, by this process; ${what} there twice at once would interleave the two`);
  // Twice at most: a stale claim is removed before the second try.
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      mine.add(path);
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(path, "utf8").trim());
    } catch {
      // Released meanwhile: claim it on the next try.
    }
    // Our own pid here is an earlier run's, reused (common in containers): that run is gone.
    const live = Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processRuns(pid);
    if (live || attempt > 0) {
      throw new Error(`${dir} is being written by process ${Number.isSafeInteger(pid) ? pid : "(unknown)"}; wait for it to finish (or stop it) ` +
        `before ${what} there again (if no such process is writing, delete ${path})`);
    }
    try { unlinkSync(path); } catch { /* released meanwhile */ }
  }
}
