/**
 * Splice evaluation (SAEBench's core eval, SAELens' get_recons_loss): run the language
 * model three times on the same contexts — clean, with the hook's activation replaced by
 * the SAE's reconstruction, and with it zero-ablated — and compare:
 *
 *   CE loss recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean)
 *   KL score          = (KL_zero - KL_sae) / KL_zero,  KL_x = mean KL(p_clean || p_x)
 *
 * CE and KL are averaged over every position that has a next token (0 .. ctx-2). With
 * excludeBos (default), each context's first position (BOS) keeps its clean activation in
 * both interventions and is left out of the reconstruction metrics; excludeTokens does the
 * same wherever those tokens stand (SAEBench's exclude_special_tokens_from_reconstruction:
 * BOS separating documents, EOS, padding). The SAE's own FVU, cosine, L0, density ... are
 * measured on the same activations (metrics.ts).
 * A Matryoshka SAE is also spliced at each inner level (its first `width` latents alone).
 * A transcoder reads one hook and is spliced in at a later one (hookOut), whose clean
 * activation its reconstruction metrics compare against.
 */
import { kernels } from "../core/kernels.js";
import type { LanguageModel } from "../lm/model.js";
import { prefixCode } from "../sae/matryoshka.js";
import type { Sae } from "../sae/sae.js";
import { meanL0 } from "../sae/sparse-code.js";
import { keptPositions } from "../data/token-filter.js";
import { ProgressBar } from "../util/progress.js";
import { ReconstructionMetrics, SparsityMetrics } from "./metrics.js";

export interface SpliceEvalOptions {
  hook: string;
  /**
   * For a transcoder: the later hook whose activation it predicts from `hook`'s. The
   * splice then replaces this hook's activation, zero-ablation zeroes it, and the
   * reconstruction metrics compare the prediction with it.
   */
  hookOut?: string;
  /** Tokens (positions) to evaluate, rounded up to whole contexts. */
  tokens: number;
  ctx: number;
  /** Contexts per forward pass. */
  batch?: number;
  /** Leave each context's first position (BOS) clean and out of the metrics. Default true. */
  excludeBos?: boolean;
  /** Token ids whose positions stay clean and out of the metrics, wherever they stand. */
  excludeTokens?: readonly number[];
  progress?: boolean;
  /** Also return per-latent statistics (density, firings per prompt), e.g. for SAEBench output. */
  featurewise?: boolean;
}

export interface SpliceEvalResult {
  hook: string;
  hook_out?: string;
  contexts: number;
  /** Positions averaged over for CE and KL. */
  positions: number;
  ce_loss_clean: number;
  ce_loss_with_sae: number;
  ce_loss_zero_ablated: number;
  ce_loss_recovered: number;
  kl_div_with_sae: number;
  kl_div_zero_ablated: number;
  kl_div_score: number;
  reconstruction: ReturnType<ReconstructionMetrics["result"]>;
  sparsity: ReturnType<SparsityMetrics["result"]>;
  /**
   * A Matryoshka SAE's inner levels, each spliced on its own: the code restricted to the
   * first `width` latents (the full dictionary is the result above).
   */
  levels?: Array<{
    width: number;
    l0: number;
    ce_loss_with_sae: number;
    ce_loss_recovered: number;
    kl_div_with_sae: number;
    kl_div_score: number;
    reconstruction: ReturnType<ReconstructionMetrics["result"]>;
  }>;
  /** Per latent, when asked for: density and firings per prompt where it fires (null: never). */
  features?: { density: number[]; consistent_activation: Array<number | null> };
}

/** The two CE/KL scores from their parts (exported for the formula tests). */
export function spliceScores(ce: { clean: number; sae: number; zero: number }, kl: { sae: number; zero: number }) {
  return {
    ce_loss_recovered: (ce.zero - ce.sae) / (ce.zero - ce.clean),
    kl_div_score: (kl.zero - kl.sae) / kl.zero,
  };
}

export async function evaluateSplice(model: LanguageModel, sae: Sae, contexts: AsyncIterable<Int32Array>,
  o: SpliceEvalOptions): Promise<SpliceEvalResult> {
  return evaluateSpliceOn(model, sae, await firstContexts(contexts, o), o);
}

/** evaluateSplicesOn (several SAEs at once) on the first contexts of a stream. */
export async function evaluateSplices(model: LanguageModel, targets: readonly SpliceTarget[], contexts: AsyncIterable<Int32Array>,
  o: Omit<SpliceEvalOptions, "hook" | "hookOut">): Promise<SpliceEvalResult[]> {
  return evaluateSplicesOn(model, targets, await firstContexts(contexts, o), o);
}

