/**
 * An activation store on disk: what `saekit harvest` writes and `saekit train --data DIR`
 * reads. A folder of shards `shard-00000.safetensors`, each holding
 *   activations  [rows, d]   F32, F16 or BF16
 *   targets      [rows, d]   the same positions at a second hook (transcoder stores only)
 *   tokens       [contexts, ctx] I32, the token contexts the rows came from
 * and `manifest.json` describing the store. Shards are written atomically and the manifest
 * is rewritten (atomically) after each, so a store is always a consistent prefix of the
 * full harvest; a rerun resumes after the last complete shard.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { writeJsonAtomic } from "../core/atomic.js";
import type { FloatDType } from "../core/dtype.js";
import { SafetensorsFile, writeSafetensors } from "../core/safetensors.js";
import { subfolders } from "../util/folders.js";
import { datasetFiles } from "./text.js";

export const MANIFEST_FILE = "manifest.json";
export const STORE_FORMAT = "saekit-activations-1";

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  model: string;
  hook: string;
  /** The hook whose activations are stored as `targets` (a transcoder's output), if any. */
  target_hook?: string;
  d: number;
  ctx: number;
  dtype: FloatDType;
  prepend_bos: boolean;
  /** Position 0 (BOS) left out of the stored rows. */
  exclude_bos: boolean;
  rows_per_context: number;
  contexts_per_shard: number;
  target_contexts: number;
  dataset: { spec: string; fingerprint: string };
  /**
   * The model's special tokens (BOS, EOS, the tokenizer's special ones), for training that
   * leaves them out (`train --exclude-tokens special`); absent in stores from before it was recorded.
   */
  special_tokens?: number[];
  /** "bf16" when the model ran on bfloat16 weights (--model-dtype bf16); absent: float32. */
  model_weights?: "bf16";
  /** "medium" when its matrix products ran on bfloat16-rounded inputs (--matmul-precision); absent: float32. */
  matmul_precision?: "medium";
  shards: Array<{ file: string; rows: number; contexts: number }>;
  /** Rows stored (= tokens of activations). */
  tokens: number;
  complete: boolean;
}

export function shardFileName(i: number): string {
  return `shard-${String(i).padStart(5, "0")}.safetensors`;
}

export function isStore(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE)) && statSync(dir).isDirectory();
}

/**
 * The activation stores directly inside a folder that is not one itself — what a harvest of
 * several hooks writes, one per hook — in natural order (blocks.2 before blocks.10).
 */
export function storesIn(dir: string): string[] {
  return isStore(dir) ? [] : subfolders(dir, isStore);
}

/** Contexts the store's written shards hold: where a rerun, or held-out text, starts. */
export function storedContexts(m: StoreManifest): number {
  return m.shards.reduce((a, s) => a + s.contexts, 0);
}

export function readManifest(dir: string): StoreManifest {
  const path = join(dir, MANIFEST_FILE);
  let m: StoreManifest;
  try {
    m = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: cannot read the store manifest (${(err as Error).message})`);
  }
  if (m?.format !== STORE_FORMAT) throw new Error(`${path}: not a saekit activation store (format ${JSON.stringify(m?.format)})`);
  if (!Number.isSafeInteger(m.d) || m.d < 1 || !Array.isArray(m.shards)) throw new Error(`${path}: malformed manifest`);
  for (const s of m.shards) {
    if (!/^shard-\d{5}\.safetensors$/.test(s.file)) throw new Error(`${path}: bad shard name ${JSON.stringify(s.file)}`);
  }
  return m;
}

export function writeManifest(dir: string, m: StoreManifest): void {
  writeJsonAtomic(join(dir, MANIFEST_FILE), m);
}

export function writeShard(dir: string, index: number, activations: Float32Array, d: number, dtype: FloatDType,
  tokens: Int32Array, ctx: number, targets?: Float32Array): string {
  const file = shardFileName(index);
  const rows = activations.length / d;
  writeSafetensors(join(dir, file), {
    activations: { dtype, shape: [rows, d], data: activations },
    ...(targets ? { targets: { dtype, shape: [rows, d], data: targets } } : {}),
    tokens: { dtype: "I32", shape: [tokens.length / ctx, ctx], data: tokens },
  }, { format: "pt" });
  return file;
}

/**
 * One shard's activations [rows, d] as float32 (checked against the manifest), read into
 * `into` (rows x d floats, e.g. part of a mixing buffer) when given.
 */
export function readShardActivations(dir: string, m: StoreManifest, index: number, into?: Float32Array): Float32Array {
  return readShardRows(dir, m, index, "activations", into);
}

/** One shard's targets [rows, d] (a store harvested with a target hook). */
export function readShardTargets(dir: string, m: StoreManifest, index: number): Float32Array {
  if (!m.target_hook) throw new Error(`${dir}: the store has no targets (harvested without a target hook)`);
  return readShardRows(dir, m, index, "targets");
}

function readShardRows(dir: string, m: StoreManifest, index: number, name: "activations" | "targets", into?: Float32Array): Float32Array {
  const shard = m.shards[index]!;
  const path = join(dir, shard.file);
  const file = SafetensorsFile.open(path);
  if (!file.has(name)) throw new Error(`${path}: no tensor "${name}"`);
  const shape = file.shape(name);
  if (shape.length !== 2 || shape[0] !== shard.rows || shape[1] !== m.d) {
    throw new Error(`${path}: ${name} are [${shape.join(", ")}], the manifest says [${shard.rows}, ${m.d}]`);
  }
  return file.readInto(name, into ?? new Float32Array(shard.rows * m.d));
}

/** One shard's token contexts [contexts, ctx]. */
export function readShardTokens(dir: string, m: StoreManifest, index: number): Int32Array {
  const shard = m.shards[index]!;
  return Int32Array.from(SafetensorsFile.open(join(dir, shard.file)).readInts("tokens").data);
}

/**
 * The token at each of a shard's rows [rows]: its contexts' positions, less those the
 * harvest left out (each context's first, with --exclude-bos).
 */
export function readShardRowTokens(dir: string, m: StoreManifest, index: number): Int32Array {
  const contexts = readShardTokens(dir, m, index);
  const { rows, contexts: count } = m.shards[index]!;
  const per = m.rows_per_context;
  const first = m.ctx - per;
  if (rows !== count * per || contexts.length !== count * m.ctx) {
    throw new Error(`${dir}: shard ${index}'s tokens do not match its ${rows} rows; cannot tell which tokens they are`);
  }
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = contexts[Math.floor(r / per) * m.ctx + first + (r % per)]!;
  return out;
}

/**
 * A dataset's identity for resume checks: its size and the SHA-256 of its first and last
 * MiB (cheap for huge files, and any edit near either end or to the length shows).
 */
export function datasetFingerprint(path: string): string {
  if (!existsSync(path)) return `spec:${path}`;
  if (statSync(path).isDirectory()) {
    const hash = createHash("sha256");
    for (const f of datasetFiles(path)) hash.update(`${basename(f)}:${datasetFingerprint(f)};`);
    return hash.digest("hex");
  }
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const hash = createHash("sha256").update(String(size));
    const chunk = Buffer.alloc(Math.min(size, 1 << 20));
    for (const at of [0, Math.max(0, size - chunk.length)]) {
      const n = readSync(fd, chunk, 0, chunk.length, at);
      hash.update(chunk.subarray(0, n));
    }
    return hash.digest("hex");
  } finally {
    closeSync(fd);
  }
}
