/**
 * Exporting an activation store as SAELens' activation cache, so Python can train on what
 * saekit harvested: a Hugging Face dataset saved to disk, as `CacheActivationsRunner` leaves
 * it and `datasets.load_from_disk` (SAELens' `cached_activations_path`) reads it:
 *
 *   data-00000-of-0000N.arrow   Arrow IPC streams, one per store shard
 *   dataset_info.json           the features
 *   state.json                  the data files, in order (written last: its presence means done)
 *   cache_activations_runner_cfg.json   model, hook, context size, BOS setting (as SAELens uploads beside a cache)
 *
 * One row per context: the hook's activations in a column named after the hook, an
 * Array2D(context_size, d_in) (stored as list<list<float>> with datasets' extension
 * metadata), and `token_ids`, a Sequence(int32, length=context_size). A store harvested
 * with --exclude-bos has ctx - 1 rows per context; so does its cache, as SAELens'
 * `seqpos_slice=(1, None)` makes it. A transcoder's store adds its targets as a second
 * Array2D column named after the target hook.
 *
 * bfloat16 stores are written as float32 (exact): Arrow and `datasets` have no bfloat16.
 * Each data file is written atomically, so a killed export rerun skips the files it finished.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ArrowField } from "../core/arrow-ipc.js";
import { arrowStream, type DenseColumn, schemaMessage } from "../core/arrow-ipc-writer.js";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { encodeFloats } from "../core/dtype.js";
import { type ParquetArrayColumnSpec, type ParquetRowGroupData, parquetFile } from "../core/parquet-writer.js";
import { claimFolders, LOCK_FILE } from "../util/folder-lock.js";
import { ProgressBar } from "../util/progress.js";
import { readManifest, readShardActivations, readShardRowTokens, readShardTargets, type StoreManifest } from "./store.js";
import { CACHE_RUNNER_CONFIG, TOKEN_IDS_COLUMN, UNFINISHED_EXPORT_FILE } from "./arrow-activations.js";

export interface ExportCacheOptions {
  /**
   * "arrow" (default): a dataset saved to disk, for datasets.load_from_disk; "parquet": the
   * files push_to_hub uploads (data/train-NNNNN-of-NNNNN.parquet), for the hub.
   */
  format?: CacheFormat;
  /** Contexts per Arrow record batch or Parquet row group (default 1000, as `datasets` writes; fewer where a batch's values would pass 2^31). */
  batchContexts?: number;
  progress?: boolean;
  /** Stop after writing this many data files, leaving the export unfinished (what a kill does; for tests). */
  stopAfterFiles?: number;
}

export interface ExportedCache {
  out: string;
  column: string;
  /** One row's shape: [context_size, d_in]. */
  shape: [number, number];
  dtype: "float32" | "float16";
  /** Dataset rows (contexts) and activation vectors (tokens). */
  contexts: number;
  tokens: number;
  files: string[];
  /** False only when stopped early (`stopAfterFiles`): no state.json yet, a rerun finishes it. */
  complete: boolean;
}

/**
 * Remembers, while an export is unfinished, which store it is of: a rerun continues only the
 * same export, and readers refuse the folder until it is done.
 */
const PROGRESS_FILE = UNFINISHED_EXPORT_FILE;
/** What datasets' ArrowWriter writes per record batch by default. */
const DEFAULT_BATCH_CONTEXTS = 1000;

export type CacheFormat = "arrow" | "parquet";
export const CACHE_FORMATS: readonly CacheFormat[] = ["arrow", "parquet"];

