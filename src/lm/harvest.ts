/**
 * `saekit harvest`: run a language model over token contexts and store the activations at
 * one hook point (data/store.ts), and optionally at a second, later hook as the targets a
 * transcoder learns to predict (e.g. blocks.3.ln2.hook_normalized -> blocks.3.hook_mlp_out).
 * Several hooks fill several stores from the same forward passes, as sparsify reads every
 * layer at once. The forward pass stops right after the last hook, so an early layer costs
 * a fraction of the model. Deterministic: contexts come in a fixed order, shard boundaries
 * fall on whole contexts, and a rerun skips the contexts already stored, so a harvest
 * killed at any point and rerun ends with the same stores as one clean run — each the
 * store that harvesting its hook alone would have written.
 */
import { mkdirSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import type { FloatDType } from "../core/dtype.js";
import { type MatmulPrecision, kernels, matmulPrecision, withMatmulPrecision } from "../core/kernels.js";
import { type StoreManifest, STORE_FORMAT, isStore, readManifest, storedContexts, writeManifest, writeShard } from "../data/store.js";
import { claimFolders } from "../util/folder-lock.js";
import { ProgressBar } from "../util/progress.js";
import { type LanguageModel, fanOutHooks } from "./model.js";

/** One store a harvest fills: a hook's activations, and a later hook's as its targets. */
export interface HarvestSite {
  outDir: string;
  hook: string;
  /** A later hook stored alongside as `targets` (a transcoder's output side). */
  targetHook?: string;
}

/** What every store of one harvest shares. */
export interface HarvestSettings {
  /** Activation rows (tokens) to store; rounded up to whole contexts. */
  tokens: number;
  ctx: number;
  /** Contexts per forward pass. */
  batch?: number;
  dtype?: FloatDType;
  /** Contexts start with BOS (recorded; the contexts themselves carry it). */
  prependBos: boolean;
  /** Leave position 0 (BOS) out of the stored rows; training can leave out the rest (train --exclude-tokens). */
  excludeBos?: boolean;
  /** The model's special tokens, recorded in the manifest for training that leaves them out. */
  specialTokens?: number[];
  /** Rows per shard (rounded to whole contexts). */
  shardTokens?: number;
  modelName: string;
  dataset: { spec: string; fingerprint: string };
  progress?: boolean;
  /** Stop after writing this many shards in this call (tests simulate a crash with it). */
  stopAfterShards?: number;
  /**
   * What the forward passes' matrix products compute in (kernels.ts), recorded in the
   * manifest. Default: the precision in effect when the harvest starts.
   */
  matmulPrecision?: MatmulPrecision;
}

export type HarvestOptions = HarvestSite & HarvestSettings;

/** Harvests one store. */
export async function harvest(model: LanguageModel, contexts: AsyncIterable<Int32Array>, o: HarvestOptions): Promise<StoreManifest> {
  const [m] = await harvestStores(model, contexts, [{ outDir: o.outDir, hook: o.hook, targetHook: o.targetHook }], o);
  return m!;
}

/**
 * The stores for hooks named by `hooks` (names or patterns, `blocks.*.hook_resid_post`),
 * paired in order with `targetHooks` when given (transcoders: as many targets as hooks).
 * One store lands in `outDir` itself; several, each in `outDir/<hook>`.
 */
export function harvestSites(model: LanguageModel, outDir: string, hooks: readonly string[], targetHooks?: readonly string[]): HarvestSite[] {
  const pairs = model.hookPairs(hooks, targetHooks);
  return pairs.map(({ hook, target }) => ({
    outDir: pairs.length === 1 ? outDir : join(outDir, hook), hook, ...(target ? { targetHook: target } : {}),
  }));
}

/**
 * Fills every site's store from one stream of contexts and one forward pass per batch.
 * A rerun starts at the store that lags most; stores further along skip what they hold.
 */
export async function harvestStores(model: LanguageModel, contexts: AsyncIterable<Int32Array>, sites: readonly HarvestSite[],
  o: HarvestSettings): Promise<StoreManifest[]> {
  if (sites.length === 0) throw new Error("harvest: no hook to store");
  const dirs = sites.map((s) => s.outDir);
  if (new Set(dirs).size !== dirs.length) throw new Error(`harvest: two stores would share a folder (${dirs.join(", ")})`);
  const excludeBos = o.excludeBos ?? false;
  const rowsPerContext = excludeBos ? o.ctx - 1 : o.ctx;
  if (rowsPerContext < 1) throw new Error(`context size ${o.ctx} leaves no positions to store`);
  const contextsPerShard = Math.max(1, Math.round((o.shardTokens ?? 65536) / rowsPerContext));
  const target = Math.ceil(o.tokens / rowsPerContext);
  // Each store fills one shard in memory: refuse a set that could not fit, before any work.
  const shardBytes = sites.reduce((a, s) => a + contextsPerShard * rowsPerContext * model.hookWidth(s.hook) * 4 * (s.targetHook ? 2 : 1), 0);
  if (shardBytes > 0.6 * totalmem()) {
    throw new Error(`harvest: ${sites.length} store(s) filling shards of ${contextsPerShard * rowsPerContext} rows need ${(shardBytes / 2 ** 30).toFixed(1)} GiB of memory, ` +
      `more than this machine can spare (${(totalmem() / 2 ** 30).toFixed(1)} GiB); lower --shard-tokens or harvest fewer hooks at once`);
  }
  // One process writes a store at a time: a second harvest there would interleave shards.
  const release = claimFolders(dirs, "harvesting");
  try {
    return await fillStores(model, contexts, sites, { ...o, matmulPrecision: o.matmulPrecision ?? matmulPrecision() },
      { rowsPerContext, contextsPerShard, target });
  } finally {
    release();
  }
}

/** The stores' contexts in shards: positions stored per context, contexts per shard, contexts in all. */
interface ShardLayout {
  rowsPerContext: number;
  contextsPerShard: number;
  target: number;
}

async function fillStores(model: LanguageModel, contexts: AsyncIterable<Int32Array>, sites: readonly HarvestSite[], o: HarvestSettings,
  { rowsPerContext, contextsPerShard, target }: ShardLayout): Promise<StoreManifest[]> {
  const stores = sites.map((site) => new StoreWriter(model, site, o, rowsPerContext, contextsPerShard, target));
  const lastHook = model.lastHook(sites.flatMap((s) => (s.targetHook ? [s.hook, s.targetHook] : [s.hook])));
  const start = Math.min(...stores.map((s) => s.next));
  if (start >= target) {
    // Nothing to add: say so instead of reading the dataset up to where the stores end.
    const where = sites.length === 1 ? sites[0]!.outDir : `the ${sites.length} stores`;
    process.stderr.write(`saekit: ${where} already ${sites.length === 1 ? "holds" : "hold"} ${start * rowsPerContext} tokens, ` +
      `at least the ${target * rowsPerContext} asked for; nothing to harvest\n`);
    // A store a killed run filled but never marked complete is marked so; a complete one is
    // left as it is (its manifest still names the target it was harvested to).
    return stores.map((s) => {
      const onDisk = readManifest(s.site.outDir);
      if (onDisk.complete) return onDisk;
      s.finish();
      return s.m;
    });
  }

  const label = sites.length === 1 ? siteLabel(sites[0]!) : `${sites.length} hooks`;
  const bar = new ProgressBar(target * rowsPerContext, `harvest ${label}`, o.progress !== false && process.stderr.isTTY === true);
  const t0 = performance.now();
  let harvested = 0;
  const batch = o.batch ?? 32;
  let pending: Int32Array[] = [];
  let index = 0; // the stream position of the next context read
  let shardsWritten = 0;

  const runBatch = () => {
    const B = pending.length;
    const tokens = new Int32Array(B * o.ctx);
    pending.forEach((c, b) => tokens.set(c, b * o.ctx));
    const first = index - B;
    const copies: Array<[string, (act: Float32Array) => void]> = [];
    for (const s of stores) {
      const taken = s.take(first, pending);
      if (!taken) continue;
      copies.push([s.site.hook, taken.activations]);
      if (s.site.targetHook) copies.push([s.site.targetHook, taken.targets!]);
    }
    withMatmulPrecision(o.matmulPrecision!, () => model.forward(tokens, B, o.ctx, { stopAt: lastHook, output: "none", hooks: fanOutHooks(copies) }));
    harvested += B;
    pending = [];
    // After every batch, not every shard: a big model takes minutes over one shard.
    const rate = (harvested * rowsPerContext) / ((performance.now() - t0) / 1000);
    bar.update(Math.min(...stores.map((w) => w.next)) * rowsPerContext, `${Math.round(rate)} tokens/s`);
  };

  for await (const c of contexts) {
    if (c.length !== o.ctx) throw new Error(`harvest: a context of ${c.length} tokens, expected ${o.ctx}`);
    if (index < start) {
      index++;
      continue;
    }
    if (index >= target) break;
    pending.push(c);
    index++;
    // A batch ends where any store's shard does, or where a store further along starts
    // taking contexts again, so a rerun's batches are those of a clean run.
    if (pending.length === batch || stores.some((s) => s.endsBatch(index))) runBatch();
    for (const s of stores) {
      if (!s.shardFull()) continue;
      s.writeShard();
      shardsWritten++;
      if (o.stopAfterShards !== undefined && shardsWritten >= o.stopAfterShards) return stores.map((w) => w.m);
    }
  }
  if (pending.length) runBatch();
  for (const s of stores) s.finish();
  const done = Math.min(...stores.map((s) => s.next));
  if (done < target) {
    process.stderr.write(`saekit: the dataset ran out after ${done} contexts (${done * rowsPerContext} tokens); the store holds what there was\n`);
  }
  bar.finish(`${done * rowsPerContext} tokens`);
  return stores.map((s) => s.m);
}

function siteLabel(s: HarvestSite): string {
  return s.targetHook ? `${s.hook} -> ${s.targetHook}` : s.hook;
}

/**
 * One store being filled: its manifest (opened from an earlier run or fresh), the shard
 * it is assembling, and which stream positions are its to take.
 */
class StoreWriter {
  readonly m: StoreManifest;
  readonly d: number;
  /** Contexts in written shards: the store takes stream position `next` onward. */
  private written: number;
  private inShard = 0;
  private acts: Float32Array | null = null;
  private targets: Float32Array | null = null;
  private tokens: Int32Array | null = null;

  constructor(model: LanguageModel, readonly site: HarvestSite, private readonly o: HarvestSettings,
    private readonly rowsPerContext: number, private readonly contextsPerShard: number, target: number) {
    this.d = site.targetHook !== undefined ? model.transcoderWidth(site.hook, site.targetHook) : model.hookWidth(site.hook);
    const fresh: StoreManifest = {
      format: STORE_FORMAT, model: o.modelName, hook: site.hook, ...(site.targetHook ? { target_hook: site.targetHook } : {}),
      d: this.d, ctx: o.ctx, dtype: o.dtype ?? "F32",
      prepend_bos: o.prependBos, exclude_bos: o.excludeBos ?? false, rows_per_context: rowsPerContext,
      contexts_per_shard: contextsPerShard, target_contexts: target, dataset: o.dataset,
      ...(o.specialTokens ? { special_tokens: o.specialTokens } : {}),
      ...(model.weightDtype === "bf16" ? { model_weights: "bf16" as const } : {}),
      ...(o.matmulPrecision === "medium" ? { matmul_precision: "medium" as const } : {}), shards: [], tokens: 0, complete: false,
    };
    mkdirSync(site.outDir, { recursive: true });
    let m = fresh;
    if (isStore(site.outDir)) {
      m = readManifest(site.outDir);
      const same = (["model", "hook", "target_hook", "d", "ctx", "dtype", "prepend_bos", "exclude_bos", "contexts_per_shard", "model_weights", "matmul_precision"] as const)
        .every((k) => m[k] === fresh[k]) && m.dataset.fingerprint === fresh.dataset.fingerprint;
      if (!same) {
        // Activations of bf16 weights or bf16 products differ in rounding: a store holds one kind.
        const ranWith = (x: StoreManifest) => {
          const how = [...(x.model_weights === "bf16" ? ["bf16 weights"] : []), ...(x.matmul_precision === "medium" ? ["matmul precision medium"] : [])];
          return how.length > 0 ? ` (${how.join(", ")})` : "";
        };
        throw new Error(`${site.outDir} already holds a different activation store (${m.model}${ranWith(m)} ${m.hook} ctx ${m.ctx} ${m.dtype} on ${m.dataset.spec}); ` +
          `this harvest is ${fresh.model}${ranWith(fresh)} ${fresh.hook} ctx ${fresh.ctx} ${fresh.dtype}; use another --out`);
      }
      m.target_contexts = target;
      m.complete = false;
      if (fresh.special_tokens) m.special_tokens ??= fresh.special_tokens;
    }
    this.m = m;
    this.written = storedContexts(m);
  }

  /** The stream position of the next context this store takes. */
  get next(): number {
    return this.written + this.inShard;
  }

  /** Whether a batch must end before stream position `index`. */
  endsBatch(index: number): boolean {
    return index === this.written || index === this.written + this.contextsPerShard;
  }

  shardFull(): boolean {
    return this.inShard === this.contextsPerShard;
  }

  /**
   * Takes this store's share of a batch (stream positions first.., the contexts given),
   * returning the hooks' copy functions, or null when none of the batch is its.
   */
  take(first: number, contexts: Int32Array[]): { activations: (a: Float32Array) => void; targets?: (a: Float32Array) => void } | null {
    if (this.next < first) throw new Error(`harvest: ${this.site.outDir} skipped contexts ${this.next}..${first - 1}`);
    const from = this.next - first;
    const n = Math.min(contexts.length - from, this.contextsPerShard - this.inShard);
    if (n <= 0) return null;
    const { ctx } = this.o;
    const { d, rowsPerContext: rows } = this;
    const shardRows = this.contextsPerShard * rows;
    this.acts ??= new Float32Array(shardRows * d);
    this.tokens ??= new Int32Array(this.contextsPerShard * ctx);
    if (this.site.targetHook) this.targets ??= new Float32Array(shardRows * d);
    const at = this.inShard;
    for (let c = 0; c < n; c++) this.tokens.set(contexts[from + c]!, (at + c) * ctx);
    this.inShard += n;
    // Copies each taken context's stored positions of a hook's activation into the shard,
    // refusing values the store could not hold before any of them reach a file.
    const keep = (into: Float32Array, hook: string) => (act: Float32Array) => {
      for (let c = 0; c < n; c++) {
        const src = ((from + c) * ctx + ctx - rows) * d;
        this.checkStorable(act.subarray(src, src + rows * d), hook, first + from + c);
        into.set(act.subarray(src, src + rows * d), (at + c) * rows * d);
      }
    };
    return { activations: keep(this.acts, this.site.hook), ...(this.targets ? { targets: keep(this.targets, this.site.targetHook!) } : {}) };
  }

  /**
   * Throws, naming the hook, the context and the position, at a NaN or infinite activation
   * (a broken model or config), or one beyond float16's range in an F16 store, where it
   * would become infinite.
   */
  private checkStorable(values: Float32Array, hook: string, context: number): void {
    // A finite sum of squares (a threaded native pass) clears float32 and bfloat16 stores at
    // once; the element scan runs for float16's range, and to find the culprit.
    if (this.m.dtype !== "F16" && Number.isFinite(kernels().sumSquares(values))) return;
    const limit = this.m.dtype === "F16" ? 65504 : Infinity;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (Math.abs(v) <= limit) continue;
      const position = this.o.ctx - this.rowsPerContext + Math.floor(i / this.d);
      const where = `${hook}: context ${context}, position ${position}, dimension ${i % this.d}`;
      if (Number.isFinite(v)) throw new Error(`${where}: activation ${v} is beyond float16's range (65504); harvest with --dtype bf16 or f32`);
      throw new Error(`${where}: the model produced ${v}; check its weights and config (nothing of this shard was written)`);
    }
  }

  /** Writes the shard assembled so far (atomically), then the manifest that lists it. */
  writeShard(): void {
    if (this.inShard === 0) return;
    const { d, m } = this;
    const rows = this.inShard * this.rowsPerContext;
    const file = writeShard(this.site.outDir, m.shards.length, this.acts!.subarray(0, rows * d), d, m.dtype,
      this.tokens!.subarray(0, this.inShard * this.o.ctx), this.o.ctx, this.targets?.subarray(0, rows * d));
    m.shards.push({ file, rows, contexts: this.inShard });
    m.tokens += rows;
    this.written += this.inShard;
    this.inShard = 0;
    writeManifest(this.site.outDir, m);
  }

  /** Writes what is left and marks the store complete. */
  finish(): void {
    this.writeShard();
    this.m.complete = true;
    writeManifest(this.site.outDir, this.m);
  }
}
