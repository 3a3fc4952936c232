/**
 * Splice evaluation (SAEBench's core eval, SAELens' get_recons_loss): run the language
 * model three times on the same contexts — clean, with the hook's activation replaced by
 * the SAE's reconstruction, and with it zero-ablated — and compare:
 *
 *   CE loss recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean)
 *   KL score          = (KL_zero - KL_sae) / KL_zero,  KL_x = mean KL(p_clean || p_x)
 *
 * CE and KL are averaged over every position that has a next token (0 .. ctx-2). With
 * excludeBos (default), BOS positions keep their clean activation in both interventions and
 * are left out of the reconstruction metrics, as SAEBench does for special tokens; the SAE's
 * own FVU, cosine, L0, density ... are measured on the same activations (metrics.ts).
 * A Matryoshka SAE is also spliced at each inner level (its first `width` latents alone).
 * A transcoder reads one hook and is spliced in at a later one (hookOut), whose clean
 * activation its reconstruction metrics compare against.
 */
import { kernels } from "../core/kernels.js";
import type { LanguageModel } from "../lm/model.js";
import { prefixCode } from "../sae/matryoshka.js";
import type { Sae } from "../sae/sae.js";
import { meanL0 } from "../sae/sparse-code.js";
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
  excludeBos?: boolean;
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
  const wanted = Math.ceil(o.tokens / (o.ctx - 1));
  const held: Int32Array[] = [];
  for await (const c of contexts) {
    if (held.length >= wanted) break;
    held.push(c);
  }
  return evaluateSpliceOn(model, sae, held, o);
}

