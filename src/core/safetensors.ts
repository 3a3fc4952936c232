/**
 * safetensors files on disk: SafetensorsFile reads one through a file descriptor (only the
 * header up front, tensors on demand), writeSafetensors writes one atomically. The format
 * itself, and reading from bytes in memory, is safetensors-format.ts.
 */
import { writeFileAtomic } from "./atomic.js";
import { fileSource } from "./file-range.js";
import { SafetensorsError, SafetensorsReader, type TensorToWrite, encodeSafetensors } from "./safetensors-format.js";
import type { Tensor } from "./tensor.js";

export * from "./safetensors-format.js";

export class SafetensorsFile extends SafetensorsReader {
  /** Reads and validates the header of `path`. */
  static open(path: string): SafetensorsFile {
    return new SafetensorsFile(path, fileSource(path, (problem) => { throw new SafetensorsError(path, problem); }));
  }
}

/** Writes a safetensors file atomically (temp file, fsync, rename). */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite | Tensor>,
  metadata?: Record<string, string>): void {
  // Written out before this returns, so float32 tensors go to disk from their own memory
  // (a 128 MB activation shard need not be copied first).
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, { copy: false }));
}

/** Reads every float tensor of a file into memory. */
export function readSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const file = SafetensorsFile.open(path);
  const tensors = new Map<string, Tensor>();
  for (const [name, info] of file.tensors) {
    if (info.dtype === "F32" || info.dtype === "F16" || info.dtype === "BF16" || info.dtype === "F64") {
      tensors.set(name, file.read(name));
    }
  }
  return { tensors, metadata: { ...file.metadata } };
}