/** The contexts an evaluation of `o.tokens` positions reads, held in memory (token ids only). */
async function firstContexts(contexts: AsyncIterable<Int32Array>, o: { tokens: number; ctx: number }): Promise<Int32Array[]> {
  const wanted = Math.ceil(o.tokens / (o.ctx - 1));
  const held: Int32Array[] = [];
  for await (const c of contexts) {
    if (held.length >= wanted) break;
    held.push(c);
  }
  return held;
}

/** evaluateSplice on contexts already in hand (as training runs it between steps). */
export function evaluateSpliceOn(model: LanguageModel, sae: Sae, contexts: Iterable<Int32Array>, o: SpliceEvalOptions): SpliceEvalResult {
  return evaluateSplicesOn(model, [{ sae, hook: o.hook, hookOut: o.hookOut }], contexts, o)[0]!;
}

/**
 * The clean pass's residual stream entering the block of `hook`, for a pass that changes
 * `hook` to resume from (the same result, to the bit, without recomputing the blocks before).
 */
function resumeAt(model: LanguageModel, hook: string, clean: Map<string, Float32Array>): { resume?: { layer: number; resid: Float32Array } } {
  const point = model.resumePoint(hook);
  return point ? { resume: { layer: point.layer, resid: clean.get(point.residHook)! } } : {};
}

/** One SAE of a joint evaluation: where it reads and (a transcoder) where it writes. */
export interface SpliceTarget {
  sae: Sae;
  hook: string;
  hookOut?: string;
  /** Names the SAE in errors (its path, say). */
  name?: string;
}

/**
 * Several SAEs evaluated on the same contexts at once (a sweep, or one SAE per layer): the
 * clean run is shared by all, the zero-ablated run by those splicing at the same hook, so
 * N SAEs at one hook cost N + 2 forward passes per batch instead of 3N. Each result is
 * what evaluating that SAE alone gives, to the bit.
 */
