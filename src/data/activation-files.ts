/**
 * Activation matrices [N, d] from files: .safetensors (a float tensor), NumPy .npy
 * (little-endian f4/f2/f8, C order) or raw little-endian float32 with a given shape. Every
 * malformed or mismatched file is refused with an error naming the file and the problem,
 * and non-finite values are refused before they can poison a training run.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { parseNpy } from "../core/npy.js";
import { decodeFloats } from "../core/dtype.js";
import { SafetensorsFile } from "../core/safetensors.js";
import { checkFinite } from "./source.js";

export interface ActivationMatrix {
  data: Float32Array;
  rows: number;
  d: number;
}

export interface LoadActivationOptions {
  /** safetensors: which tensor (default: the only 2-D float tensor). */
  tensor?: string;
  /** raw float32 files: [rows, d]. */
  shape?: [number, number];
}

export function loadActivations(path: string, opts: LoadActivationOptions = {}): ActivationMatrix {
  let m: ActivationMatrix;
  if (path.endsWith(".safetensors")) m = loadSafetensors(path, opts.tensor);
  else if (path.endsWith(".npy")) m = loadNpy(path);
  else if (opts.shape) m = loadRaw(path, opts.shape);
  else throw new Error(`${path}: unknown activation file type; use .safetensors, .npy, or raw float32 with a shape (e.g. --shape 10000,512)`);
  checkFinite(m.data, path);
  return m;
}

function loadSafetensors(path: string, name?: string): ActivationMatrix {
  const file = SafetensorsFile.open(path);
  const floats = [...file.tensors.values()].filter((t) => ["F32", "F16", "BF16", "F64"].includes(t.dtype));
  let pick = name ? file.info(name) : undefined;
  if (!pick) {
    const matrices = floats.filter((t) => t.shape.length === 2);
    if (matrices.length !== 1) {
      throw new Error(`${path}: expected exactly one 2-D float tensor, found ${matrices.length} (${matrices.map((t) => t.name).join(", ") || "none"}); choose one with --tensor`);
    }
    pick = matrices[0]!;
  }
  if (pick.shape.length !== 2) throw new Error(`${path}: tensor "${pick.name}" has shape [${pick.shape.join(", ")}], expected [rows, d]`);
  const t = file.read(pick.name);
  return { data: t.data, rows: t.shape[0]!, d: t.shape[1]! };
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

/** A 2-D float array in NumPy's format (core/npy.ts). */
function loadNpy(path: string): ActivationMatrix {
  const buf = readAll(path);
  const { shape, data } = parseNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), path);
  if (shape.length !== 2) throw new Error(`${path}: not a usable .npy file: shape (${shape.join(", ")}) is not [rows, d]`);
  return { data, rows: shape[0]!, d: shape[1]! };
}

function loadRaw(path: string, [rows, d]: [number, number]): ActivationMatrix {
  const buf = readAll(path);
  if (buf.length !== rows * d * 4) {
    throw new Error(`${path}: ${buf.length} bytes, but --shape ${rows},${d} of float32 needs ${rows * d * 4}`);
  }
  return { data: decodeFloats(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), "F32", rows * d), rows, d };
}
