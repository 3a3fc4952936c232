/**
 * Storage dtypes and conversions between them and float32. saekit computes in float32;
 * F16 and BF16 exist to halve the size of weights and activation stores on disk.
 * Conversions round to nearest, ties to even, like PyTorch's `.to(dtype)`.
 */

export type FloatDType = "F32" | "F16" | "BF16";
export type DType = FloatDType | "F64" | "I64" | "I32" | "U8" | "BOOL";

/** Bytes per element. */
export const DTYPE_SIZE: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1,
};

export function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bfloat16 bits (round to nearest even; NaN stays NaN). */
export function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** float32 -> IEEE half bits (round to nearest even, overflow to inf, subnormals kept). */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, rounding to even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && (out & 1))) out++;
    return sign | out;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out++; // may carry into exponent: correct
  return sign | out;
}

let halfTable: Float32Array | null = null;

/** IEEE half bits -> float32, through a 65536-entry table built on first use. */
export function f16BitsToF32(h: number): number {
  if (!halfTable) halfTable = buildHalfTable();
  return halfTable[h & 0xffff]!;
}

function buildHalfTable(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
}

/** Decodes little-endian F32/F16/BF16/F64 bytes into a new Float32Array. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDType | "F64", count: number): Float32Array {
  const need = count * DTYPE_SIZE[dtype];
  if (bytes.byteLength < need) throw new RangeError(`${count} ${dtype} values need ${need} bytes, got ${bytes.byteLength}`);
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32":
      // Little-endian bytes into a little-endian Float32Array (every platform Node and the
      // browsers run on): a copy of the bytes, wherever they start. (Element by element
      // through the DataView, a misaligned 280 MB checkpoint took over a second to load.)
      new Uint8Array(out.buffer).set(bytes.subarray(0, 4 * count));
      break;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case "F16":
      if (!halfTable) halfTable = buildHalfTable();
      for (let i = 0; i < count; i++) out[i] = halfTable[view.getUint16(2 * i, true)]!;
      break;
    case "BF16": {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

/**
 * Encodes float32 values as little-endian bytes of the given float dtype. For F32 with
 * copy = false the result is a view of the values' own memory (no copy): for a caller that
 * writes the bytes out before the values change.
 */
export function encodeFloats(values: Float32Array, dtype: FloatDType, copy = true): Uint8Array {
  if (dtype === "F32") {
    const view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    return copy ? view.slice() : view;
  }
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  const convert = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) view.setUint16(2 * i, convert(values[i]!), true);
  return out;
}
