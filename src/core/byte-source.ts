/**
 * Random access to bytes wherever they are (a file on disk, a buffer in memory), so format
 * readers (safetensors) work the same in Node and in the browser.
 */

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
