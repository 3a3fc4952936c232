/**
 * Feature dashboards in the manner of sae_vis: for each chosen latent of an SAE spliced at a
 * hook of a language model, over a text dataset,
 *
 *   - density (fraction of tokens where it fires, f != 0) and its largest activation;
 *   - a histogram of its non-zero activations;
 *   - the contexts where it fires hardest (one example per context, its strongest position),
 *     and examples drawn from equal-count quantiles of its activations, each a window of
 *     tokens around the position with the latent's activation on every token;
 *   - its logit effects: the decoder direction read by the unembedding, W_U W_dec[j]
 *     (sae_vis's to_resid_dir is the identity for resid/attn_out/mlp_out hooks), top and
 *     bottom tokens, and their histogram over the whole vocabulary;
 *   - the feature tables (feature-tables.ts): neuron alignment, correlated neurons and
 *     correlated features.
 *
 * BOS positions are left out by default: their activations are outliers of the model, not of
 * the latent (as in `saekit eval`).
 */
import { Rng } from "../core/rng.js";
import { linearHistogram } from "../eval/metrics.js";
import { type LanguageModel, PROJECTED_HOOK } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import type { Sae } from "../sae/sae.js";
import { nnz, type SparseCode } from "../sae/sparse-code.js";
import { keptPositions } from "../data/token-filter.js";
import { FeatureCorrelations, type FeatureTables } from "./feature-tables.js";

export interface DashboardOptions {
  hook: string;
  latents: number[];
  /** Token positions to read (whole contexts). */
  tokens: number;
  ctx: number;
  batch?: number;
  /** Top-activating examples per latent. */
  topExamples?: number;
  /** Activation quantile groups, and examples drawn from each. */
  quantiles?: number;
  /** Examples drawn from each quantile group (sae_vis's quantile_group_size, 5). */
  perQuantile?: number;
  /** Tokens shown before and after the example's position. */
  window?: [number, number];
  /** Tokens listed for the largest and smallest logit effects. */
  logitTokens?: number;
  /** Leave each context's first position (BOS) out (default true). */
  excludeBos?: boolean;
  /** Token ids whose positions are left out wherever they stand (BOS between documents, EOS, ...). */
  excludeTokens?: readonly number[];
  seed?: number;
  /**
   * Kept for later calls over the same contexts in the same batches (dashboards of other
   * latents): each forward batch's hook activations and their code, so that those calls
   * neither run the model nor encode again.
   */
  cache?: DashboardCache;
  onProgress?: (contexts: number) => void;
}

/**
 * Per forward batch of a dashboard run, the hook's activations [n * T', d] and the SAE's
 * code of them, up to a byte budget: batches past it are not kept, and later runs compute
 * those again.
 */
export class DashboardCache {
  private readonly entries: Array<{ x: Float32Array; code: SparseCode } | undefined> = [];
  private used = 0;

  constructor(readonly budgetBytes = 2 ** 31) {}

  get bytes(): number {
    return this.used;
  }

  get(batch: number): { x: Float32Array; code: SparseCode } | undefined {
    return this.entries[batch];
  }

  /** Keeps x (as is) and a copy of the code, if they fit. */
  put(batch: number, x: Float32Array, code: SparseCode): void {
    const nz = nnz(code);
    const size = x.byteLength + 4 * (code.batch + 1) + 8 * nz;
    if (this.entries[batch] || this.used + size > this.budgetBytes) return;
    this.entries[batch] = {
      x, code: { batch: code.batch, m: code.m, rowPtr: code.rowPtr.slice(0, code.batch + 1), idx: code.idx.slice(0, nz), val: code.val.slice(0, nz) },
    };
    this.used += size;
  }
}

export interface DashboardExample {
  activation: number;
  context: number;
  position: number;
  /** Token ids of the window, their text, and the latent's activation on each. */
  tokens: number[];
  text: string[];
  acts: number[];
  /** Index of the example's position within the window. */
  focus: number;
}

export interface LatentDashboard {
  latent: number;
  density: number;
  max_activation: number;
  histogram: { edges: number[]; counts: number[] };
  top_examples: DashboardExample[];
  /** Equal-count groups of the non-zero activations, weakest first: |f| range, how many fall in it, a few examples. */
  quantile_examples: Array<{ range: [number, number]; count: number; examples: DashboardExample[] }>;
  logits: LogitEffects;
  tables: FeatureTables;
}

export interface LogitEffect {
  token: number;
  text: string;
  value: number;
}

export interface LogitEffects {
  top: LogitEffect[];
  bottom: LogitEffect[];
  /** W_U W_dec[j] over the whole vocabulary, in LOGIT_HISTOGRAM_BINS bins (sae_vis's 40); empty without an unembedding to read by. */
  histogram: { edges: number[]; counts: number[] };
}

