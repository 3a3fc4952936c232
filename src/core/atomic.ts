/**
 * Crash-safe file writes: data goes to a temporary file in the same folder, is fsynced, and
 * is renamed over the target, so a reader (or a resumed run) sees either the old file or
 * the complete new one, never a torn write. A failed write (a full disk, say) removes its
 * temporary file, leaves any previous file untouched, and says which file it was; a writer
 * killed mid-write leaves its temporary behind, and the next write of that file removes it.
 */
import {
  closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

let counter = 0;
/** The temporaries this process is writing now. */
const writing = new Set<string>();

type Chunk = Uint8Array | string;

/**
 * Writes `chunks` (in order; an array or any iterable, such as a generator producing a big
 * file piece by piece) to `path` atomically; creates the folder if needed.
 */
export function writeFileAtomic(path: string, chunks: Chunk | Iterable<Chunk>): void {
  const parts: Iterable<Chunk> = typeof chunks === "string" || chunks instanceof Uint8Array ? [chunks] : chunks;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  removeOrphanedTemporaries(dir, basename(path));
  const tmp = join(dir, `${temporaryPrefix(basename(path))}${process.pid}-${Date.now()}-${counter++}`);
  let fd = -1;
  writing.add(tmp);
  try {
    fd = openSync(tmp, "wx", 0o644);
    for (const part of parts) {
      const bytes = typeof part === "string" ? Buffer.from(part, "utf8") : part;
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (err) {
    if (fd >= 0) {
      try { closeSync(fd); } catch { /* already failing */ }
    }
    try { unlinkSync(tmp); } catch { /* may not exist */ }
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOSPC" ? "the disk is full" : e.message;
    throw new Error(`could not write ${path}: ${why} (any previous version of the file is intact)`, { cause: err });
  } finally {
    writing.delete(tmp);
  }
  syncDir(dir);
}

function temporaryPrefix(name: string): string {
  return `.${name}.tmp-`;
}

/**
 * Removes the temporaries of `name` in `dir` that a process no longer running left there
 * (a harvest or a training run killed while writing a shard or a checkpoint would otherwise
 * leave one that size behind on every kill). A live writer's temporary is left alone.
 */
function removeOrphanedTemporaries(dir: string, name: string): void {
  const prefix = temporaryPrefix(name);
  for (const file of readdirSync(dir)) {
    if (!file.startsWith(prefix)) continue;
    const pid = Number(file.slice(prefix.length).split("-")[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || writing.has(join(dir, file))) continue;
    // Our own pid on an earlier run's file is pid reuse (common in containers): orphaned.
    if (pid !== process.pid && processRuns(pid)) continue;
    try { unlinkSync(join(dir, file)); } catch { /* gone already, or not ours to remove */ }
  }
}

/** Whether a process with this pid runs now (as this user or another). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // it runs, as another user
  }
}

/** fsync a folder so a rename in it survives a power cut (best effort where unsupported). */
export function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** JSON.stringify + writeFileAtomic. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}
