/**
 * Activations from Arrow files: SAELens' activation cache (a Hugging Face dataset saved to
 * disk), single .arrow files in either IPC format, every way a float column can be laid out,
 * and every malformed file refused with its name and the problem. The files are written by
 * Apache Arrow's own library (arrow-fixtures.ts), not by saekit.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Field, Float32, List, makeData, RecordBatch, Schema, Struct, Table, tableToIPC } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../../src/core/dtype.js";
import { packageRoot } from "../../src/core/native.js";
import { Rng } from "../../src/core/rng.js";
import { activationsFromBytes } from "../../src/data/activation-matrix.js";
import { ArrowActivations } from "../../src/data/arrow-activations.js";
import { DatasetSource } from "../../src/data/dataset-source.js";
import { openActivationSource } from "../../src/data/open.js";
import { randn, tempDir } from "../helpers.js";
import { activationTable, writeHfDataset } from "./arrow-fixtures.js";

const HOOK = "blocks.0.hook_resid_post";

/** Every activation vector of the column, in file order. */
function readAll(a: ArrowActivations, rowsPerChunk = 2): Float32Array {
  const out = new Float32Array(a.vectors * a.d);
  let at = 0;
  for (const c of a.chunks(rowsPerChunk)) {
    a.read(c, out, at);
    at += c.rows * a.vectorsPerRow * a.d;
  }
  expect(at).toBe(out.length);
  return out;
}

/** A SAELens-style cache of `rows` contexts of [ctx, d] in `files` files, and its values. */
function cache(rows = 7, ctx = 5, d = 6, files = 2): { dir: string; values: Float32Array } {
  const dir = tempDir();
  const values = randn(new Rng(1), rows * ctx * d);
  writeHfDataset(dir, activationTable({ name: HOOK, values, rows, dims: [ctx, d], batchRows: 3, otherColumns: true }), files);
  return { dir, values };
}

