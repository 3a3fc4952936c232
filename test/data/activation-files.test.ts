/** Activation files: .safetensors, .npy and raw float32, and what is wrong with bad ones. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSafetensors } from "../../src/core/safetensors.js";
import { fortranToC } from "../../src/core/npy.js";
import { Tensor } from "../../src/core/tensor.js";
import { loadActivations } from "../../src/data/activation-files.js";
import { activationsFromBytes } from "../../src/data/activation-matrix.js";
import { ArraySource } from "../../src/data/array-source.js";
import { checkFinite, passesOver } from "../../src/data/source.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { packageRoot } from "../../src/core/native.js";
import { tempDir } from "../helpers.js";

const torchFixtures = join(packageRoot(), "test", "fixtures", "torch");

const dir = tempDir();

/** A .npy file as numpy.save writes it (version 1.0, header padded to 64 bytes). */
function npy(path: string, descr: string, shape: number[], data: Uint8Array, fortran = false, quote = "'"): string {
  const q = (s: string) => `${quote}${s}${quote}`;
  let header = `{${q("descr")}: ${q(descr)}, ${q("fortran_order")}: ${fortran ? "True" : "False"}, ${q("shape")}: (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write("NUMPY", 1, "latin1");
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([head, Buffer.from(header, "latin1"), data]));
  return path;
}

const values = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2);

describe("activation files", () => {
  it("reads [N, d] from .safetensors, .npy (f4 and f8) and raw float32", () => {
    const st = join(dir, "a.safetensors");
    writeSafetensors(st, { acts: new Tensor([4, 3], values) });
    expect(loadActivations(st)).toMatchObject({ rows: 4, d: 3 });
    expect([...loadActivations(st).data]).toEqual([...values]);

    const f4 = npy(join(dir, "a.npy"), "<f4", [4, 3], new Uint8Array(values.buffer.slice(0)));
    expect([...loadActivations(f4).data]).toEqual([...values]);
    // The header as a writer other than numpy may quote it: the same Python literal.
    const doubleQuoted = npy(join(dir, "dq.npy"), "<f4", [4, 3], new Uint8Array(values.buffer.slice(0)), false, '"');
    expect(readFileSync(doubleQuoted, "latin1")).toContain(`{"descr": "<f4"`);
    expect([...loadActivations(doubleQuoted).data]).toEqual([...values]);
    const f8 = npy(join(dir, "b.npy"), "<f8", [3, 4], new Uint8Array(Float64Array.from(values).buffer));
    const m = loadActivations(f8);
    expect([m.rows, m.d]).toEqual([3, 4]);
    expect([...m.data]).toEqual([...values]);

    const raw = join(dir, "a.f32");
    writeFileSync(raw, new Uint8Array(values.buffer.slice(0)));
    expect(loadActivations(raw, { shape: [6, 2] })).toMatchObject({ rows: 6, d: 2 });
  });

  it("reads f2 and f8 .npy files from disk to the values their bytes decode to", () => {
    const rows = 300, d = 100;
    const halves = new Uint16Array(rows * d).map((_, i) => (i * 7919) % 0x7c00); // finite f16 bit patterns
    const f2 = npy(join(dir, "big-f2.npy"), "<f2", [rows, d], new Uint8Array(halves.buffer));
    const fromFile = loadActivations(f2);
    expect(fromFile).toMatchObject({ rows, d });
    expect(fromFile.data).toEqual(activationsFromBytes("big-f2.npy", readFileSync(f2)).data);
    const doubles = Float64Array.from({ length: rows * d }, (_, i) => Math.sin(i));
    const f8 = loadActivations(npy(join(dir, "big-f8.npy"), "<f8", [rows, d], new Uint8Array(doubles.buffer)));
    expect(f8.data).toEqual(Float32Array.from(doubles));
  });

  it("names the file and the problem for bad input", () => {
    // A version 2 header claiming 4 GiB: refused without reading (or allocating) that much.
    const claim = Buffer.alloc(64);
    claim.writeUInt8(0x93, 0);
    claim.write("NUMPY", 1, "latin1");
    claim.writeUInt8(2, 6);
    claim.writeUInt32LE(0xfffffff0, 8);
    writeFileSync(join(dir, "claim.npy"), claim);
    expect(() => loadActivations(join(dir, "claim.npy"))).toThrow(/claim.npy: not a usable .npy file: header runs past the end of the file/);
    const two = join(dir, "two.safetensors");
    writeSafetensors(two, { a: new Tensor([2, 2], new Float32Array(4)), b: new Tensor([2, 2], new Float32Array(4)) });
    expect(() => loadActivations(two)).toThrow(/two.safetensors: expected exactly one 2-D float tensor, found 2 \(a, b\)/);
    expect(loadActivations(two, { tensor: "b" }).rows).toBe(2);
    expect(() => loadActivations(two, { tensor: "c" })).toThrow(/two.safetensors: no tensor named "c" \(has: a, b\)/);
    expect(() => loadActivations(npy(join(dir, "c.npy"), ">f4", [1, 1], new Uint8Array(4)))).toThrow(/dtype >f4 is not little-endian/);
    expect(() => loadActivations(npy(join(dir, "d.npy"), "<f4", [4, 3], new Uint8Array(8)))).toThrow(/needs 48/);
    expect(() => loadActivations(npy(join(dir, "f.npy"), "<f4", [12], new Uint8Array(48)))).toThrow(/is not \[rows, d\]/);
    const junk = join(dir, "junk.npy");
    writeFileSync(junk, "hello");
    expect(() => loadActivations(junk)).toThrow(/junk.npy: not a usable .npy file: missing the/);
    const raw = join(dir, "short.f32");
    writeFileSync(raw, new Uint8Array(10));
    expect(() => loadActivations(raw, { shape: [2, 2] })).toThrow(/10 bytes, but --shape 2,2 of float32 needs 16/);
    expect(() => loadActivations(join(dir, "x.bin"))).toThrow(/unknown activation file type/);
    const nan = join(dir, "nan.safetensors");
    writeSafetensors(nan, { a: new Tensor([1, 2], Float32Array.from([1, Infinity])) });
    expect(() => loadActivations(nan)).toThrow(/nan.safetensors: non-finite activation Infinity at flat index 1/);
  });

  it("checkFinite passes finite batches (squares that overflow included) and names the first NaN or infinity", () => {
    const batch = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i));
    expect(() => checkFinite(batch, "batch")).not.toThrow();
    // Finite, but their squares overflow a float32 sum: the element scan clears them.
    const huge = Float32Array.from({ length: 3000 }, (_, i) => (i % 2 ? 3e38 : -3e38));
    expect(() => checkFinite(huge, "huge")).not.toThrow();
    for (const [bad, at] of [[NaN, 4321], [-Infinity, 0], [Infinity, 4999]] as const) {
      const x = batch.slice();
      x[at] = bad;
      expect(() => checkFinite(x, "batch 7")).toThrow(`batch 7: non-finite activation ${bad} at flat index ${at};`);
    }
  });

  it("reads Fortran-ordered .npy files (np.save of a transposed array) in C order", () => {
    // [[1, 2, 3], [4, 5, 6]] column by column, as numpy writes it with fortran_order True.
    const f = npy(join(dir, "fortran.npy"), "<f4", [2, 3], new Uint8Array(Float32Array.from([1, 4, 2, 5, 3, 6]).buffer), true);
    expect(loadActivations(f)).toMatchObject({ rows: 2, d: 3, data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    // Larger than one 64 x 64 tile, and any rank: element (i, j, k) of shape (a, b, c) sits at
    // i + a j + a b k in Fortran order; each element's value is its C-order position.
    for (const shape of [[70, 130], [3, 4, 5], [2, 1, 3, 2]]) {
      const count = shape.reduce((p, n) => p * n, 1);
      const fortran = new Float32Array(count);
      for (let c = 0; c < count; c++) {
        // The index of C-order position c, then its Fortran offset.
        let rest = c, offset = 0;
        const index = shape.map(() => 0);
        for (let a = shape.length - 1; a >= 0; a--) { index[a] = rest % shape[a]!; rest = Math.floor(rest / shape[a]!); }
        index.forEach((i, a) => { offset += i * shape.slice(0, a).reduce((p, n) => p * n, 1); });
        fortran[offset] = c;
      }
      expect(fortranToC(fortran, shape), shape.join("x")).toEqual(Float32Array.from({ length: count }, (_, c) => c));
    }
  });

  it("reads PyTorch .pt files torch.save wrote: one bare tensor, or the matrix of a dict", () => {
    // test/fixtures/torch/make_fixtures.py: acts[r, c] = 0.3 sin(0.37 (5 r + c) + 9), saved as
    // float32 alone and as float16 under "activations" beside a token tensor and a string.
    const want = Float32Array.from({ length: 30 }, (_, i) => Math.fround(0.3 * Math.sin(0.37 * i + 9)));
    const bare = loadActivations(join(torchFixtures, "acts.pt"));
    expect(bare).toMatchObject({ rows: 6, d: 5 });
    expect(bare.data).toEqual(want);
    const dict = loadActivations(join(torchFixtures, "acts-dict.pt"));
    expect(dict).toMatchObject({ rows: 6, d: 5 });
    for (let i = 0; i < 30; i++) expect(Math.abs(dict.data[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) / 1024); // float16
    expect(() => loadActivations(join(torchFixtures, "acts-dict.pt"), { tensor: "tokens" })).toThrow(/tensor "tokens" has shape \[6\], expected \[rows, d\]/);
    expect(() => loadActivations(join(torchFixtures, "acts-dict.pt"), { tensor: "nope" })).toThrow(/no tensor named "nope" \(has: activations, tokens\)/);
    // A state dict of several matrices names none: the error says to choose.
    expect(() => loadActivations(join(torchFixtures, "dictionary_learning", "topk", "ae.pt")))
      .toThrow(/expected exactly one 2-D float tensor, found 2 .*choose one with --tensor/);
  });

  it("ArraySource serves every row once per epoch, reshuffled per epoch, and resumes", () => {
    const data = Float32Array.from({ length: 10 }, (_, i) => i);
    const src = new ArraySource(data, 1, 7);
    const seen = new Float32Array(10);
    src.next(seen, 10);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const state = src.state();
    const a = new Float32Array(15);
    src.next(a, 15);
    src.restore(state);
    const b = new Float32Array(15);
    src.next(b, 15);
    expect([...b]).toEqual([...a]);
    expect([...a.subarray(0, 10)]).not.toEqual([...seen]); // a new permutation
  });

  it("counts the passes a run makes over a fixed set of rows, and none over endless data", () => {
    const src = new ArraySource(new Float32Array(40), 4); // 10 rows
    expect(src.totalRows).toBe(10);
    expect(passesOver(src, 25)).toBe(2.5);
    expect(passesOver(src, 10)).toBeNull(); // one pass: nothing to say
    expect(passesOver(new SuperpositionSource({ d: 8, nFeatures: 16 }), 1e9)).toBeNull();
  });
});
