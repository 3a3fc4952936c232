/**
 * Activation matrices [N, d] from files: .safetensors (a float tensor), NumPy .npy
 * (little-endian f4/f2/f8, C or Fortran order), a PyTorch .pt (torch.save of one tensor or of
 * a dict of them) or raw little-endian float32 with a given shape (the first two read as
 * activation-matrix.ts reads them from bytes). Every
 * malformed or mismatched file is refused with an error naming the file and the problem,
 * and non-finite values are refused before they can poison a training run.
 */
import { type ByteSource, readFloatsInto } from "../core/byte-source.js";
import { openFileSource } from "../core/file-range.js";
import { fortranToC, npyDataStart, parseNpyHeader } from "../core/npy.js";
import { SafetensorsFile } from "../core/safetensors.js";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { type ActivationMatrix, chooseMatrix, matrixOfSafetensors, npyMatrixShape } from "./activation-matrix.js";
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
  else if (path.endsWith(".pt") || path.endsWith(".pth")) m = loadTorch(path, opts.tensor);
  else if (opts.shape) m = loadRaw(path, opts.shape);
  else throw new Error(`${path}: unknown activation file type; use .safetensors, .npy, .pt, or raw float32 with a shape (e.g. --shape 10000,512)`);
  checkFinite(m.data, path);
  return m;
}

/**
 * `count` values of `dtype` at `position` of the file, as float32. Read through a file
 * descriptor into the result, never whole into one buffer first: Node refuses buffers over
 * 4 GiB, and activation matrices get bigger than that.
 */
function readFloats(source: ByteSource, position: number, dtype: "F32" | "F16" | "F64", count: number, path: string): Float32Array {
  const fail = (why: string): never => { throw new Error(`${path}: ${why}`); };
  let out: Float32Array;
  try {
    out = new Float32Array(count);
  } catch (err) {
    return fail(`${count} values do not fit in memory as one float32 array (${(err as Error).message})`);
  }
  return readFloatsInto(source, position, dtype, out, fail);
}

function loadNpy(path: string): ActivationMatrix {
  const source = openFileSource(path);
  const fail = (why: string): never => { throw new Error(`${path}: not a usable .npy file: ${why}`); };
  // The header (a few hundred bytes in practice), whose length the first 12 bytes give.
  const dataStart = npyDataStart(source.read(0, Math.min(source.size, 12), fail));
  const h = parseNpyHeader(source.read(0, Math.min(source.size, dataStart, 1 << 24), fail), source.size, path);
  const { rows, d } = npyMatrixShape(h.shape, path);
  const data = readFloats(source, h.dataStart, h.dtype, h.count, path);
  // A Fortran-ordered matrix is read whole, then transposed into a second array: twice its
  // size in memory while that runs.
  return { data: h.fortranOrder ? fortranToC(data, h.shape) : data, rows, d };
}

/** A torch.save'd tensor [rows, d], or one of a saved dict (chosen as in a safetensors file). */
function loadTorch(path: string, name?: string): ActivationMatrix {
  const file = TorchCheckpoint.open(path);
  const picked = chooseMatrix(file.names().map((n) => ({ name: n, dtype: file.dtype(n), shape: file.shape(n) })), name, path);
  const t = file.read(picked);
  return { data: t.data, rows: t.shape[0]!, d: t.shape[1]! };
}

function loadRaw(path: string, [rows, d]: [number, number]): ActivationMatrix {
  const source = openFileSource(path);
  if (source.size !== rows * d * 4) throw new Error(`${path}: ${source.size} bytes, but --shape ${rows},${d} of float32 needs ${rows * d * 4}`);
  return { data: readFloats(source, 0, "F32", rows * d, path), rows, d };
}
