/**
 * `saekit harvest`: run a language model over token contexts and store the activations at
 * one hook point (data/store.ts), and optionally at a second, later hook as the targets a
 * transcoder learns to predict (e.g. blocks.3.ln2.hook_normalized -> blocks.3.hook_mlp_out).
 * The forward pass stops right after the last hook, so an early layer costs a fraction of
 * the model. Deterministic: contexts come in a fixed order, shard
 * boundaries fall on whole contexts, and a rerun skips the contexts already stored, so a
 * harvest killed at any point and rerun ends with the same store as one clean run.
 */
import { mkdirSync } from "node:fs";
import type { FloatDType } from "../core/dtype.js";
import { type StoreManifest, STORE_FORMAT, isStore, readManifest, writeManifest, writeShard } from "../data/store.js";
import { ProgressBar } from "../util/progress.js";
import type { LanguageModel } from "./model.js";

export interface HarvestOptions {
  outDir: string;
  hook: string;
  /** A later hook stored alongside as `targets` (a transcoder's output side). */
  targetHook?: string;
  /** Activation rows (tokens) to store; rounded up to whole contexts. */
  tokens: number;
  ctx: number;
  /** Contexts per forward pass. */
  batch?: number;
  dtype?: FloatDType;
  /** Contexts start with BOS (recorded; the contexts themselves carry it). */
  prependBos: boolean;
  /** Leave position 0 out of the stored rows (SAELens' exclude_special_tokens for BOS). */
  excludeBos?: boolean;
  /** Rows per shard (rounded to whole contexts). */
  shardTokens?: number;
  modelName: string;
  dataset: { spec: string; fingerprint: string };
  progress?: boolean;
  /** Stop after writing this many shards in this call (tests simulate a crash with it). */
  stopAfterShards?: number;
}

export async function harvest(model: LanguageModel, contexts: AsyncIterable<Int32Array>, o: HarvestOptions): Promise<StoreManifest> {
  const lastHook = o.targetHook ?? o.hook;
  const d = o.targetHook !== undefined ? model.transcoderWidth(o.hook, o.targetHook) : model.hookWidth(o.hook);
  const excludeBos = o.excludeBos ?? false;
  const rowsPerContext = excludeBos ? o.ctx - 1 : o.ctx;
  if (rowsPerContext < 1) throw new Error(`context size ${o.ctx} leaves no positions to store`);
  const contextsPerShard = Math.max(1, Math.round((o.shardTokens ?? 65536) / rowsPerContext));
  const target = Math.ceil(o.tokens / rowsPerContext);
  const fresh: StoreManifest = {
    format: STORE_FORMAT, model: o.modelName, hook: o.hook, ...(o.targetHook ? { target_hook: o.targetHook } : {}),
    d, ctx: o.ctx, dtype: o.dtype ?? "F32",
    prepend_bos: o.prependBos, exclude_bos: excludeBos, rows_per_context: rowsPerContext,
    contexts_per_shard: contextsPerShard, target_contexts: target, dataset: o.dataset, shards: [], tokens: 0, complete: false,
  };
  mkdirSync(o.outDir, { recursive: true });
  let m = fresh;
  if (isStore(o.outDir)) {
    m = readManifest(o.outDir);
    const same = (["model", "hook", "target_hook", "d", "ctx", "dtype", "prepend_bos", "exclude_bos", "contexts_per_shard"] as const)
      .every((k) => m[k] === fresh[k]) && m.dataset.fingerprint === fresh.dataset.fingerprint;
    if (!same) {
      throw new Error(`${o.outDir} already holds a different activation store (${m.model} ${m.hook} ctx ${m.ctx} ${m.dtype} on ${m.dataset.spec}); use another --out`);
    }
    m.target_contexts = target;
    m.complete = false;
  }
  let done = m.shards.reduce((a, s) => a + s.contexts, 0);
  const bar = new ProgressBar(target * rowsPerContext, `harvest ${o.targetHook ? `${o.hook} -> ${o.targetHook}` : o.hook}`,
    o.progress !== false && process.stderr.isTTY === true);
  const t0 = performance.now();
  let harvested = 0;
  const batch = o.batch ?? 32;
  const shardActs = new Float32Array(contextsPerShard * rowsPerContext * d);
  const shardTargets = o.targetHook ? new Float32Array(contextsPerShard * rowsPerContext * d) : null;
  const shardTokens = new Int32Array(contextsPerShard * o.ctx);
  let inShard = 0;
  let pending: Int32Array[] = [];
  const stored = done; // contexts an earlier run already stored, skipped below
  let skipped = 0;
  let shardsWritten = 0;

  const flushBatch = () => {
    const B = pending.length;
    const tokens = new Int32Array(B * o.ctx);
    pending.forEach((c, b) => tokens.set(c, b * o.ctx));
    // Copies each context's stored positions of a hook's activation into a shard buffer.
    const keep = (into: Float32Array) => (act: Float32Array) => {
      for (let b = 0; b < B; b++) {
        const from = (b * o.ctx + (excludeBos ? 1 : 0)) * d;
        into.set(act.subarray(from, from + rowsPerContext * d), (inShard + b) * rowsPerContext * d);
      }
    };
    model.forward(tokens, B, o.ctx, {
      stopAt: lastHook,
      output: "none",
      hooks: { [o.hook]: keep(shardActs), ...(shardTargets ? { [o.targetHook!]: keep(shardTargets) } : {}) },
    });
    pending.forEach((c, b) => shardTokens.set(c, (inShard + b) * o.ctx));
    inShard += B;
    harvested += B;
    pending = [];
  };
  const flushShard = () => {
    const rows = inShard * rowsPerContext;
    const file = writeShard(o.outDir, m.shards.length, shardActs.subarray(0, rows * d), d, m.dtype,
      shardTokens.subarray(0, inShard * o.ctx), o.ctx, shardTargets?.subarray(0, rows * d));
    m.shards.push({ file, rows, contexts: inShard });
    m.tokens += rows;
    done += inShard;
    inShard = 0;
    shardsWritten++;
    writeManifest(o.outDir, m);
    const rate = (harvested * rowsPerContext) / ((performance.now() - t0) / 1000);
    bar.update(done * rowsPerContext, `${Math.round(rate)} tokens/s`);
  };

  for await (const c of contexts) {
    if (c.length !== o.ctx) throw new Error(`harvest: a context of ${c.length} tokens, expected ${o.ctx}`);
    if (skipped < stored) {
      skipped++;
      continue;
    }
    if (done + inShard + pending.length >= target) break;
    pending.push(c);
    if (pending.length === batch || inShard + pending.length === contextsPerShard) flushBatch();
    if (inShard === contextsPerShard) {
      flushShard();
      if (o.stopAfterShards !== undefined && shardsWritten >= o.stopAfterShards) return m;
    }
  }
  if (pending.length) flushBatch();
  if (inShard) flushShard();
  if (done < target) {
    process.stderr.write(`saekit: the dataset ran out after ${done} contexts (${done * rowsPerContext} tokens); the store holds what there was\n`);
  }
  m.complete = true;
  writeManifest(o.outDir, m);
  bar.finish(`${m.tokens} tokens`);
  return m;
}
