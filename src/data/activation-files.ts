/**
 * Activation matrices [N, d] from files: .safetensors (a float tensor), NumPy .npy
 * (little-endian f4/f2/f8, C order) or raw little-endian float32 with a given shape. Every
 * malformed or mismatched file is refused with an error naming the file and the problem,
 * and non-finite values are refused before they can poison a training run.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
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

/** The NumPy format: magic, version, header length, a Python dict literal, the data. */
function loadNpy(path: string): ActivationMatrix {
  const buf = readAll(path);
  const fail = (why: string): never => { throw new Error(`${path}: not a usable .npy file: ${why}`); };
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString("latin1", 1, 6) !== "NUMPY") fail("missing the \\x93NUMPY magic");
  const major = buf.readUInt8(6);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : major <= 3 ? buf.readUInt32LE(8) : fail(`unsupported version ${major}`);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) fail("header runs past the end of the file");
  const header = buf.toString(major === 3 ? "utf8" : "latin1", start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1] ?? fail("no descr in header");
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1] ?? fail("no fortran_order in header");
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail("no shape in header");
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.length !== 2 || shape.some((s) => !Number.isSafeInteger(s) || s < 0)) fail(`shape (${shapeText}) is not [rows, d]`);
  if (fortran === "True") fail("Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  const dtypes: Record<string, ["F32" | "F16" | "F64", number]> = { "<f4": ["F32", 4], "<f2": ["F16", 2], "<f8": ["F64", 8], "|f4": ["F32", 4] };
  const dt = dtypes[descr] ?? fail(`dtype ${descr} is not little-endian float16/32/64`);
  const [rows, d] = shape as [number, number];
  const bytes = rows * d * dt[1];
  const dataStart = start + headerLen;
  if (buf.length - dataStart !== bytes) fail(`holds ${buf.length - dataStart} data bytes, shape (${rows}, ${d}) of ${descr} needs ${bytes}`);
  return { data: decodeFloats(new Uint8Array(buf.buffer, buf.byteOffset + dataStart, bytes), dt[0], rows * d), rows, d };
}

function loadRaw(path: string, [rows, d]: [number, number]): ActivationMatrix {
  const buf = readAll(path);
  if (buf.length !== rows * d * 4) {
    throw new Error(`${path}: ${buf.length} bytes, but --shape ${rows},${d} of float32 needs ${rows * d * 4}`);
  }
  return { data: decodeFloats(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), "F32", rows * d), rows, d };
}
