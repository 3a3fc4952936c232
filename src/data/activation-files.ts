/**
 * Activation matrices [N, d] from files: .safetensors (a float tensor), NumPy .npy
 * (little-endian f4/f2/f8, C order) or raw little-endian float32 with a given shape (the
 * first two read as activation-matrix.ts reads them from bytes). Every
 * malformed or mismatched file is refused with an error naming the file and the problem,
 * and non-finite values are refused before they can poison a training run.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { decodeFloats } from "../core/dtype.js";
import { SafetensorsFile } from "../core/safetensors.js";
import { type ActivationMatrix, matrixOfNpy, matrixOfSafetensors } from "./activation-matrix.js";
import { checkFinite } from "./source.js";

export type { ActivationMatrix } from "./activation-matrix.js";

export interface LoadActivationOptions {
  /** safetensors: which tensor (default: the only 2-D float tensor). */
  tensor?: string;
  /** raw float32 files: [rows, d]. */
  shape?: [number, number];
}

export function loadActivations(path: string, opts: LoadActivationOptions = {}): ActivationMatrix {
  let m: ActivationMatrix;
  if (path.endsWith(".safetensors")) m = matrixOfSafetensors(SafetensorsFile.open(path), opts.tensor);
  else if (path.endsWith(".npy")) m = loadNpy(path);
  else if (opts.shape) m = loadRaw(path, opts.shape);
  else throw new Error(`${path}: unknown activation file type; use .safetensors, .npy, or raw float32 with a shape (e.g. --shape 10000,512)`);
  checkFinite(m.data, path);
  return m;
}

function readAll(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new Error(`${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, done);
      if (n === 0) throw new Error(`${path}: file ended early`);
      done += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

function loadNpy(path: string): ActivationMatrix {
  const buf = readAll(path);
  return matrixOfNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), path);
}

function loadRaw(path: string, [rows, d]: [number, number]): ActivationMatrix {
  const buf = readAll(path);
  if (buf.length !== rows * d * 4) {
    throw new Error(`${path}: ${buf.length} bytes, but --shape ${rows},${d} of float32 needs ${rows * d * 4}`);
  }
  return { data: decodeFloats(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), "F32", rows * d), rows, d };
}
