/**
 * Crash-safe file writes: data goes to a temporary file in the same folder, is fsynced, and
 * is renamed over the target, so a reader (or a resumed run) sees either the old file or
 * the complete new one, never a torn write. A failed write (a full disk, say) removes its
 * temporary file, leaves any previous file untouched, and says which file it was.
 */
import {
  closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

let counter = 0;

type Chunk = Uint8Array | string;

/**
 * Writes `chunks` (in order; an array or any iterable, such as a generator producing a big
 * file piece by piece) to `path` atomically; creates the folder if needed.
 */
export function writeFileAtomic(path: string, chunks: Chunk | Iterable<Chunk>): void {
  const parts: Iterable<Chunk> = typeof chunks === "string" || chunks instanceof Uint8Array ? [chunks] : chunks;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Date.now()}-${counter++}`);
  let fd = -1;
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
  }
  syncDir(dir);
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