describe("Arrow activations", () => {
  it("reads a SAELens activation cache folder: the hook's column, every context's vectors in order", () => {
    const { dir, values } = cache();
    const a = ArrowActivations.open(dir);
    expect(a.paths.map((p) => p.slice(dir.length + 1))).toEqual(["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]);
    expect({ column: a.column, dims: a.dims, d: a.d, vectorsPerRow: a.vectorsPerRow, vectors: a.vectors })
      .toEqual({ column: HOOK, dims: [5, 6], d: 6, vectorsPerRow: 5, vectors: 35 });
    expect(readAll(a)).toEqual(values);
    expect(readAll(a, 1)).toEqual(values);
    expect(a.provenance()).toEqual({ hook_name: HOOK, context_size: 5 });
    // The config SAELens uploads with a cache it pushes to the Hub says where it came from.
    writeFileSync(join(dir, "cache_activations_runner_cfg.json"), JSON.stringify({
      model_name: "pythia-70m", hook_name: HOOK, context_size: 5, prepend_bos: true, dataset_path: "roneneldan/TinyStories", d_in: 6,
    }));
    expect(ArrowActivations.open(dir).provenance()).toEqual({
      hook_name: HOOK, context_size: 5, model_name: "pythia-70m", dataset_path: "roneneldan/TinyStories", prepend_bos: true,
    });
  });

  it("reads every layout a float column can have: list, large list and fixed-size list; float16/32/64; [ctx, d] and [d]; stream and file format", () => {
    const dir = tempDir();
    const rng = new Rng(2);
    for (const storage of ["list", "large", "fixed"] as const) {
      for (const float of [16, 32, 64] as const) {
        for (const dims of [[3, 4], [4]]) {
          const rows = 5;
          const values = randn(rng, rows * dims.reduce((a, b) => a * b, 1));
          const table = activationTable({ name: "acts", values, rows, dims, float, storage, batchRows: 2 });
          const expected = float === 16 ? values.map((v) => f16BitsToF32(f32ToF16Bits(v))) : values;
          for (const format of ["stream", "file"] as const) {
            const path = join(dir, `${storage}-${float}-${dims.length}-${format}.arrow`);
            writeFileSync(path, tableToIPC(table, format));
            const a = ArrowActivations.open(path);
            expect({ dims: a.dims, vectorsPerRow: a.vectorsPerRow }, path).toEqual({ dims, vectorsPerRow: dims.length === 2 ? 3 : 1 });
            expect(readAll(a), path).toEqual(expected);
          }
        }
      }
    }
  });

  it("trains from a cache through openActivationSource: each pass serves every vector once, shuffled, and resumes exactly", async () => {
    const { dir, values } = cache(9, 4, 3, 2);
    const source = await openActivationSource(dir, { seed: 5, bufferRows: 4 });
    expect(source).toBeInstanceOf(DatasetSource);
    expect({ d: source.d, totalRows: source.totalRows }).toEqual({ d: 3, totalRows: 36 });
    const rowsOf = (x: Float32Array) => Array.from({ length: x.length / 3 }, (_, r) => Array.from(x.subarray(3 * r, 3 * r + 3)).join(","));
    const pass = new Float32Array(36 * 3);
    source.next(pass, 36);
    expect(rowsOf(pass).sort()).toEqual(rowsOf(values).sort());
    expect(pass).not.toEqual(values); // shuffled, not in file order
    const saved = source.state();
    const after = new Float32Array(10 * 3);
    source.next(after, 10);
    const again = await openActivationSource(dir, { seed: 5, bufferRows: 4 });
    again.restore(saved);
    const resumed = new Float32Array(10 * 3);
    again.next(resumed, 10);
    expect(resumed).toEqual(after);
  });

  it("leaves out the vectors of excluded tokens by the cache's token_ids, as SAELens does when it trains on a cache", async () => {
    const { dir, values } = cache(9, 4, 3, 2); // token_ids: context c's are 4c .. 4c + 3
    const excluded = [0, 4, 5, 13, 35];
    const source = await openActivationSource(dir, { seed: 2, bufferRows: 4, excludeTokens: excluded });
    expect(source.totalRows).toBe(36 - excluded.length);
    expect(source.describe()).toMatchObject({ exclude_tokens: excluded, rows: 31 });
    const served = new Float32Array(31 * 3);
    source.next(served, 31);
    const rowsOf = (x: Float32Array, keep: (r: number) => boolean = () => true) =>
      Array.from({ length: x.length / 3 }, (_, r) => r).filter(keep).map((r) => Array.from(x.subarray(3 * r, 3 * r + 3)).join(","));
    expect(rowsOf(served).sort()).toEqual(rowsOf(values, (r) => !excluded.includes(r)).sort());
    // Files without token_ids cannot say which token a vector is.
    const plain = tempDir();
    writeHfDataset(plain, activationTable({ name: HOOK, values, rows: 9, dims: [4, 3] }), 1);
    await expect(openActivationSource(plain, { excludeTokens: [0] })).rejects.toThrow(/no token_ids column/);
    await expect(openActivationSource(dir, { excludeTokens: Array.from({ length: 36 }, (_, i) => i) })).rejects.toThrow(/every position holds an excluded token/);
  });

  it("reads a cache's data file from bytes in hand, as the explorer page takes a dropped file", () => {
    const values = randn(new Rng(6), 5 * 4 * 3);
    const table = activationTable({ name: HOOK, values, rows: 5, dims: [4, 3], batchRows: 2, otherColumns: true });
    for (const format of ["stream", "file"] as const) {
      const m = activationsFromBytes(`data-00000-of-00001.${format === "file" ? "feather" : "arrow"}`, tableToIPC(table, format));
      expect({ rows: m.rows, d: m.d }).toEqual({ rows: 20, d: 3 });
      expect(m.data).toEqual(values);
    }
    const bad = tableToIPC(table, "stream").slice(0, 300);
    expect(() => activationsFromBytes("cut.arrow", bad)).toThrow(/^cut\.arrow: /);
  });

  it("picks the column named by --tensor, and says which to choose from when it cannot tell", () => {
    const dir = tempDir();
    const a = randn(new Rng(3), 2 * 4);
    const two = activationTable({ name: "mlp_out", values: a, rows: 2, dims: [4] });
    const acts = activationTable({ name: "resid", values: a.map((v) => 2 * v), rows: 2, dims: [4] });
    const both = new Table({ mlp_out: two.getChild("mlp_out")!, resid: acts.getChild("resid")! });
    const path = join(dir, "both.arrow");
    writeFileSync(path, tableToIPC(both, "stream"));
    expect(() => ArrowActivations.open(path)).toThrow(/both\.arrow: several columns of float vectors \(mlp_out, resid\); choose one with --tensor/);
    expect(readAll(ArrowActivations.open(path, "resid"))).toEqual(a.map((v) => 2 * v));
    expect(() => ArrowActivations.open(path, "token_ids")).toThrow(/no column "token_ids" \(columns: mlp_out, resid\)/);
    const { dir: withTokens } = cache(2, 2, 2, 1);
    expect(() => ArrowActivations.open(withTokens, "token_ids")).toThrow(/column "token_ids" is FixedSizeList2<Int32>, not \(lists of\) float vectors/);
  });

  it("refuses ragged arrays and null entries, naming the file, column and entry", () => {
    const dir = tempDir();
    const inner = new List(new Field("item", new Float32(), true));
    const outer = new List(new Field("item", inner, true));
    const write = (name: string, outerData: ReturnType<typeof makeData>) => {
      const schema = new Schema([new Field("acts", outer, true)]);
      const path = join(dir, name);
      writeFileSync(path, tableToIPC(new Table([new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 2, nullCount: 0, children: [outerData] }))]), "stream"));
      return path;
    };
    // Two contexts of 2 vectors of 3; the last vector is one short.
    const values = makeData({ type: new Float32(), length: 11, data: Float32Array.from({ length: 11 }, (_, i) => i) });
    const ragged = makeData({ type: inner, length: 4, valueOffsets: Int32Array.of(0, 3, 6, 9, 11), child: values });
    const raggedPath = write("ragged.arrow", makeData({ type: outer, length: 2, valueOffsets: Int32Array.of(0, 2, 4), child: ragged }));
    const a = ArrowActivations.open(raggedPath);
    expect(a.dims).toEqual([2, 3]);
    expect(() => readAll(a)).toThrow(/ragged\.arrow, column "acts", record batch 0: entry 3 holds 2 values at depth 2, not 3: the column's arrays must all be \[2, 3\]/);
    const full = makeData({ type: inner, length: 4, valueOffsets: Int32Array.of(0, 3, 6, 9, 12), child: makeData({ type: new Float32(), length: 12, data: new Float32Array(12) }) });
    const nullPath = write("nulls.arrow", makeData({ type: outer, length: 2, nullCount: 1, nullBitmap: Uint8Array.of(0b01), valueOffsets: Int32Array.of(0, 2, 4), child: full }));
    expect(() => readAll(ArrowActivations.open(nullPath))).toThrow(/nulls\.arrow, column "acts", record batch 0: 1 null entries; every value must be present/);
  });

  it("refuses a state.json that points outside its folder, and one that lists nothing", () => {
    const { dir } = cache(2, 2, 2, 1);
    writeFileSync(join(dir, "state.json"), JSON.stringify({ _data_files: [{ filename: "../elsewhere.arrow" }] }));
    expect(() => ArrowActivations.open(dir)).toThrow(/state\.json: bad data file name "\.\.\/elsewhere\.arrow"/);
    writeFileSync(join(dir, "state.json"), JSON.stringify({ _data_files: [] }));
    expect(() => ArrowActivations.open(dir)).toThrow(/state\.json: no _data_files listed/);
    writeFileSync(join(dir, "state.json"), "{ not json");
    expect(() => ArrowActivations.open(dir)).toThrow(/state\.json: cannot read the dataset state/);
    expect(() => ArrowActivations.open(join(dir, "missing.arrow"))).toThrow(/missing\.arrow: no such file or folder/);
  });

  it("refuses truncated and corrupted files with an error naming the file, never a crash or a hang", () => {
    const dir = tempDir();
    const values = randn(new Rng(4), 4 * 3 * 5);
    const good = tableToIPC(activationTable({ name: HOOK, values, rows: 4, dims: [3, 5], batchRows: 2, otherColumns: true }), "stream");
    const path = join(dir, "bad.arrow");
    const tryRead = (bytes: Uint8Array): Error | null => {
      writeFileSync(path, bytes);
      try {
        readAll(ArrowActivations.open(path));
        return null;
      } catch (err) {
        return err as Error;
      }
    };
    for (const cut of [0, 4, 8, 100, good.length >> 1, good.length - 9]) {
      const err = tryRead(good.subarray(0, cut));
      expect(err, `cut at ${cut}`).toBeInstanceOf(Error);
      expect(err!.message, `cut at ${cut}`).toContain(path);
    }
    const rng = new Rng(5);
    let refused = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bytes = good.slice();
      for (let f = 0; f < 1 + trial % 4; f++) bytes[Math.floor(rng.uniform() * bytes.length)] ^= 1 << Math.floor(rng.uniform() * 8);
      const err = tryRead(bytes);
      if (err === null) continue; // a flip in the float values, or in bytes nothing reads
      refused++;
      expect(err.constructor, err.stack).toBe(Error);
      expect(err.message).toContain(path);
    }
    expect(refused).toBeGreaterThan(20);
  });

  it("saekit train --data on a cache trains and records the hook and context size in cfg.json", () => {
    const { dir } = cache(8, 16, 8, 2);
    const out = join(tempDir(), "run");
    const bin = join(packageRoot(), "bin", "saekit.js");
    const r = spawnSync(process.execPath, [bin, "train", "--data", dir, "--arch", "topk", "--k", "2", "--d-sae", "16", "--steps", "3", "--batch", "32", "--threads", "1", "--out", out],
      { encoding: "utf8", env: { ...process.env, SAEKIT_QUIET: "1" } });
    expect(r.status, r.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(out, "cfg.json"), "utf8"));
    expect(cfg).toMatchObject({ d_in: 8, d_sae: 16, k: 2, metadata: { hook_name: HOOK, context_size: 16, dataset_path: dir } });
  });
});