/** evaluateSplice on contexts already in hand (as training runs it between steps). */
export function evaluateSpliceOn(model: LanguageModel, sae: Sae, contexts: Iterable<Int32Array>, o: SpliceEvalOptions): SpliceEvalResult {
  model.checkHook(o.hook);
  const hookOut = o.hookOut ?? o.hook;
  if (hookOut !== o.hook) {
    model.checkHook(hookOut);
    const names = model.hookNames();
    if (names.indexOf(hookOut) < names.indexOf(o.hook)) throw new Error(`a transcoder's output hook ${hookOut} must not come before its input hook ${o.hook}`);
  }
  const d = model.hookWidth(o.hook);
  if (hookOut !== o.hook && model.hookWidth(hookOut) !== d) throw new Error(`${o.hook} is ${d}-dim but ${hookOut} is ${model.hookWidth(hookOut)}-dim; saekit's transcoders map a width to itself`);
  if (sae.cfg.d_in !== d) throw new Error(`the SAE reads ${sae.cfg.d_in}-dim activations, ${o.hook} of this model is ${d}-dim`);
  const k = kernels();
  const T = o.ctx;
  const excludeBos = o.excludeBos ?? true;
  const first = excludeBos ? 1 : 0;
  const B = o.batch ?? 16;
  const target = Math.ceil(o.tokens / (T - 1));
  // One spliced run per reconstruction: the SAE's, then (Matryoshka) each inner level's.
  const widths = sae.cfg.architecture === "matryoshka" ? sae.cfg.matryoshka_widths.slice(0, -1) : [];
  const recs = [sae.cfg.d_sae, ...widths].map(() => new ReconstructionMetrics(d));
  const levelActive = widths.map(() => 0);
  const sparsity = new SparsityMetrics(sae.cfg.d_sae);
  const sums = { clean: 0, zero: 0, klZero: 0, sae: recs.map(() => 0), klSae: recs.map(() => 0) };
  let positions = 0;
  let seen = 0;
  const bar = new ProgressBar(target, "eval", o.progress !== false && process.stderr.isTTY === true);

  const runBatch = (batch: Int32Array[]) => {
    const n = batch.length;
    const tokens = new Int32Array(n * T);
    batch.forEach((c, b) => tokens.set(c, b * T));
    // The input hook's activation, and the output hook's (the same for an SAE).
    let act: Float32Array | null = null;
    let out: Float32Array | null = null;
    const clean = model.forward(tokens, n, T, {
      output: "final",
      hooks: { [o.hook]: (a) => { act = a.slice(); }, ...(hookOut !== o.hook ? { [hookOut]: (a: Float32Array) => { out = a.slice(); } } : {}) },
    }).final!;
    out ??= act;
    // The SAE on every non-BOS position (rows gathered contiguously); y is what it should give.
    const rows = n * (T - first);
    const gather = (from: Float32Array) => {
      const g = new Float32Array(rows * d);
      for (let b = 0; b < n; b++) g.set(from.subarray((b * T + first) * d, (b + 1) * T * d), b * (T - first) * d);
      return g;
    };
    const x = gather(act!);
    const y = hookOut === o.hook ? x : gather(out!);
    const code = sae.encode(x, rows);
    sparsity.add(code, T - first);
    const codes = [code, ...widths.map((w) => prefixCode(code, w))];
    widths.forEach((_, i) => (levelActive[i]! += meanL0(codes[i + 1]!) * rows));
    const withSae = codes.map((c, v) => {
      const xHat = sae.decode(c, x);
      recs[v]!.add(y, xHat, rows);
      const spliced = out!.slice();
      for (let b = 0; b < n; b++) spliced.set(xHat.subarray(b * (T - first) * d, (b + 1) * (T - first) * d), (b * T + first) * d);
      return model.forward(tokens, n, T, { output: "final", hooks: { [hookOut]: () => spliced } }).final!;
    });
    const zero = model.forward(tokens, n, T, {
      output: "final",
      hooks: { [hookOut]: (a) => { for (let b = 0; b < n; b++) a.fill(0, (b * T + first) * d, (b + 1) * T * d); } },
    }).final!;
    // CE and KL at positions 0..T-2, a chunk of rows at a time.
    const V = model.cfg.vocabSize;
    // Two logit buffers of ~512 rows: the clean one stays while each spliced one and then
    // the ablated one are compared with it.
    const chunk = Math.max(1, Math.min(n * T, 512));
    const targets = new Int32Array(n * T);
    for (let r = 0; r < n * T; r++) targets[r] = r % T === T - 1 ? -1 : tokens[r + 1]!;
    const lc = new Float32Array(chunk * V), lx = new Float32Array(chunk * V);
    const ce = new Float32Array(chunk), kl = new Float32Array(chunk);
    for (let r0 = 0; r0 < n * T; r0 += chunk) {
      const m = Math.min(chunk, n * T - r0);
      const tg = targets.subarray(r0, r0 + m);
      // sum + the values at positions with a next token, added one by one.
      const plus = (sum: number, values: Float32Array) => {
        for (let i = 0; i < m; i++) if (tg[i]! >= 0) sum += values[i]!;
        return sum;
      };
      model.logits(clean.subarray(r0 * d, (r0 + m) * d), m, lc);
      k.crossEntropyRows(lc, m, V, tg, ce);
      sums.clean = plus(sums.clean, ce);
      withSae.forEach((final, v) => {
        model.logits(final.subarray(r0 * d, (r0 + m) * d), m, lx);
        k.crossEntropyRows(lx, m, V, tg, ce);
        sums.sae[v] = plus(sums.sae[v]!, ce);
        k.klRows(lc, lx, m, V, kl);
        sums.klSae[v] = plus(sums.klSae[v]!, kl);
      });
      model.logits(zero.subarray(r0 * d, (r0 + m) * d), m, lx);
      k.crossEntropyRows(lx, m, V, tg, ce);
      sums.zero = plus(sums.zero, ce);
      k.klRows(lc, lx, m, V, kl);
      sums.klZero = plus(sums.klZero, kl);
      for (let i = 0; i < m; i++) if (tg[i]! >= 0) positions++;
    }
    seen += n;
    bar.update(seen);
  };

  let pending: Int32Array[] = [];
  for (const c of contexts) {
    if (c.length !== T) throw new Error(`eval: a context of ${c.length} tokens, expected ${T}`);
    if (seen + pending.length >= target) break;
    pending.push(c);
    if (pending.length === B) {
      runBatch(pending);
      pending = [];
    }
  }
  if (pending.length) runBatch(pending);
  bar.finish();
  if (positions === 0) throw new Error("eval: the dataset gave no contexts");
  const clean = sums.clean / positions;
  const zero = { ce: sums.zero / positions, kl: sums.klZero / positions };
  // The scores of the v-th spliced reconstruction.
  const spliceOf = (v: number) => {
    const ce = { clean, sae: sums.sae[v]! / positions, zero: zero.ce };
    const kl = { sae: sums.klSae[v]! / positions, zero: zero.kl };
    return { ce_loss_with_sae: ce.sae, kl_div_with_sae: kl.sae, ...spliceScores(ce, kl), reconstruction: recs[v]!.result() };
  };
  const tokensSeen = recs[0]!.result().tokens;
  const { ce_loss_with_sae, kl_div_with_sae, ce_loss_recovered, kl_div_score, reconstruction } = spliceOf(0);
  return {
    hook: o.hook, ...(hookOut !== o.hook ? { hook_out: hookOut } : {}), contexts: seen, positions,
    ce_loss_clean: clean, ce_loss_with_sae, ce_loss_zero_ablated: zero.ce,
    kl_div_with_sae, kl_div_zero_ablated: zero.kl,
    ce_loss_recovered, kl_div_score,
    reconstruction,
    sparsity: sparsity.result(),
    ...(widths.length ? { levels: widths.map((width, i) => ({ width, l0: levelActive[i]! / tokensSeen, ...spliceOf(i + 1) })) } : {}),
    ...(o.featurewise ? { features: { density: [...sparsity.density()], consistent_activation: sparsity.consistentActivation() } } : {}),
  };
}
