/**
 * Activations in Parquet, as a SAELens cache pushed to the hub holds them: files written by
 * two independent writers — DuckDB (the fixtures: V1 and V2 pages, dictionary, PLAIN,
 * BYTE_STREAM_SPLIT and DELTA_BINARY_PACKED encodings, snappy and zstd, doubles and int64
 * tokens) and hyparquet-writer (here: float16, several row groups, REQUIRED levels) — read
 * to the values their formulas give and to what hyparquet's own reader (the oracle) returns,
 * served shuffled and resumably as training data, downloaded from a stand-in hub, and
 * refused by row group and column when ragged, null or corrupt.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import type { Decompress } from "../../src/core/parquet-pages.js";
import { activationsFromBytes, activationsFromParquetBytes } from "../../src/data/activation-matrix.js";
import { openActivationSource } from "../../src/data/open.js";
import { DatasetSource } from "../../src/data/dataset-source.js";
import { peekWholeRows } from "../../src/data/source.js";
import { ParquetActivations } from "../../src/data/parquet-activations.js";
import { readEveryVector, serveHubFile, tempDir } from "../helpers.js";
import { activationTable, writeHfDataset } from "./arrow-fixtures.js";

const HOOK = "blocks.0.hook_resid_post";
const FIXTURES = join(import.meta.dirname, "..", "fixtures", "parquet");

/** The DuckDB fixtures (make_fixtures.mjs): rows, [P, D] per row, and each value's formula (v = r * P + p). */
const DUCKDB = [
  { file: "acts-dict-snappy.parquet", rows: 2500, P: 2, D: 3, act: (v: number, j: number) => ((v * 3 + j) % 11) * 0.5 - 2, groups: 2 },
  { file: "acts-v2-zstd.parquet", rows: 10, P: 4, D: 6, act: (v: number, j: number) => v * 0.25 + j * 0.125 - 1, groups: 1 },
  { file: "acts-double-plain.parquet", rows: 12, P: 3, D: 5, act: (v: number, j: number) => v * 1.5 - j * 0.75, groups: 1 },
];

/** Every vector of the files, in order, through saekit's reader. */
const readAll = (acts: ParquetActivations) => readEveryVector(acts);

/** The same through hyparquet's reader, which builds nested JS arrays: the oracle. */
async function oracle(path: string): Promise<{ values: number[]; tokens: number[] }> {
  const file = new Uint8Array(readFileSync(path)).buffer;
  const rows = await parquetReadObjects({ file, compressors }) as Array<Record<string, unknown>>;
  return {
    values: rows.flatMap((r) => (r[HOOK] as number[][]).flat()),
    tokens: rows.flatMap((r) => (r.token_ids as Array<number | bigint>).map(Number)),
  };
}

type Leaf = "FLOAT" | "FLOAT16";

/** A Parquet file by hyparquet-writer: `rows` rows of [P, D] (value(v, j), v = r * P + p) and token_ids. */
function writeActs(path: string, o: { rows: number; P: number; D: number; value: (v: number, j: number) => number;
  leaf?: Leaf; rowGroupSize?: number; required?: boolean; rowsData?: (number[][] | null)[] }): void {
  const data = o.rowsData ?? Array.from({ length: o.rows }, (_, r) =>
    Array.from({ length: o.P }, (_, p) => Array.from({ length: o.D }, (_, j) => o.value(r * o.P + p, j))));
  const tokens = Array.from({ length: data.length }, (_, r) => Array.from({ length: o.P }, (_, p) => (r * o.P + p) % 7));
  const rep = o.required ? "REQUIRED" as const : "OPTIONAL" as const;
  const leaf = o.leaf === "FLOAT16" ? { type: "FIXED_LEN_BYTE_ARRAY" as const, type_length: 2, logical_type: { type: "FLOAT16" as const } } : { type: "FLOAT" as const };
  const schema = [
    { name: "schema", num_children: 2 },
    { name: HOOK, repetition_type: rep, num_children: 1, converted_type: "LIST" as const },
    { name: "list", repetition_type: "REPEATED" as const, num_children: 1 },
    { name: "element", repetition_type: rep, num_children: 1, converted_type: "LIST" as const },
    { name: "list", repetition_type: "REPEATED" as const, num_children: 1 },
    { name: "element", repetition_type: rep, ...leaf },
    { name: "token_ids", repetition_type: rep, num_children: 1, converted_type: "LIST" as const },
    { name: "list", repetition_type: "REPEATED" as const, num_children: 1 },
    { name: "element", repetition_type: rep, type: "INT32" as const },
  ];
  const buffer = parquetWriteBuffer({ columnData: [{ name: HOOK, data }, { name: "token_ids", data: tokens }], schema, rowGroupSize: o.rowGroupSize ?? 1000 });
  writeFileSync(path, new Uint8Array(buffer));
}