export function evaluateSplicesOn(model: LanguageModel, targets: readonly SpliceTarget[], contexts: Iterable<Int32Array>,
  o: Omit<SpliceEvalOptions, "hook" | "hookOut">): SpliceEvalResult[] {
  const T = o.ctx;
  const first = (o.excludeBos ?? true) ? 1 : 0;
  const excluded = new Set(o.excludeTokens ?? []);
  const B = o.batch ?? 16;
  const wanted = Math.ceil(o.tokens / (T - 1));
  const runs = targets.map((t) => {
    try {
      return new SpliceRun(model, t, o.featurewise === true);
    } catch (err) {
      if (t.name === undefined) throw err;
      throw new Error(`${t.name}: ${(err as Error).message}`);
    }
  });
  // One zero-ablation per output hook, shared by the SAEs that splice there.
  const outHooks = [...new Set(runs.map((r) => r.hookOut))];
  const zeroSums = new Map(outHooks.map((h) => [h, { ce: 0, kl: 0 }]));
  let cleanSum = 0;
  let positions = 0;
  let seen = 0;
  const bar = new ProgressBar(wanted, "eval", o.progress !== false && process.stderr.isTTY === true);
  const k = kernels();

  const runBatch = (batch: Int32Array[]) => {
    const n = batch.length;
    const tokens = new Int32Array(n * T);
    batch.forEach((c, b) => tokens.set(c, b * T));
    const at = keptPositions(tokens, n, T, first, excluded);
    // The clean run, keeping every hook an SAE reads or writes, and the residual stream
    // entering each output hook's block, where the passes that change it resume.
    const acts = new Map<string, Float32Array>();
    const kept = [...runs.flatMap((r) => [r.hook, r.hookOut]), ...outHooks.flatMap((h) => model.resumePoint(h)?.residHook ?? [])];
    const keep = Object.fromEntries([...new Set(kept)].map((h) => [h, (a: Float32Array) => { acts.set(h, a.slice()); }]));
    const clean = model.forward(tokens, n, T, { output: "final", hooks: keep }).final!;
    // Every intervention's final hidden states, with the sums its CE and KL go to.
    const interventions: Array<{ final: Float32Array; sums: { ce: number; kl: number } }> = [];
    for (const run of runs) {
      for (const [final, sums] of run.splice(tokens, n, T, acts, at)) interventions.push({ final, sums });
    }
    for (const h of outHooks) {
      const d = model.hookWidth(h);
      const zero = model.forward(tokens, n, T, {
        output: "final", ...resumeAt(model, h, acts),
        hooks: { [h]: (a) => { for (const r of at.rows) a.fill(0, r * d, (r + 1) * d); } },
      }).final!;
      interventions.push({ final: zero, sums: zeroSums.get(h)! });
    }
    // CE and KL at positions 0..T-2, a chunk of rows at a time: the clean logits of a chunk
    // stay while each intervention's are compared with them.
    const V = model.cfg.vocabSize;
    const dm = model.cfg.dModel;
    const chunk = Math.max(1, Math.min(n * T, 512));
    const next = new Int32Array(n * T);
    for (let r = 0; r < n * T; r++) next[r] = r % T === T - 1 ? -1 : tokens[r + 1]!;
    const lc = new Float32Array(chunk * V), lx = new Float32Array(chunk * V);
    const ce = new Float32Array(chunk), kl = new Float32Array(chunk);
    for (let r0 = 0; r0 < n * T; r0 += chunk) {
      const m = Math.min(chunk, n * T - r0);
      const tg = next.subarray(r0, r0 + m);
      // sum + the values at positions with a next token, added one by one.
      const plus = (sum: number, values: Float32Array) => {
        for (let i = 0; i < m; i++) if (tg[i]! >= 0) sum += values[i]!;
        return sum;
      };
      model.logits(clean.subarray(r0 * dm, (r0 + m) * dm), m, lc);
      k.crossEntropyRows(lc, m, V, tg, ce);
      cleanSum = plus(cleanSum, ce);
      for (const { final, sums } of interventions) {
        model.logits(final.subarray(r0 * dm, (r0 + m) * dm), m, lx);
        k.crossEntropyRows(lx, m, V, tg, ce);
        sums.ce = plus(sums.ce, ce);
        k.klRows(lc, lx, m, V, kl);
        sums.kl = plus(sums.kl, kl);
      }
      for (let i = 0; i < m; i++) if (tg[i]! >= 0) positions++;
    }
    seen += n;
    bar.update(seen);
  };

  let pending: Int32Array[] = [];
  for (const c of contexts) {
    if (c.length !== T) throw new Error(`eval: a context of ${c.length} tokens, expected ${T}`);
    if (seen + pending.length >= wanted) break;
    pending.push(c);
    if (pending.length === B) {
      runBatch(pending);
      pending = [];
    }
  }
  if (pending.length) runBatch(pending);
  bar.finish();
  if (positions === 0) throw new Error("eval: the dataset gave no contexts");
  return runs.map((run) => {
    const z = zeroSums.get(run.hookOut)!;
    return run.result(seen, positions, cleanSum / positions, { ce: z.ce / positions, kl: z.kl / positions });
  });
}

/**
 * One SAE's part of a splice evaluation: its reconstructions spliced in (the full code,
 * then a Matryoshka SAE's inner levels), and the metrics of its code on the activations.
 */
class SpliceRun {
  readonly hook: string;
  readonly hookOut: string;
  private readonly d: number;
  /** Reconstructions spliced in: the SAE's, then (Matryoshka) each inner level's. */
  private readonly widths: number[];
  private readonly recs: ReconstructionMetrics[];
  private readonly levelActive: number[];
  private readonly sparsity: SparsityMetrics;
  private readonly sums: Array<{ ce: number; kl: number }>;
  private readonly sae: Sae;

  constructor(private readonly model: LanguageModel, t: SpliceTarget, private readonly featurewise: boolean) {
    const { sae } = t;
    model.checkHook(t.hook);
    this.hook = t.hook;
    this.hookOut = t.hookOut ?? t.hook;
    if (this.hookOut !== t.hook) {
      model.checkHook(this.hookOut);
      const names = model.hookNames();
      if (names.indexOf(this.hookOut) < names.indexOf(t.hook)) throw new Error(`a transcoder's output hook ${this.hookOut} must not come before its input hook ${t.hook}`);
    }
    const d = model.hookWidth(t.hook);
    if (this.hookOut !== t.hook && model.hookWidth(this.hookOut) !== d) throw new Error(`${t.hook} is ${d}-dim but ${this.hookOut} is ${model.hookWidth(this.hookOut)}-dim; saekit's transcoders map a width to itself`);
    if (sae.cfg.d_in !== d) throw new Error(`the SAE reads ${sae.cfg.d_in}-dim activations, ${t.hook} of this model is ${d}-dim`);
    this.d = d;
    this.widths = sae.cfg.architecture === "matryoshka" ? sae.cfg.matryoshka_widths.slice(0, -1) : [];
    this.recs = [sae.cfg.d_sae, ...this.widths].map(() => new ReconstructionMetrics(d));
    this.levelActive = this.widths.map(() => 0);
    this.sparsity = new SparsityMetrics(sae.cfg.d_sae);
    this.sums = this.recs.map(() => ({ ce: 0, kl: 0 }));
    this.sae = sae;
  }

