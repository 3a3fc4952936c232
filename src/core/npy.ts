/**
 * NumPy's .npy format: the magic "\x93NUMPY", a version, a header length, a Python dict
 * literal ({'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}) padded with spaces,
 * then the array's bytes. Float arrays (f2, f4, f8, little-endian, C order) of any rank
 * decode to float32; every problem is an error naming `where`.
 */
import { decodeFloats } from "./dtype.js";

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

export function parseNpy(bytes: Uint8Array, where: string): NpyArray {
  const fail = (why: string): never => { throw new Error(`${where}: not a usable .npy file: ${why}`); };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length < 10 || bytes[0] !== 0x93 || latin1(1, 6) !== "NUMPY") fail("missing the \\x93NUMPY magic");
  const major = bytes[6]!;
  const headerLen = major === 1 ? view.getUint16(8, true) : major <= 3 ? view.getUint32(8, true) : fail(`unsupported version ${major}`);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.length) fail("header runs past the end of the file");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1] ?? fail("no descr in header");
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1] ?? fail("no fortran_order in header");
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail("no shape in header");
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((s) => !Number.isSafeInteger(s) || s < 0)) fail(`bad shape (${shapeText})`);
  if (fortran === "True") fail("Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  const dtypes: Record<string, ["F32" | "F16" | "F64", number]> = { "<f4": ["F32", 4], "<f2": ["F16", 2], "<f8": ["F64", 8], "|f4": ["F32", 4] };
  const dt = dtypes[descr] ?? fail(`dtype ${descr} is not little-endian float16/32/64`);
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * dt[1];
  const dataStart = start + headerLen;
  if (bytes.length - dataStart !== need) fail(`holds ${bytes.length - dataStart} data bytes, shape (${shape.join(", ")}) of ${descr} needs ${need}`);
  return { shape, data: decodeFloats(bytes.subarray(dataStart), dt[0], count) };
}
