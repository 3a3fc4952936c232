/**
 * Exporting activation stores as SAELens activation caches: harvested on a tiny random
 * GPT-NeoX, exported, and read back by saekit's Arrow reader and by Apache Arrow's own
 * library (an independent reader), or as Parquet by saekit's Parquet reader and by
 * hyparquet's: every vector and token in order, the features `datasets` needs to load the
 * folder, resuming a killed export, and refusing what would overwrite.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../../src/core/dtype.js";
import { ArrowActivations } from "../../src/data/arrow-activations.js";
import { openActivationSource } from "../../src/data/open.js";
import { ParquetActivations } from "../../src/data/parquet-activations.js";
import { exportSaelensCache } from "../../src/data/saelens-cache.js";
import { readManifest, readShardActivations, readShardTargets, readShardTokens, type StoreManifest } from "../../src/data/store.js";
import { openContexts } from "../../src/lm/dataset.js";
import { harvest, type HarvestOptions } from "../../src/lm/harvest.js";
import { loadModel } from "../../src/lm/load.js";
import { readEveryVector, tempDir } from "../helpers.js";
import { writeTinyNeox } from "../lm/fixtures.js";

const dir = tempDir();
const textPath = join(dir, "stories.txt");
writeFileSync(textPath, Array.from({ length: 40 }, (_, i) =>
  `Once upon a time a bird number ${i} sang in a tree, and ${i % 4} friends came to listen.`).join("<|endoftext|>"));
const HOOK = "blocks.1.hook_resid_post";

/** Every vector of a cache (Arrow, or Parquet), in order, and each vector's token. */
function readCache(out: string, column?: string): { values: Float32Array; tokens: Int32Array; a: ArrowActivations } {
  const a = ArrowActivations.open(out, column);
  return { ...readEveryVector(a), a };
}

async function readParquetCache(out: string, column?: string): Promise<{ values: Float32Array; tokens: Int32Array; a: ParquetActivations }> {
  const a = await ParquetActivations.open(out, column);
  return { ...readEveryVector(a), a };
}

/** The store's rows (or targets), and each row's token, in order. */
function readStore(store: string, m: StoreManifest, which: "activations" | "targets" = "activations"): { values: Float32Array; tokens: Int32Array } {
  const values = new Float32Array(m.tokens * m.d);
  const tokens = new Int32Array(m.tokens);
  let row = 0;
  m.shards.forEach((s, i) => {
    values.set(which === "activations" ? readShardActivations(store, m, i) : readShardTargets(store, m, i), row * m.d);
    const contexts = readShardTokens(store, m, i);
    for (let c = 0; c < s.contexts; c++) {
      tokens.set(contexts.subarray(c * m.ctx + m.ctx - m.rows_per_context, (c + 1) * m.ctx), row + c * m.rows_per_context);
    }
    row += s.rows;
  });
  return { values, tokens };
}

