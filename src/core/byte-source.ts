/**
 * Random access to bytes wherever they are (a file on disk, a buffer in memory), so format
 * readers (safetensors, .npy) work the same in Node and in the browser.
 */
import { DTYPE_SIZE, decodeFloats } from "./dtype.js";

export type Fail = (problem: string) => never;

export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes from `position`, or a failure saying where the data ended. */
  read(position: number, length: number, fail: Fail): Uint8Array;
  /**
   * The same bytes (target.byteLength of them) written into `target`: a large tensor read
   * straight into its own array, with no buffer in between (whose fresh pages would cost as
   * much as the read again).
   */
  readInto?(position: number, target: Uint8Array, fail: Fail): void;
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read(position, length, fail) {
      if (position + length > bytes.byteLength) fail(`file ended while reading bytes ${position}..${position + length}`);
      return bytes.subarray(position, position + length);
    },
  };
}

/** Values per read of readFloatsInto: one byte view spans at most 4 GiB, and arrays get bigger. */
const FLOATS_PER_READ = 1 << 26;

/**
 * `into.length` little-endian values of `dtype` from `position` of `source`, as float32,
 * into `into`: float32 straight into its memory where the source can, the others through a
 * chunk-sized buffer. Arrays of more than 4 GiB are read a chunk at a time.
 */
export function readFloatsInto(source: ByteSource, position: number, dtype: "F32" | "F16" | "BF16" | "F64", into: Float32Array, fail: Fail,
  perRead = FLOATS_PER_READ): Float32Array {
  const size = DTYPE_SIZE[dtype];
  for (let at = 0; at < into.length; at += perRead) {
    const n = Math.min(perRead, into.length - at);
    const from = position + at * size;
    if (dtype === "F32" && source.readInto) source.readInto(from, new Uint8Array(into.buffer, into.byteOffset + 4 * at, 4 * n), fail);
    else into.set(decodeFloats(source.read(from, n * size, fail), dtype, n), at);
  }
  return into;
}
