/**
 * NumPy .npz archives (np.savez, and np.savez_compressed's deflated entries): a zip of
 * .npy files, one per array, named "<key>.npy". Google's GemmaScope SAEs ship as
 * params.npz. Arrays are read on demand; every problem is an error naming the file.
 */
import { closeSync, fstatSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import type { ByteSource } from "./byte-source.js";
import { type Fail, fileSource, openForReading } from "./file-range.js";
import { type NpyArray, parseNpy } from "./npy.js";
import { readZipDirectory, type ZipEntry } from "./zip.js";

export class NpzFile {
  private constructor(readonly path: string, private readonly entries: Map<string, ZipEntry>,
    private readonly source: ByteSource) {}

  static open(path: string): NpzFile {
    const fail: Fail = (problem) => { throw new Error(`${path}: ${problem}`); };
    const fd = openForReading(path, fail);
    try {
      const entries = readZipDirectory(fd, fstatSync(fd).size, fail);
      const arrays = new Map<string, ZipEntry>();
      for (const [name, e] of entries) if (name.endsWith(".npy")) arrays.set(name.slice(0, -4), e);
      if (arrays.size === 0) fail("not a NumPy .npz archive (no .npy entries)");
      return new NpzFile(path, arrays, fileSource(path, fail));
    } finally {
      closeSync(fd);
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  read(name: string): NpyArray {
    const fail: Fail = (problem) => { throw new Error(`${this.path}: ${problem}`); };
    const e = this.entries.get(name) ?? fail(`no array "${name}" (has ${this.names().join(", ")})`);
    const raw = this.source.read(e.start, e.size, fail);
    let bytes = raw;
    if (e.method === 8) {
      try {
        // Never inflate past the size the archive declares (a corrupt or hostile entry).
        bytes = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.uncompressedSize) });
      } catch (err) {
        fail(`array "${name}": its deflated data is corrupt (${(err as Error).message})`);
      }
      if (bytes.length !== e.uncompressedSize) fail(`array "${name}": inflates to ${bytes.length} bytes, the archive says ${e.uncompressedSize}`);
    } else if (e.method !== 0) {
      fail(`array "${name}" uses zip compression method ${e.method}; only stored and deflated entries are read`);
    }
    return parseNpy(bytes, `${this.path}: ${name}.npy`);
  }
}