  /**
   * Encodes this batch's activations at the input hook at the positions `at` holds,
   * measures the code, and runs the model with each reconstruction spliced in there at the
   * output hook: [final hidden states, the sums their CE and KL go to] per reconstruction.
   */
  splice(tokens: Int32Array, n: number, T: number, acts: Map<string, Float32Array>,
    at: { rows: Int32Array; promptOf: Int32Array }): Array<[Float32Array, { ce: number; kl: number }]> {
    const { d, sae } = this;
    const act = acts.get(this.hook)!;
    const out = acts.get(this.hookOut)!;
    // Rows gathered contiguously; y is what the SAE should give (the input itself for an SAE).
    const rows = at.rows.length;
    const gather = (from: Float32Array) => {
      const g = new Float32Array(rows * d);
      at.rows.forEach((r, i) => g.set(from.subarray(r * d, (r + 1) * d), i * d));
      return g;
    };
    if (rows === 0) {
      // Nothing to reconstruct in this batch: every splice is the clean run.
      const final = this.model.forward(tokens, n, T, { output: "final", ...resumeAt(this.model, this.hookOut, acts) }).final!;
      return this.sums.map((sums) => [final, sums] as [Float32Array, { ce: number; kl: number }]);
    }
    const x = gather(act);
    const y = this.hookOut === this.hook ? x : gather(out);
    const code = sae.encode(x, rows);
    this.sparsity.add(code, { promptOf: at.promptOf, prompts: n });
    const codes = [code, ...this.widths.map((w) => prefixCode(code, w))];
    this.widths.forEach((_, i) => (this.levelActive[i]! += meanL0(codes[i + 1]!) * rows));
    return codes.map((c, v) => {
      const xHat = sae.decode(c, x);
      this.recs[v]!.add(y, xHat, rows);
      const spliced = out.slice();
      at.rows.forEach((r, i) => spliced.set(xHat.subarray(i * d, (i + 1) * d), r * d));
      const final = this.model.forward(tokens, n, T, { output: "final", ...resumeAt(this.model, this.hookOut, acts), hooks: { [this.hookOut]: () => spliced } }).final!;
      return [final, this.sums[v]!] as [Float32Array, { ce: number; kl: number }];
    });
  }

  result(contexts: number, positions: number, clean: number, zero: { ce: number; kl: number }): SpliceEvalResult {
    // The scores of the v-th spliced reconstruction.
    const spliceOf = (v: number) => {
      const ce = { clean, sae: this.sums[v]!.ce / positions, zero: zero.ce };
      const kl = { sae: this.sums[v]!.kl / positions, zero: zero.kl };
      return { ce_loss_with_sae: ce.sae, kl_div_with_sae: kl.sae, ...spliceScores(ce, kl), reconstruction: this.recs[v]!.result() };
    };
    const tokensSeen = this.recs[0]!.result().tokens;
    const { ce_loss_with_sae, kl_div_with_sae, ce_loss_recovered, kl_div_score, reconstruction } = spliceOf(0);
    const sparsity = this.sparsity;
    return {
      hook: this.hook, ...(this.hookOut !== this.hook ? { hook_out: this.hookOut } : {}), contexts, positions,
      ce_loss_clean: clean, ce_loss_with_sae, ce_loss_zero_ablated: zero.ce,
      kl_div_with_sae, kl_div_zero_ablated: zero.kl,
      ce_loss_recovered, kl_div_score,
      reconstruction,
      sparsity: sparsity.result(),
      ...(this.widths.length ? { levels: this.widths.map((width, i) => ({ width, l0: this.levelActive[i]! / tokensSeen, ...spliceOf(i + 1) })) } : {}),
      ...(this.featurewise ? { features: { density: [...sparsity.density()], consistent_activation: sparsity.consistentActivation() } } : {}),
    };
  }
}
