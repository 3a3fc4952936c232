/**
 * Targeted probe perturbation (SAEBench's TPP eval): does an SAE give each concept its own
 * latents? For every class c of a labelled dataset, a probe trained on the model's pooled
 * activations tells c from the rest. The SAE's latents are ranked by their effect on that
 * probe,
 *
 *   effect_j = max(0, mean f_j over c's texts - mean f_j over the others) * (w_c . W_dec_j)
 *
 * (on the training texts, f the pooled code), and the top N are zero-ablated in the test
 * activations, keeping the SAE's error term: x' = x - sum_{j in top N} f_j W_dec_j. Mean
 * pooling is linear, so that is exact on the pooled vectors. Then
 *
 *   TPP(c, N) = (acc_c - acc_c after ablating c's latents)
 *             - mean over c' != c of (acc_c' - acc_c' after ablating c's latents)
 *
 * and the score for N is the mean over classes: high when ablating a class's latents
 * breaks its own probe and leaves the others alone.
 *
 * Differences from SAEBench: probes are the same L2 logistic regression as sparse
 * probing's (SAEBench trains them with Adam, an L1 penalty and early stopping on the test
 * set); each class's test set is drawn once and shared by the clean and every ablated
 * evaluation; and only the texts' real tokens are ablated (SAEBench's pooled sum also
 * picks up the ablated latents' codes at masked positions).
 */
import { fitLogisticRegression, probeAccuracy, type LogisticModel } from "./logistic-regression.js";
import { type ClassRows, classRng, gatherSplitRows, oneVsRestRows, type RowRef } from "./sparse-probing.js";

/** Pooled model activations and SAE codes of one split, row-aligned. */
export interface PooledSplit {
  model: ClassRows;
  sae: ClassRows;
}

export interface TppOptions {
  /** Latents ablated per class (SAEBench: 2, 5, 10, 20, 50, 100, 500). */
  nValues: number[];
  C?: number;
  seed?: number;
}

export interface TppClassResult {
  class: string;
  clean_accuracy: number;
  /** N -> the latents ablated for this class, by effect. */
  ablated_latents: Record<string, number[]>;
  /** N -> the TPP parts for this class. */
  total_metric: Record<string, number>;
  intended_diff_only: Record<string, number>;
  unintended_diff_only: Record<string, number>;
}

export interface TppResult {
  classes: TppClassResult[];
  /** N -> means over classes. */
  total_metric: Record<string, number>;
  intended_diff_only: Record<string, number>;
  unintended_diff_only: Record<string, number>;
}

/** The top `n` latents by effect, among those with a non-zero effect (largest first). */
export function topLatentsByEffect(effect: Float64Array, n: number): number[] {
  return Array.from(effect.keys()).filter((j) => effect[j] !== 0)
    .sort((a, b) => effect[b]! - effect[a]! || a - b).slice(0, n);
}

/** x' = x - sum_j f_j W_dec_j for the given latents, on [rows, d] vectors with codes [rows, m]. */
export function ablateLatents(x: Float32Array, codes: Float32Array, rows: number, d: number, m: number,
  W_dec: Float32Array, latents: number[]): Float32Array {
  const out = x.slice(0, rows * d);
  for (let r = 0; r < rows; r++) {
    for (const j of latents) {
      const f = codes[r * m + j]!;
      if (f === 0) continue;
      for (let c = 0; c < d; c++) out[r * d + c]! -= f * W_dec[j * d + c]!;
    }
  }
  return out;
}

export function targetedProbePerturbation(train: PooledSplit, test: PooledSplit, W_dec: Float32Array,
  o: TppOptions): TppResult {
  const d = train.model.width;
  const m = train.sae.width;
  if (W_dec.length !== m * d) throw new Error(`W_dec holds ${W_dec.length} values; the SAE maps ${m} latents to ${d} dims`);
  const classes = [...train.model.classes.keys()];
  if (classes.length < 2) throw new Error("TPP needs at least two classes");
  // Per class: its probe, its test draw, and its latents' effects on the probe.
  const perClass = classes.map((cls, ci) => {
    const rng = classRng(o.seed ?? 42, ci);
    const tr = oneVsRestRows(train.model, cls, rng);
    const te = oneVsRestRows(test.model, cls, rng);
    const xTrain = gatherSplitRows(train.model, tr.rows);
    const probe = fitLogisticRegression(xTrain, tr.rows.length, d, tr.y, { C: o.C ?? 1 });
    const xTest = gatherSplitRows(test.model, te.rows);
    return { cls, probe, test: te, xTest, codesTest: gatherSplitRows(test.sae, te.rows), effect: latentEffects(train.sae, tr.rows, tr.y, probe, W_dec, d) };
  });
  const accuracy = (k: number, x: Float32Array) => probeAccuracy(perClass[k]!.probe, x, perClass[k]!.test.rows.length, d, perClass[k]!.test.y);
  const clean = perClass.map((p, k) => accuracy(k, p.xTest));
  const results: TppClassResult[] = perClass.map((p, k) => ({
    class: p.cls, clean_accuracy: clean[k]!, ablated_latents: {}, total_metric: {}, intended_diff_only: {}, unintended_diff_only: {},
  }));
  for (const n of o.nValues) {
    perClass.forEach((ablated, a) => {
      const latents = topLatentsByEffect(ablated.effect, n);
      // Every class's probe on its own test draw, with class a's latents ablated.
      const drop = perClass.map((p, k) =>
        clean[k]! - accuracy(k, ablateLatents(p.xTest, p.codesTest, p.test.rows.length, d, m, W_dec, latents)));
      const unintended = drop.reduce((s, v, k) => (k === a ? s : s + v), 0) / (classes.length - 1);
      const r = results[a]!;
      r.ablated_latents[n] = latents;
      r.intended_diff_only[n] = drop[a]!;
      r.unintended_diff_only[n] = unintended;
      r.total_metric[n] = drop[a]! - unintended;
    });
  }
  const mean = (key: "total_metric" | "intended_diff_only" | "unintended_diff_only") =>
    Object.fromEntries(o.nValues.map((n) => [String(n), results.reduce((s, r) => s + r[key][n]!, 0) / results.length]));
  return { classes: results, total_metric: mean("total_metric"), intended_diff_only: mean("intended_diff_only"), unintended_diff_only: mean("unintended_diff_only") };
}

/**
 * effect_j = (mean code over positives - over negatives) * (w . W_dec_j): TPP keeps only
 * latents more active on the class (difference clamped at 0); SCR ranks by |effect|.
 */
export function latentEffects(sae: ClassRows, rows: RowRef[], y: Uint8Array, probe: Pick<LogisticModel, "w">, W_dec: Float32Array,
  d: number, mode: "tpp" | "scr" = "tpp"): Float64Array {
  const m = sae.width;
  const pos = new Float64Array(m);
  const neg = new Float64Array(m);
  let nPos = 0;
  rows.forEach((r, i) => {
    const sums = y[i] ? pos : neg;
    if (y[i]) nPos++;
    const code = sae.classes.get(r.cls)!.subarray(r.index * m, (r.index + 1) * m);
    for (let j = 0; j < m; j++) sums[j]! += code[j]!;
  });
  const nNeg = rows.length - nPos;
  return Float64Array.from({ length: m }, (_, j) => {
    const raw = pos[j]! / Math.max(1, nPos) - neg[j]! / Math.max(1, nNeg);
    const diff = mode === "tpp" ? Math.max(0, raw) : raw;
    if (diff === 0) return 0;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += probe.w[c]! * W_dec[j * d + c]!;
    return mode === "tpp" ? diff * dot : Math.abs(diff * dot);
  });
}