describe("Parquet activations", () => {
  for (const f of DUCKDB) {
    it(`reads DuckDB's ${f.file} to its formula and to hyparquet's values`, async () => {
      const path = join(FIXTURES, f.file);
      const acts = await ParquetActivations.open(path);
      expect({ column: acts.column, dims: acts.dims, d: acts.d, vectors: acts.vectors, chunks: acts.chunks().length })
        .toEqual({ column: HOOK, dims: [f.P, f.D], d: f.D, vectors: f.rows * f.P, chunks: f.groups });
      const { values, tokens } = readAll(acts);
      const want = new Float32Array(f.rows * f.P * f.D);
      for (let v = 0; v < f.rows * f.P; v++) for (let j = 0; j < f.D; j++) want[v * f.D + j] = f.act(v, j);
      expect(values).toEqual(want);
      expect(Array.from(tokens)).toEqual(Array.from({ length: f.rows * f.P }, (_, v) => v % 7));
      const o = await oracle(path);
      expect(Array.from(values)).toEqual(o.values.map(Math.fround));
      expect(Array.from(tokens)).toEqual(o.tokens);
    });
  }

  it("reads a file in hand as the explorer page does: snappy and uncompressed pages, other codecs when given", async () => {
    for (const f of DUCKDB) {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, f.file)));
      const want = readAll(await ParquetActivations.open(join(FIXTURES, f.file))).values;
      if (f.file.includes("zstd")) {
        await expect(activationsFromParquetBytes(f.file, bytes)).rejects.toThrow(new RegExp(`^${f.file}: row group 0, column "${HOOK}": compression ZSTD is not supported`));
        expect((await activationsFromParquetBytes(f.file, bytes, undefined, compressors as Record<string, Decompress>)).data).toEqual(want);
        continue;
      }
      const m = await activationsFromParquetBytes(f.file, bytes);
      expect({ rows: m.rows, d: m.d }).toEqual({ rows: f.rows * f.P, d: f.D });
      expect(m.data).toEqual(want);
    }
    await expect(activationsFromParquetBytes("cut.parquet", new Uint8Array(readFileSync(join(FIXTURES, "acts-v2-zstd.parquet"))).subarray(0, 300))).rejects.toThrow(/^cut\.parquet: not a Parquet file/);
    expect(() => activationsFromBytes("x.parquet", new Uint8Array(8))).toThrow(/read by activationsFromParquetBytes/);
  });

  it("reads hyparquet-writer's float16, several row groups and REQUIRED levels, as hyparquet does", async () => {
    const dir = tempDir();
    const cases: Array<{ name: string; leaf?: Leaf; required?: boolean; rowGroupSize: number }> = [
      { name: "f32-groups", rowGroupSize: 3 },
      { name: "f16", leaf: "FLOAT16", rowGroupSize: 4 },
      { name: "required", required: true, rowGroupSize: 5 },
    ];
    for (const c of cases) {
      const path = join(dir, `${c.name}.parquet`);
      // Multiples of 1/8 below 4: exact in float16.
      writeActs(path, { rows: 11, P: 3, D: 5, value: (v, j) => ((v * 5 + j) % 29) / 8 - 1.5, ...c });
      const acts = await ParquetActivations.open(path);
      expect({ dims: acts.dims, vectors: acts.vectors, chunks: acts.chunks().map((ch) => ch.rows) })
        .toEqual({ dims: [3, 5], vectors: 33, chunks: Array.from({ length: Math.ceil(11 / c.rowGroupSize) }, (_, g) => Math.min(c.rowGroupSize, 11 - g * c.rowGroupSize)) });
      const { values, tokens } = readAll(acts);
      const o = await oracle(path);
      expect(Array.from(values)).toEqual(o.values);
      expect(Array.from(tokens)).toEqual(o.tokens);
      expect(values[5 * 7 + 2]).toBe(((7 * 5 + 2) % 29) / 8 - 1.5);
    }
  });

  it("serves a folder of files as training data: every vector once a pass, shuffled, resumed exactly, tokens left out", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "data"));
    const value = (v: number, j: number) => v + j / 10;
    // As push_to_hub lays a dataset out: data/train-NNNNN-of-NNNNN.parquet, SAELens' config beside.
    writeActs(join(dir, "data", "train-00000-of-00002.parquet"), { rows: 6, P: 4, D: 3, value, rowGroupSize: 2 });
    // The second file's lists REQUIRED, the first's OPTIONAL: each file's own levels are read.
    writeActs(join(dir, "data", "train-00001-of-00002.parquet"), { rows: 6, P: 4, D: 3, value: (v, j) => value(v + 24, j), rowGroupSize: 2, required: true });
    writeFileSync(join(dir, "cache_activations_runner_cfg.json"), JSON.stringify({ model_name: "pythia-70m", dataset_path: "roneneldan/TinyStories", prepend_bos: true }));
    const source = await openActivationSource(dir, { seed: 3, bufferRows: 16 });
    expect(source).toBeInstanceOf(DatasetSource);
    expect({ d: source.d, totalRows: source.totalRows }).toEqual({ d: 3, totalRows: 48 });
    expect(source.describe()).toMatchObject({ kind: "parquet", files: 2, column: HOOK, shape: [4, 3], vectors: 48 });
    expect((source as DatasetSource).activations.provenance()).toEqual({ hook_name: HOOK, context_size: 4, model_name: "pythia-70m", dataset_path: "roneneldan/TinyStories", prepend_bos: true });
    const key = (x: Float32Array, r: number) => Array.from(x.subarray(3 * r, 3 * r + 3)).join(",");
    const pass = new Float32Array(48 * 3);
    source.next(pass, 48);
    const all = Array.from({ length: 48 }, (_, v) => [0, 1, 2].map((j) => Math.fround(value(v, j))).join(","));
    expect(Array.from({ length: 48 }, (_, r) => key(pass, r)).sort()).toEqual([...all].sort());
    expect(Array.from({ length: 48 }, (_, r) => key(pass, r))).not.toEqual(all);
    const saved = source.state();
    const after = new Float32Array(20 * 3);
    source.next(after, 20);
    const again = await openActivationSource(dir, { seed: 3, bufferRows: 16 });
    again.restore(saved);
    const resumed = new Float32Array(20 * 3);
    again.next(resumed, 20);
    expect(resumed).toEqual(after);
    // token_ids of vector v: v % 7 (the second file continues the first's numbering at 24 % 7).
    const excluded = [0, 3];
    const kept = await openActivationSource(dir, { seed: 1, bufferRows: 16, excludeTokens: excluded });
    const keptRows = Array.from({ length: 48 }, (_, v) => v).filter((v) => !excluded.includes((v % 24) % 7));
    expect(kept.totalRows).toBe(keptRows.length);
    const served = new Float32Array(keptRows.length * 3);
    kept.next(served, keptRows.length);
    expect(Array.from({ length: keptRows.length }, (_, r) => key(served, r)).sort()).toEqual(keptRows.map((v) => all[v]!).sort());
    // saekit train on the folder: the SAE's cfg.json says what the activations were, as SAELens' would.
    const run = join(dir, "run");
    const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "train", "--data", dir, "--arch", "topk", "--k", "2", "--d-sae", "8", "--steps", "3", "--batch", "16", "--out", run],
      { encoding: "utf8", env: { ...process.env, SAEKIT_THREADS: "1" } });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ steps: 3, tokens: 48 });
    expect(JSON.parse(readFileSync(join(run, "cfg.json"), "utf8"))).toMatchObject({
      d_in: 3, metadata: { dataset_path: "roneneldan/TinyStories", hook_name: HOOK, context_size: 4, model_name: "pythia-70m", prepend_bos: true },
    });
  });

  it("refuses ragged rows, nulls, other columns and corrupt files, naming the file, row group and column", async () => {
    const dir = tempDir();
    const ok = (r: number) => [[r, r + 1], [r + 2, r + 3]];
    const refusal = async (name: string, rowsData: (number | null)[][][], why: RegExp) => {
      const path = join(dir, `${name}.parquet`);
      writeActs(path, { rows: 0, P: 2, D: 2, value: () => 0, rowGroupSize: 2, rowsData: rowsData as number[][][] });
      const acts = await ParquetActivations.open(path);
      expect(acts.dims).toEqual([2, 2]);
      expect(() => readAll(acts)).toThrow(new RegExp(`^${path}: row group 1, column "${HOOK}": ${why.source}`));
    };
    // Four values, but as [3, 1]; three values; a null inside a full row.
    await refusal("ragged", [ok(0), ok(1), [[1, 2, 3], [4]], ok(3)], /row 0 is not of shape \[2, 2\], as the column's first row is/);
    await refusal("short", [ok(0), ok(1), ok(2), [[1, 2], [3]]], /7 entries where 2 rows of \[2, 2\] have 8/);
    await refusal("null", [ok(0), ok(1), ok(2), [[1, null], [3, 4]]], /row 1: a null or an empty list/);
    await expect(ParquetActivations.open(join(FIXTURES, "text-zstd.parquet"))).rejects.toThrow(/no column of float vectors \(columns: id\)/);
    await expect(ParquetActivations.open(join(FIXTURES, "acts-v2-zstd.parquet"), "nope")).rejects.toThrow(/no column "nope" \(columns: blocks.0.hook_resid_post, token_ids\)/);
    // Truncated, not Parquet, or bytes flipped anywhere: an error naming the file, never a crash or a hang.
    const bytes = readFileSync(join(FIXTURES, "acts-dict-snappy.parquet"));
    const bad = join(dir, "bad.parquet");
    writeFileSync(bad, bytes.subarray(0, bytes.length - 100));
    await expect(ParquetActivations.open(bad)).rejects.toThrow(new RegExp(`^${bad}: not a Parquet file`));
    writeFileSync(bad, bytes.subarray(0, 8));
    await expect(ParquetActivations.open(bad)).rejects.toThrow(/too short for a Parquet file/);
    let refused = 0;
    for (let trial = 0; trial < 300; trial++) {
      const flipped = new Uint8Array(bytes);
      const at = (trial * 7919) % flipped.length;
      flipped[at] = flipped[at]! ^ (1 << (trial % 8));
      writeFileSync(bad, flipped);
      try {
        readAll(await ParquetActivations.open(bad));
      } catch (err) {
        expect((err as Error).message).toMatch(new RegExp(`^${bad}: `));
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
  });

  it("downloads a cache pushed to the hub (hf:ORG/NAME) once, and trains from the copy without a network", async () => {
    const root = tempDir();
    const repo = (name: string) => join(root, name);
    mkdirSync(join(repo("cache"), "data"), { recursive: true });
    copyFileSync(join(FIXTURES, "acts-v2-zstd.parquet"), join(repo("cache"), "data", "train-00000-of-00001.parquet"));
    writeFileSync(join(repo("cache"), "cache_activations_runner_cfg.json"), JSON.stringify({ model_name: "tiny" }));
    writeFileSync(join(repo("cache"), "README.md"), "# a dataset card");
    // A cache saved to disk and uploaded as it is: Arrow files beside state.json.
    mkdirSync(repo("saved"));
    const values = Float32Array.from({ length: 6 * 4 * 3 }, (_, i) => i / 8);
    writeHfDataset(repo("saved"), activationTable({ name: HOOK, values, rows: 6, dims: [4, 3], batchRows: 3 }), 2);
    const downloads: string[] = [];
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      const tree = /^\/api\/datasets\/org\/(\w+)\/tree\/main/.exec(url.pathname);
      if (tree) {
        const dir = repo(tree[1]!);
        const files = existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))) : [];
        return Response.json(files.map((path) => ({ type: "file", path, size: readFileSync(join(dir, path)).length, oid: path })));
      }
      const m = /^\/datasets\/org\/(\w+)\/resolve\/main\/(.+)$/.exec(url.pathname);
      const path = m ? join(repo(m[1]!), decodeURIComponent(m[2]!)) : null;
      if (path && existsSync(path) && !new Headers(init?.headers).get("Range")) downloads.push(relative(root, path));
      return serveHubFile(root, path, init);
    }) as typeof globalThis.fetch;
    const cacheDir = join(root, "hub-cache");
    const source = await openActivationSource("hf:org/cache", { hub: { cacheDir, fetch, progress: false }, seed: 0 });
    expect({ d: source.d, totalRows: source.totalRows }).toEqual({ d: 6, totalRows: 40 });
    expect(downloads.sort()).toEqual(["cache/cache_activations_runner_cfg.json", "cache/data/train-00000-of-00001.parquet"]);
    expect((source as DatasetSource).activations.provenance()).toMatchObject({ hook_name: HOOK, context_size: 4, model_name: "tiny" });
    const saved = await openActivationSource("hf:org/saved", { hub: { cacheDir, fetch, progress: false }, seed: 0 });
    expect(saved.describe()).toMatchObject({ kind: "arrow", column: HOOK, shape: [4, 3], vectors: 24 });
    expect(peekWholeRows(saved, 24).slice().sort()).toEqual(values.slice().sort());
    const offline = (() => { throw new TypeError("fetch failed"); }) as unknown as typeof globalThis.fetch;
    expect((await openActivationSource("hf:org/cache", { hub: { cacheDir, fetch: offline, progress: false } })).totalRows).toBe(40);
    await expect(openActivationSource("hf:org/other", { hub: { cacheDir, fetch: offline, progress: false } }))
      .rejects.toThrow(/cannot reach the Hugging Face hub to download dataset org\/other@main .*put the dataset's .parquet files, or its .arrow files with state.json/);
  });
});