describe("exporting a store as a SAELens activation cache", async () => {
  const loaded = await loadModel(writeTinyNeox(join(dir, "model")));
  const ctx = 8;
  const contexts = () => openContexts(loaded, textPath, { ctx, prependBos: true });
  const harvestTo = async (name: string, extra: Partial<HarvestOptions> = {}) => {
    const out = join(dir, name);
    await harvest(loaded.model, contexts().contexts, {
      outDir: out, hook: HOOK, tokens: 23 * ctx, ctx, batch: 4, prependBos: true, shardTokens: 6 * ctx,
      modelName: "tiny-neox", dataset: { spec: textPath, fingerprint: contexts().fingerprint }, progress: false, ...extra,
    });
    return { store: out, m: readManifest(out) };
  };
  const plain = await harvestTo("store");

  it("holds every context's vectors and tokens in order, in the layout datasets saves and SAELens reads", async () => {
    const out = join(dir, "cache");
    const r = exportSaelensCache(plain.store, out, { batchContexts: 4, progress: false });
    expect(r).toMatchObject({ column: HOOK, shape: [ctx, plain.m.d], dtype: "float32", contexts: 23, tokens: 23 * ctx, complete: true });
    // One data file per store shard (6 + 6 + 6 + 5 contexts), listed in state.json.
    expect(readdirSync(out).sort()).toEqual(["cache_activations_runner_cfg.json", "data-00000-of-00004.arrow", "data-00001-of-00004.arrow",
      "data-00002-of-00004.arrow", "data-00003-of-00004.arrow", "dataset_info.json", "state.json"]);
    const state = JSON.parse(readFileSync(join(out, "state.json"), "utf8"));
    expect(state._data_files).toEqual([0, 1, 2, 3].map((i) => ({ filename: `data-0000${i}-of-00004.arrow` })));
    expect(state._fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const features = {
      [HOOK]: { shape: [ctx, plain.m.d], dtype: "float32", _type: "Array2D" },
      token_ids: { feature: { dtype: "int32", _type: "Value" }, length: ctx, _type: "Sequence" },
    };
    expect(JSON.parse(readFileSync(join(out, "dataset_info.json"), "utf8")).features).toEqual(features);

    const want = readStore(plain.store, plain.m);
    const got = readCache(out);
    expect(got.values).toEqual(want.values);
    expect(got.tokens).toEqual(want.tokens);
    expect(got.tokens[0]).toBe(0); // each context's BOS
    expect(got.a.provenance()).toEqual({ hook_name: HOOK, context_size: ctx, model_name: "tiny-neox", dataset_path: textPath, prepend_bos: true });

    // Apache Arrow's reader: the extension type datasets registers, the features it reads back, the values.
    const table = tableFromIPC(readFileSync(join(out, "data-00003-of-00004.arrow")));
    expect(table.numRows).toBe(5);
    expect(table.batches.map((b) => b.numRows)).toEqual([4, 1]);
    expect(JSON.parse(table.schema.metadata.get("huggingface")!)).toEqual({ info: { features } });
    const acts = table.schema.fields[0]!;
    expect([acts.name, String(acts.type), String(table.schema.fields[1]!.type)]).toEqual([HOOK, "List<List<Float32>>", "FixedSizeList[8]<Int32>"]);
    expect(acts.metadata.get("ARROW:extension:name")).toBe("datasets.features.features.Array2DExtensionType");
    expect(JSON.parse(acts.metadata.get("ARROW:extension:metadata")!)).toEqual([[ctx, plain.m.d], "float32"]);
    const lastContext = table.getChild(HOOK)!.get(4)!;
    const d = plain.m.d;
    const lastRow = (23 * ctx - 1) * d;
    expect([...lastContext.get(ctx - 1)!]).toEqual([...want.values.subarray(lastRow, lastRow + d)]);
    expect([...table.getChild("token_ids")!.get(4)!]).toEqual([...want.tokens.subarray(22 * ctx)]);

    const cfg = JSON.parse(readFileSync(join(out, "cache_activations_runner_cfg.json"), "utf8"));
    expect(cfg).toMatchObject({ model_name: "tiny-neox", hook_name: HOOK, d_in: d, context_size: ctx, seqpos_slice: [null], prepend_bos: true, training_tokens: 23 * ctx, dtype: "float32" });
    // And saekit trains on it as on any SAELens cache.
    expect((await openActivationSource(out)).d).toBe(d);
  });

  it("keeps an --exclude-bos store's ctx - 1 rows per context, and float16 as float16", async () => {
    const { store, m } = await harvestTo("store-f16", { excludeBos: true, dtype: "F16", tokens: 10 * (ctx - 1), shardTokens: 4 * (ctx - 1) });
    const out = join(dir, "cache-f16");
    expect(exportSaelensCache(store, out, { progress: false })).toMatchObject({ shape: [ctx - 1, m.d], dtype: "float16", contexts: 10 });
    const want = readStore(store, m);
    const got = readCache(out);
    expect(got.a.dims).toEqual([ctx - 1, m.d]);
    expect(got.values).toEqual(want.values);
    expect(got.tokens).toEqual(want.tokens);
    // Each context starts at its second position: the BOS (0) is not there.
    expect(got.tokens[0]).toBe(readShardTokens(store, m, 0)[1]);
    expect(got.tokens[0]).not.toBe(0);
    const table = tableFromIPC(readFileSync(join(out, "data-00000-of-00003.arrow")));
    expect(String(table.schema.fields[0]!.type)).toBe("List<List<Float16>>");
    const bits = table.getChild(HOOK)!.data[0]!.children[0]!.children[0]!.values as Uint16Array;
    expect(Float32Array.from(bits, f16BitsToF32)).toEqual(want.values.subarray(0, 4 * (ctx - 1) * m.d));
    expect(bits[5]).toBe(f32ToF16Bits(want.values[5]!));
    expect(JSON.parse(readFileSync(join(out, "cache_activations_runner_cfg.json"), "utf8")).seqpos_slice).toEqual([1, null]);
  });

  it("writes a bfloat16 store as float32, exactly", async () => {
    const { store, m } = await harvestTo("store-bf16", { dtype: "BF16", tokens: 5 * ctx });
    const out = join(dir, "cache-bf16");
    expect(exportSaelensCache(store, out, { progress: false }).dtype).toBe("float32");
    expect(readCache(out).values).toEqual(readStore(store, m).values);
  });

  it("writes a transcoder store's targets as a second column named after the target hook", async () => {
    const input = "blocks.0.hook_resid_post";
    const { store, m } = await harvestTo("store-pairs", { hook: input, targetHook: HOOK, tokens: 7 * ctx });
    const out = join(dir, "cache-pairs");
    exportSaelensCache(store, out, { progress: false });
    expect(() => ArrowActivations.open(out)).toThrow(/several columns of float vectors/);
    expect(readCache(out, input).values).toEqual(readStore(store, m).values);
    expect(readCache(out, HOOK).values).toEqual(readStore(store, m, "targets").values);
    expect(Object.keys(JSON.parse(readFileSync(join(out, "dataset_info.json"), "utf8")).features)).toEqual([input, HOOK, "token_ids"]);
  });

  it("a killed export rerun finishes with the same files as one clean run", () => {
    const clean = join(dir, "cache-clean");
    exportSaelensCache(plain.store, clean, { progress: false });
    const resumed = join(dir, "cache-resumed");
    const partial = exportSaelensCache(plain.store, resumed, { progress: false, stopAfterFiles: 2 });
    expect(partial.complete).toBe(false);
    expect(existsSync(join(resumed, "state.json"))).toBe(false);
    expect(() => ArrowActivations.open(resumed)).toThrow(/an unfinished export; rerun it to finish/);
    // A temporary that a kill mid-write leaves behind is cleared.
    writeFileSync(join(resumed, ".data-00002-of-00004.arrow.tmp-999999-1-0"), "torn");
    expect(exportSaelensCache(plain.store, resumed, { progress: false }).complete).toBe(true);
    const files = readdirSync(clean).sort();
    expect(readdirSync(resumed).sort()).toEqual(files);
    for (const f of files.filter((f) => f !== "cache_activations_runner_cfg.json")) {
      expect(readFileSync(join(resumed, f)).equals(readFileSync(join(clean, f))), f).toBe(true);
    }
  });

  it("writes the Parquet files push_to_hub uploads, which saekit and hyparquet read back to the store's vectors and tokens", async () => {
    const out = join(dir, "cache-parquet");
    const r = exportSaelensCache(plain.store, out, { format: "parquet", batchContexts: 4, progress: false });
    expect(r.files.map((f) => relative(out, f))).toEqual([0, 1, 2, 3].map((i) => `data/train-0000${i}-of-00004.parquet`));
    expect(readdirSync(out).sort()).toEqual(["cache_activations_runner_cfg.json", "data"]);
    const want = readStore(plain.store, plain.m);
    const got = await readParquetCache(out);
    expect({ column: got.a.column, dims: got.a.dims, vectors: got.a.vectors }).toEqual({ column: HOOK, dims: [ctx, plain.m.d], vectors: plain.m.tokens });
    // Row groups of 4 contexts: each shard of 6 (the last of 5) in two.
    expect(got.a.chunks().map((c) => c.rows)).toEqual([4, 2, 4, 2, 4, 2, 4, 1]);
    expect(got.values).toEqual(want.values);
    expect(got.tokens).toEqual(want.tokens);
    // hyparquet, an independent reader: the same rows, and the features datasets restores the Array2D from.
    const first = new Uint8Array(readFileSync(r.files[0]!)).buffer;
    const rows = await parquetReadObjects({ file: first }) as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(6);
    expect(Float32Array.from(rows.flatMap((row) => (row[HOOK] as number[][]).flat()))).toEqual(want.values.subarray(0, 6 * ctx * plain.m.d));
    expect(rows.flatMap((row) => row.token_ids as number[])).toEqual(Array.from(want.tokens.subarray(0, 6 * ctx)));
    const kv = parquetMetadata(first).key_value_metadata!.find((e) => e.key === "huggingface")!;
    expect(JSON.parse(kv.value!).info.features).toEqual({
      [HOOK]: { shape: [ctx, plain.m.d], dtype: "float32", _type: "Array2D" },
      token_ids: { feature: { dtype: "int32", _type: "Value" }, length: ctx, _type: "Sequence" },
    });
    // The Arrow schema pyarrow stores beside the Parquet one, naming the Array2D extension type
    // on the nullable lists it restores it onto: without it datasets reads List(List(float32)).
    const meta = parquetMetadata(first);
    const stored = meta.key_value_metadata!.find((e) => e.key === "ARROW:schema")!;
    const schema = tableFromIPC([Buffer.from(stored.value!, "base64"), new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0])]).schema;
    expect(schema.fields.map((f) => [f.name, String(f.type), f.nullable])).toEqual([
      [HOOK, "List<List<Float32>>", true], ["token_ids", `FixedSizeList[${ctx}]<Int32>`, true]]);
    expect(Object.fromEntries(schema.fields[0]!.metadata)).toEqual({
      "ARROW:extension:name": "datasets.features.features.Array2DExtensionType",
      "ARROW:extension:metadata": JSON.stringify([[ctx, plain.m.d], "float32"]),
    });
    expect(meta.schema.slice(1).map((e) => e.repetition_type)).toEqual(["OPTIONAL", "REPEATED", "OPTIONAL", "REPEATED", "OPTIONAL", "OPTIONAL", "REPEATED", "OPTIONAL"]);
    expect(JSON.parse(readFileSync(join(out, "cache_activations_runner_cfg.json"), "utf8"))).toMatchObject({ model_name: "tiny-neox", hook_name: HOOK, context_size: ctx });
    expect((await openActivationSource(out)).totalRows).toBe(plain.m.tokens);
  });

  it("writes float16 and a transcoder's targets to Parquet, and a killed Parquet export resumes to the same bytes", async () => {
    const f16 = await harvestTo("store-f16-parquet", { excludeBos: true, dtype: "F16", tokens: 10 * (ctx - 1), shardTokens: 4 * (ctx - 1) });
    const out16 = join(dir, "cache-f16-parquet");
    expect(exportSaelensCache(f16.store, out16, { format: "parquet", progress: false })).toMatchObject({ shape: [ctx - 1, f16.m.d], dtype: "float16" });
    const got16 = await readParquetCache(out16);
    expect(got16.values).toEqual(readStore(f16.store, f16.m).values);
    const rows16 = await parquetReadObjects({ file: new Uint8Array(readFileSync(join(out16, "data", "train-00000-of-00003.parquet"))).buffer }) as Array<Record<string, unknown>>;
    expect(Float32Array.from((rows16[0]![HOOK] as number[][]).flat())).toEqual(got16.values.subarray(0, (ctx - 1) * f16.m.d));

    const input = "blocks.0.hook_resid_post";
    const pairs = await harvestTo("store-pairs-parquet", { hook: input, targetHook: HOOK, tokens: 7 * ctx });
    const outPairs = join(dir, "cache-pairs-parquet");
    exportSaelensCache(pairs.store, outPairs, { format: "parquet", progress: false });
    await expect(ParquetActivations.open(outPairs)).rejects.toThrow(/several columns of float vectors/);
    expect((await readParquetCache(outPairs, input)).values).toEqual(readStore(pairs.store, pairs.m).values);
    expect((await readParquetCache(outPairs, HOOK)).values).toEqual(readStore(pairs.store, pairs.m, "targets").values);

    const clean = join(dir, "cache-parquet-clean");
    exportSaelensCache(plain.store, clean, { format: "parquet", progress: false });
    const resumed = join(dir, "cache-parquet-resumed");
    expect(exportSaelensCache(plain.store, resumed, { format: "parquet", progress: false, stopAfterFiles: 2 }).complete).toBe(false);
    await expect(ParquetActivations.open(resumed)).rejects.toThrow(/an unfinished export; rerun it to finish/);
    // The same store to another format in the same folder is another export.
    expect(() => exportSaelensCache(plain.store, resumed, { progress: false })).toThrow(/unfinished export of another store/);
    expect(exportSaelensCache(plain.store, resumed, { format: "parquet", progress: false }).complete).toBe(true);
    for (const f of readdirSync(join(clean, "data"))) {
      expect(readFileSync(join(resumed, "data", f)).equals(readFileSync(join(clean, "data", f))), f).toBe(true);
    }
    expect(readdirSync(join(resumed, "data")).sort()).toEqual(readdirSync(join(clean, "data")).sort());
  });

  it("refuses to write over anything: a finished cache, a foreign folder, another store's unfinished export, an incomplete store", async () => {
    const done = join(dir, "cache");
    expect(() => exportSaelensCache(plain.store, done)).toThrow(/already holds a saved dataset/);
    const foreign = join(dir, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "notes.txt"), "mine");
    expect(() => exportSaelensCache(plain.store, foreign)).toThrow(/not empty \(notes\.txt\)/);
    expect(readFileSync(join(foreign, "notes.txt"), "utf8")).toBe("mine");

    const other = await harvestTo("store-other", { tokens: 12 * ctx });
    const half = join(dir, "cache-half");
    exportSaelensCache(plain.store, half, { progress: false, stopAfterFiles: 1 });
    expect(() => exportSaelensCache(other.store, half)).toThrow(/unfinished export of another store/);

    const stopped = await harvestTo("store-stopped", { stopAfterShards: 1 });
    expect(() => exportSaelensCache(stopped.store, join(dir, "cache-stopped"))).toThrow(/the store is incomplete/);
    rmSync(half, { recursive: true });
  });
});