/** Writes the store at `storeDir` as a SAELens activation cache in `outDir`; a rerun after a kill continues it. */
export function exportSaelensCache(storeDir: string, outDir: string, o: ExportCacheOptions = {}): ExportedCache {
  const format = o.format ?? "arrow";
  if (!CACHE_FORMATS.includes(format)) throw new Error(`unknown cache format "${format}" (${CACHE_FORMATS.join(", ")})`);
  const m = readManifest(storeDir);
  if (!m.complete) throw new Error(`${storeDir}: the store is incomplete (its harvest stopped early); rerun the same saekit harvest to finish it, then export`);
  if (m.shards.length === 0) throw new Error(`${storeDir}: the store has no shards`);
  const plan = exportPlan(storeDir, m, format);
  const release = claimFolders([outDir], "exporting a cache");
  try {
    checkOutFolder(outDir, plan.identity);
    writeJsonAtomic(join(outDir, PROGRESS_FILE), plan.identity);
    const files = m.shards.map((_, i) => (format === "arrow"
      ? `data-${pad5(i)}-of-${pad5(m.shards.length)}.arrow`
      : join("data", `train-${pad5(i)}-of-${pad5(m.shards.length)}.parquet`)));
    const dtype = plan.dtype;
    const result = (complete: boolean): ExportedCache => ({
      out: outDir, column: m.hook, shape: [m.rows_per_context, m.d], dtype, contexts: m.shards.reduce((a, s) => a + s.contexts, 0),
      tokens: m.tokens, files: files.map((f) => join(outDir, f)), complete,
    });
    const bar = new ProgressBar(m.tokens, "export", o.progress !== false && process.stderr.isTTY === true);
    let done = 0;
    let written = 0;
    const perBatch = batchContexts(m, o.batchContexts);
    for (const [i, shard] of m.shards.entries()) {
      const path = join(outDir, files[i]!);
      // Written atomically: present means complete, and the progress file says it is this export's.
      if (!existsSync(path)) {
        if (written === o.stopAfterFiles) return result(false);
        const batches = shardBatches(storeDir, m, i, plan, perBatch);
        writeFileAtomic(path, format === "arrow"
          ? arrowStream(plan.fields, plan.schemaMetadata, batches)
          : parquetFile(parquetColumns(plan, m), rowGroups(batches), parquetKeyValues(plan)));
        written++;
      }
      done += shard.rows;
      bar.update(done);
    }
    bar.finish();
    writeJsonAtomic(join(outDir, CACHE_RUNNER_CONFIG), runnerConfig(storeDir, outDir, m, dtype));
    // A Parquet cache is done once its files are (the progress file goes last); a saved dataset once its state.json is.
    if (format === "parquet") {
      rmSync(join(outDir, PROGRESS_FILE), { force: true });
      return result(true);
    }
    writeJsonAtomic(join(outDir, "dataset_info.json"), { citation: "", description: "", features: plan.features, homepage: "", license: "" });
    writeJsonAtomic(join(outDir, "state.json"), {
      _data_files: files.map((filename) => ({ filename })),
      _fingerprint: createHash("sha256").update(JSON.stringify(plan.identity)).digest("hex").slice(0, 16),
      _format_columns: null,
      _format_kwargs: {},
      _format_type: null,
      _output_all_columns: false,
      _split: null,
    });
    rmSync(join(outDir, PROGRESS_FILE), { force: true });
    return result(true);
  } finally {
    release();
  }
}

interface ExportPlan {
  identity: Record<string, unknown>;
  dtype: "float32" | "float16";
  /** Activation columns (the hook's, then the target hook's), then token_ids. */
  fields: ArrowField[];
  columns: Array<"activations" | "targets">;
  features: Record<string, unknown>;
  schemaMetadata: Record<string, string>;
}

function exportPlan(storeDir: string, m: StoreManifest, format: CacheFormat): ExportPlan {
  const dtype = m.dtype === "F16" ? "float16" : "float32";
  const rows = m.rows_per_context;
  const columns: ExportPlan["columns"] = m.target_hook ? ["activations", "targets"] : ["activations"];
  const names = columns.map((c) => (c === "activations" ? m.hook : m.target_hook!));
  if (new Set([...names, TOKEN_IDS_COLUMN]).size !== names.length + 1) throw new Error(`${storeDir}: hook names ${names.join(", ")} clash with each other or with ${TOKEN_IDS_COLUMN}`);
  const features: Record<string, unknown> = {};
  const fields: ArrowField[] = names.map((name) => {
    features[name] = { shape: [rows, m.d], dtype, _type: "Array2D" };
    // datasets stores an ArrayND as nested variable lists and names its extension type in the field's metadata.
    return field(name, { name: "List" }, [field("item", { name: "List" }, [field("item", { name: "FloatingPoint", bitWidth: dtype === "float16" ? 16 : 32 })])], {
      "ARROW:extension:name": "datasets.features.features.Array2DExtensionType",
      "ARROW:extension:metadata": JSON.stringify([[rows, m.d], dtype]),
    });
  });
  features[TOKEN_IDS_COLUMN] = { feature: { dtype: "int32", _type: "Value" }, length: rows, _type: "Sequence" };
  fields.push(field(TOKEN_IDS_COLUMN, { name: "FixedSizeList", listSize: rows }, [field("item", { name: "Int", bitWidth: 32, signed: true })]));
  const identity = {
    store: resolve(storeDir), model: m.model, hook: m.hook, target_hook: m.target_hook ?? null,
    dataset: m.dataset.fingerprint, tokens: m.tokens, shards: m.shards.length, dtype, format,
  };
  return { identity, dtype, fields, columns, features, schemaMetadata: { huggingface: JSON.stringify({ info: { features } }) } };
}

function field(name: string, type: ArrowField["type"], children: ArrowField[] = [], metadata: Record<string, string> = {}): ArrowField {
  return { name, type, nullable: true, children, metadata, dictionary: false };
}

/** Contexts per record batch: the option, kept under 2^31 values per batch (List offsets are int32). */
function batchContexts(m: StoreManifest, wanted = DEFAULT_BATCH_CONTEXTS): number {
  if (!Number.isSafeInteger(wanted) || wanted < 1) throw new Error(`contexts per record batch must be a positive integer, not ${wanted}`);
  return Math.max(1, Math.min(wanted, Math.floor(0x7fffffff / (m.rows_per_context * m.d))));
}