/** sae_vis's LogitsHistogramConfig default. */
export const LOGIT_HISTOGRAM_BINS = 40;

export interface Dashboards {
  hook: string;
  tokens: number;
  contexts: number;
  latents: LatentDashboard[];
}

export async function buildDashboards(model: LanguageModel, tokenizer: TextTokenizer | null, sae: Sae,
  contexts: AsyncIterable<Int32Array>, o: DashboardOptions): Promise<Dashboards> {
  const d = model.hookWidth(o.hook);
  const m = sae.cfg.d_sae;
  if (sae.cfg.d_in !== d) throw new Error(`the SAE reads ${sae.cfg.d_in}-dim activations, ${o.hook} of this model is ${d}-dim`);
  for (const j of o.latents) if (!Number.isInteger(j) || j < 0 || j >= m) throw new RangeError(`latent ${j} is outside 0..${m - 1}`);
  const T = o.ctx;
  const first = o.excludeBos === false ? 0 : 1;
  const excluded = new Set(o.excludeTokens ?? []);
  const B = o.batch ?? 16;
  const target = Math.ceil(o.tokens / (T - first));
  const slot = new Map(o.latents.map((j, s) => [j, s]));
  // Per chosen latent, every non-zero activation: its flat position (context * T + t) and value.
  const rows = o.latents.map(() => [] as number[]);
  const values = o.latents.map(() => [] as number[]);
  const allTokens: Int32Array[] = [];
  const correlations = new FeatureCorrelations(o.latents, d, m);
  let scored = 0;

  let forwardBatch = 0;
  const runBatch = (batch: Int32Array[]) => {
    const n = batch.length;
    const tokens = new Int32Array(n * T);
    batch.forEach((c, b) => tokens.set(c, b * T));
    // The positions read: each context's from `first` on, less those of excluded tokens.
    const at = keptPositions(tokens, n, T, first, excluded);
    const count = at.rows.length;
    if (count === 0) {
      // Every position excluded: nothing to read in these contexts.
      forwardBatch++;
      allTokens.push(...batch.map((c) => c.slice()));
      o.onProgress?.(allTokens.length);
      return;
    }
    const hookRows = () => {
      const act = model.activationAt(tokens, n, T, o.hook);
      const rows = new Float32Array(count * d);
      at.rows.forEach((p, i) => rows.set(act.subarray(p * d, (p + 1) * d), i * d));
      return rows;
    };
    const kept = o.cache?.get(forwardBatch);
    const x = kept?.x ?? hookRows();
    if (x.length !== count * d) throw new Error("dashboard: the cache holds other contexts or batches than these");
    const code = kept?.code ?? sae.encode(x, count);
    if (!kept) o.cache?.put(forwardBatch, x, code);
    forwardBatch++;
    correlations.add(x, code, count);
    const base = allTokens.length * T;
    for (let r = 0; r < count; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
        const s = slot.get(code.idx[e]!);
        if (s === undefined || code.val[e] === 0) continue;
        rows[s]!.push(base + at.rows[r]!);
        values[s]!.push(code.val[e]!);
      }
    }
    allTokens.push(...batch.map((c) => c.slice()));
    scored += count;
    o.onProgress?.(allTokens.length);
  };
  let pending: Int32Array[] = [];
  for await (const c of contexts) {
    if (c.length !== T) throw new Error(`dashboard: a context of ${c.length} tokens, expected ${T}`);
    if (allTokens.length + pending.length >= target) break;
    pending.push(c);
    if (pending.length === B) { runBatch(pending); pending = []; }
  }
  if (pending.length) runBatch(pending);
  if (scored === 0) throw new Error("dashboard: the dataset gave no contexts");

  // Each token's text once: a dashboard shows the same tokens many times over.
  const texts = new Map<number, string>();
  const decode = (id: number) => {
    let t = texts.get(id);
    if (t === undefined) texts.set(id, t = tokenizer ? tokenizer.decode([id]) : String(id));
    return t;
  };
  const [before, after] = o.window ?? [8, 4];
  const rng = new Rng(o.seed ?? 0);
  const logits = logitEffects(model, sae, o.latents, o.logitTokens ?? 10, decode, o.hook);
  const W_dec = sae.params.get("W_dec");
  const decoder = W_dec && W_dec.shape[0] === m ? W_dec.data : null;

  const latents = o.latents.map((j, s): LatentDashboard => {
    const pos = rows[s]!;
    const val = values[s]!;
    const actAt = new Map(pos.map((p, i) => [p, val[i]!]));
    const example = (i: number): DashboardExample => {
      const p = pos[i]!;
      const context = Math.floor(p / T);
      const t = p % T;
      const lo = Math.max(0, t - before);
      const hi = Math.min(T, t + after + 1);
      const ids = [...allTokens[context]!.subarray(lo, hi)];
      return {
        activation: val[i]!, context, position: t, tokens: ids, text: ids.map(decode),
        acts: ids.map((_, w) => actAt.get(context * T + lo + w) ?? 0), focus: t - lo,
      };
    };
    // Strongest first (by |f|: signed latents too); one example per context.
    const order = [...val.keys()].sort((a, b) => Math.abs(val[b]!) - Math.abs(val[a]!) || pos[a]! - pos[b]!);
    const seen = new Set<number>();
    const top: DashboardExample[] = [];
    for (const i of order) {
      if (top.length >= (o.topExamples ?? 20)) break;
      const context = Math.floor(pos[i]! / T);
      if (seen.has(context)) continue;
      seen.add(context);
      top.push(example(i));
    }
    // Equal-count quantile groups of the activations, weakest first, a few random picks each.
    const Q = Math.min(o.quantiles ?? 5, order.length);
    const ascending = [...order].reverse();
    const quantileExamples = Array.from({ length: Q }, (_, q) => {
      const group = ascending.slice(Math.floor((q * ascending.length) / Q), Math.floor(((q + 1) * ascending.length) / Q));
      const picks: number[] = [];
      const pool = [...group];
      for (let c = 0; c < Math.min(o.perQuantile ?? 5, pool.length); c++) picks.push(pool.splice(rng.int(pool.length), 1)[0]!);
      const mag = (i: number) => Math.abs(val[i]!);
      return {
        range: [mag(group[0]!), mag(group[group.length - 1]!)] as [number, number], count: group.length,
        examples: picks.sort((a, b) => mag(b) - mag(a)).map(example),
      };
    });
    const maxAbs = val.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    return {
      latent: j, density: val.length / scored, max_activation: maxAbs,
      histogram: linearHistogram(val, 50), top_examples: top, quantile_examples: quantileExamples, logits: logits[s]!,
      tables: correlations.tables(s, decoder),
    };
  });
  return { hook: o.hook, tokens: scored, contexts: allTokens.length, latents };
}

