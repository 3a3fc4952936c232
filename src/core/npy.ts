/**
 * NumPy's .npy format: the magic "\x93NUMPY", a version, a header length, a Python dict
 * literal ({'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}) padded with spaces,
 * then the array's bytes. Float arrays (f2, f4, f8, little-endian) of any rank decode to
 * float32 in C order, Fortran-ordered ones (what np.save writes for a transposed array)
 * reordered; every problem is an error naming `where`.
 */
import { decodeFloats } from "./dtype.js";

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** What an .npy header says: the array's shape and dtype, and where its data starts. */
export interface NpyHeader {
  shape: number[];
  dtype: "F32" | "F16" | "F64";
  /** Bytes per value. */
  size: number;
  /** Values in the array. */
  count: number;
  /** Byte offset of the data. */
  dataStart: number;
  /** The data is in Fortran (column-major) order: fortranToC puts it in C order. */
  fortranOrder: boolean;
}

/**
 * Where the data of an .npy file starts, from its first 12 bytes (fewer: their count, for
 * parseNpyHeader to refuse): the header's length follows the version.
 */
export function npyDataStart(first: Uint8Array): number {
  if (first.length < 12) return first.length;
  const view = new DataView(first.buffer, first.byteOffset, first.byteLength);
  return first[6] === 1 ? 10 + view.getUint16(8, true) : 12 + view.getUint32(8, true);
}

/**
 * The header at the start of `head` (the file's first bytes, at least up to its data), with
 * `fileSize` the whole file's size, which must be exactly the header and the array's data.
 */
export function parseNpyHeader(head: Uint8Array, fileSize: number, where: string): NpyHeader {
  const fail = (why: string): never => { throw new Error(`${where}: not a usable .npy file: ${why}`); };
  const latin1 = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head.length < 12 || head[0] !== 0x93 || latin1(1, 6) !== "NUMPY") fail("missing the \\x93NUMPY magic");
  const major = head[6]!;
  if (major < 1 || major > 3) fail(`unsupported version ${major}`);
  const start = major === 1 ? 10 : 12;
  const dataStart = npyDataStart(head);
  if (dataStart > Math.min(head.length, fileSize)) fail("header runs past the end of the file");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(head.subarray(start, dataStart));
  // numpy writes the dict with single quotes; other writers use double ones, which the
  // Python literal allows as well.
  const descr = /(['"])descr\1\s*:\s*(['"])(.*?)\2/.exec(header)?.[3] ?? fail("no descr in header");
  const fortran = /(['"])fortran_order\1\s*:\s*(True|False)/.exec(header)?.[2] ?? fail("no fortran_order in header");
  const shapeText = /(['"])shape\1\s*:\s*\(([^)]*)\)/.exec(header)?.[2] ?? fail("no shape in header");
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((s) => !Number.isSafeInteger(s) || s < 0)) fail(`bad shape (${shapeText})`);
  const dtypes: Record<string, ["F32" | "F16" | "F64", number]> = { "<f4": ["F32", 4], "<f2": ["F16", 2], "<f8": ["F64", 8], "|f4": ["F32", 4] };
  const [dtype, size] = dtypes[descr] ?? fail(`dtype ${descr} is not little-endian float16/32/64`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (fileSize - dataStart !== count * size) fail(`holds ${fileSize - dataStart} data bytes, shape (${shape.join(", ")}) of ${descr} needs ${count * size}`);
  return { shape, dtype, size, count, dataStart, fortranOrder: fortran === "True" };
}

/**
 * Fortran-ordered data of `shape` (the first index fastest) in C order (the last fastest),
 * into a new array. A Fortran array of shape (a, b) is a C array of shape (b, a), so for a
 * matrix this is a transpose, done in tiles that stay in cache.
 */
export function fortranToC(data: Float32Array, shape: readonly number[]): Float32Array {
  if (shape.length < 2) return data;
  const out = new Float32Array(data.length);
  if (shape.length === 2) {
    const [rows, cols] = shape as [number, number];
    const T = 64;
    for (let i0 = 0; i0 < rows; i0 += T) {
      for (let j0 = 0; j0 < cols; j0 += T) {
        const i1 = Math.min(rows, i0 + T), j1 = Math.min(cols, j0 + T);
        for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[i * cols + j] = data[j * rows + i]!;
      }
    }
    return out;
  }
  // Any rank: walk the C-order index (last axis fastest) and find each element's Fortran
  // offset, where axis a steps by the product of the axes before it.
  const strides = shape.map((_, a) => shape.slice(0, a).reduce((p, n) => p * n, 1));
  const index = shape.map(() => 0);
  let from = 0;
  for (let to = 0; to < out.length; to++) {
    out[to] = data[from]!;
    for (let a = shape.length - 1; a >= 0; a--) {
      index[a]!++;
      from += strides[a]!;
      if (index[a]! < shape[a]!) break;
      from -= index[a]! * strides[a]!;
      index[a] = 0;
    }
  }
  return out;
}

/** A whole .npy file's bytes as float32. */
export function parseNpy(bytes: Uint8Array, where: string): NpyArray {
  const h = parseNpyHeader(bytes, bytes.length, where);
  const data = decodeFloats(bytes.subarray(h.dataStart), h.dtype, h.count);
  return { shape: h.shape, data: h.fortranOrder ? fortranToC(data, h.shape) : data };
}