/** A shard's record batches: its contexts' activations (and targets) and tokens, `perBatch` contexts at a time. */
function* shardBatches(storeDir: string, m: StoreManifest, index: number, plan: ExportPlan, perBatch: number): Generator<{ rows: number; columns: DenseColumn[] }> {
  const rows = m.rows_per_context;
  const values = plan.columns.map((c) => (c === "activations" ? readShardActivations(storeDir, m, index) : readShardTargets(storeDir, m, index)));
  // Each stored row's token (a context's positions, less BOS with --exclude-bos): token_ids lines up with the rows.
  const tokens = readShardRowTokens(storeDir, m, index);
  const dtype = plan.dtype === "float16" ? "F16" : "F32";
  const contexts = m.shards[index]!.contexts;
  for (let first = 0; first < contexts; first += perBatch) {
    const n = Math.min(perBatch, contexts - first);
    const ids = tokens.subarray(first * rows, (first + n) * rows);
    const columns: DenseColumn[] = plan.columns.map((_, j) => ({
      field: plan.fields[j]!,
      dims: [rows, m.d],
      values: encodeFloats(values[j]!.subarray(first * rows * m.d, (first + n) * rows * m.d), dtype, false),
    }));
    columns.push({ field: plan.fields[plan.fields.length - 1]!, dims: [rows], values: new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength) });
    yield { rows: n, columns };
  }
}

/**
 * A Parquet cache's footer metadata: the features datasets reads ("huggingface"), and the
 * Arrow schema pyarrow keeps beside the Parquet one ("ARROW:schema", an IPC Schema message in
 * base64), which carries the Array2D extension type: without it pyarrow reads plain nested
 * lists, and datasets, finding them unlike its Array2D, drops the feature for List(List(...)).
 */
function parquetKeyValues(plan: ExportPlan): Record<string, string> {
  return { ...plan.schemaMetadata, "ARROW:schema": Buffer.from(schemaMessage(plan.fields, plan.schemaMetadata)).toString("base64") };
}

/** The plan's columns as Parquet writes them: each Arrow field's name and leaf type, and its rows' shape. */
function parquetColumns(plan: ExportPlan, m: StoreManifest): ParquetArrayColumnSpec[] {
  return plan.fields.map((f, j) => {
    let leaf = f;
    while (leaf.children.length > 0) leaf = leaf.children[0]!;
    const dims = j < plan.columns.length ? [m.rows_per_context, m.d] : [m.rows_per_context];
    return { name: f.name, leaf: leaf.type.name === "Int" ? "INT32" : leaf.type.bitWidth === 16 ? "FLOAT16" : "FLOAT", dims };
  });
}

/** Record batches as row groups: the same rows, each column's values as they are. */
function* rowGroups(batches: Iterable<{ rows: number; columns: DenseColumn[] }>): Generator<ParquetRowGroupData> {
  for (const b of batches) yield { rows: b.rows, values: b.columns.map((c) => c.values) };
}

/** The fields of SAELens' CacheActivationsRunnerConfig that describe this cache, with saekit's store beside them. */
function runnerConfig(storeDir: string, outDir: string, m: StoreManifest, dtype: string): Record<string, unknown> {
  return {
    model_name: m.model,
    hook_name: m.hook,
    d_in: m.d,
    context_size: m.ctx,
    seqpos_slice: m.exclude_bos ? [1, null] : [null],
    prepend_bos: m.prepend_bos,
    training_tokens: m.tokens,
    dataset_path: m.dataset.spec,
    dtype,
    shuffle: false,
    new_cached_activations_path: outDir,
    saekit: { store: resolve(storeDir), ...(m.target_hook ? { target_hook: m.target_hook } : {}) },
  };
}

/**
 * An export writes into an empty folder, or continues its own unfinished export there (the
 * progress file names the same store); anything else in it is refused, never overwritten.
 */
function checkOutFolder(outDir: string, identity: Record<string, unknown>): void {
  const entries = readdirSync(outDir).filter((f) => f !== LOCK_FILE);
  if (entries.includes("state.json")) throw new Error(`${outDir}: already holds a saved dataset (state.json); choose another folder or remove it`);
  const progressPath = join(outDir, PROGRESS_FILE);
  if (existsSync(progressPath)) {
    let earlier: unknown;
    try {
      earlier = JSON.parse(readFileSync(progressPath, "utf8"));
    } catch {
      earlier = null;
    }
    if (JSON.stringify(earlier) !== JSON.stringify(identity)) throw new Error(`${outDir}: holds an unfinished export of another store, or to another format (${PROGRESS_FILE}); choose another folder or remove it`);
    return;
  }
  if (entries.length > 0) throw new Error(`${outDir}: not empty (${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", ..." : ""}); an export writes into an empty folder`);
}

function pad5(i: number): string {
  return String(i).padStart(5, "0");
}
