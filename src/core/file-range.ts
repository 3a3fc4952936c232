/**
 * Reading byte ranges of files too large to load whole (model checkpoints), through a file
 * descriptor. The caller's `fail` turns each problem into its own error type, naming the
 * file.
 */
import { openSync, readSync } from "node:fs";

export type Fail = (problem: string) => never;

export function openForReading(path: string, fail: Fail): number {
  try {
    return openSync(path, "r");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return fail(e.code === "ENOENT" ? "no such file" : `cannot open (${e.message})`);
  }
}

/** Exactly `length` bytes from `position`, or a failure saying where the file ended. */
export function readRange(fd: number, position: number, length: number, fail: Fail): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, out, done, length - done, position + done);
    if (got === 0) fail(`file ended while reading bytes ${position}..${position + length}`);
    done += got;
  }
  return out;
}