/**
 * Per latent: the `n` largest and smallest entries of W_U W_dec[j] over the vocabulary
 * (W_U W_O W_dec[j] for an SAE on `hook` blocks.{i}.attn.hook_z, W_U W_out W_dec[j] on
 * blocks.{i}.mlp.hook_post).
 */
export function logitEffects(model: LanguageModel, sae: Sae, latents: number[], n: number,
  decode: (id: number) => string, hook?: string): LogitEffects[] {
  const W_dec = sae.params.get("W_dec");
  const d = sae.cfg.d_in;
  const V = model.cfg.vocabSize;
  // An attention or MLP-neuron SAE's directions live in hook_z or mlp.hook_post: the output
  // projection takes them to the residual stream (as sae_vis does for attention SAEs).
  const projected = hook !== undefined && PROJECTED_HOOK.test(hook);
  if (!W_dec || W_dec.shape[0] !== sae.cfg.d_sae || (!projected && d !== model.cfg.dModel)) return latents.map(() => ({ top: [], bottom: [], histogram: { edges: [], counts: [] } }));
  let dirs: Float32Array = new Float32Array(latents.length * d);
  latents.forEach((j, s) => dirs.set(W_dec.data.subarray(j * d, (j + 1) * d), s * d));
  if (projected) dirs = model.projectToResidual(hook!, dirs, latents.length);
  const out = model.logits(dirs, latents.length);
  return latents.map((_, s) => {
    const row = out.subarray(s * V, (s + 1) * V);
    const order = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b);
    const effect = (t: number): LogitEffect => ({ token: t, text: decode(t), value: row[t]! });
    return {
      top: order.slice(0, n).map(effect), bottom: order.slice(-n).reverse().map(effect),
      histogram: linearHistogram(Array.from(row), LOGIT_HISTOGRAM_BINS),
    };
  });
}

/** "0-31", "3,7,42" or "0-3,9" -> latent indices. */
export function parseLatentList(spec: string, m: number): number[] {
  const out: number[] = [];
  for (const part of spec.split(",")) {
    const r = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!r) throw new Error(`"${spec}" is not a latent list (e.g. 0-31 or 3,7,42)`);
    const a = Number(r[1]);
    const b = r[2] === undefined ? a : Number(r[2]);
    if (b < a) throw new Error(`latent range ${part.trim()} runs backwards`);
    if (b >= m) throw new Error(`latent ${b} is outside 0..${m - 1}`);
    for (let j = a; j <= b; j++) out.push(j);
  }
  return [...new Set(out)];
}
