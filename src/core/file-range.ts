/**
 * Reading byte ranges of files too large to load whole (model checkpoints), through a file
 * descriptor. The caller's `fail` turns each problem into its own error type, naming the
 * file.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { ByteSource, Fail } from "./byte-source.js";

export type { Fail } from "./byte-source.js";

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
  readRangeInto(fd, position, out, fail);
  return out;
}

/** Fills `target` with the bytes from `position` on, or fails saying where the file ended. */
export function readRangeInto(fd: number, position: number, target: Uint8Array, fail: Fail): void {
  const length = target.byteLength;
  let done = 0;
  while (done < length) {
    const got = readSync(fd, target, done, length - done, position + done);
    if (got === 0) fail(`file ended while reading bytes ${position}..${position + length}`);
    done += got;
  }
}

/** fileSource(path) whose every failure is an Error that starts with the path. */
export function openFileSource(path: string): ByteSource {
  return fileSource(path, (why) => { throw new Error(`${path}: ${why}`); });
}

/** A file as a ByteSource (its size read now; each read opens the file, so none stays open). */
export function fileSource(path: string, fail: Fail): ByteSource {
  const fd = openForReading(path, fail);
  let size: number;
  try {
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  const readInto = (position: number, target: Uint8Array, failRead: Fail): void => {
    const f = openForReading(path, failRead);
    try {
      readRangeInto(f, position, target, failRead);
    } finally {
      closeSync(f);
    }
  };
  return {
    size,
    read(position, length, failRead) {
      const target = new Uint8Array(length);
      readInto(position, target, failRead);
      return target;
    },
    readInto,
  };
}
