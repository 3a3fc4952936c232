/**
 * k-sparse probing (SAEBench's sparse_probing eval; Gurnee et al. 2023): how well can a
 * linear probe on just k SAE latents tell one class of text from the others, compared with
 * k dimensions of the model's own activations? An SAE whose latents isolate the concept
 * needs few of them.
 *
 * For each class c, one-vs-rest on pooled activations (pooled-activations.ts):
 *   data     all train texts of c, and as many negatives drawn evenly from the other
 *            classes (ceil(n_c / (classes - 1)) from each, then n_c of those at random);
 *            the test set is built the same way from the test texts
 *   top-k    the k dimensions with the largest |mean(positives) - mean(negatives)| on the
 *            training data
 *   probe    L2 logistic regression, C = 1 (logistic-regression.ts) on those k dimensions,
 *            and on all of them for the full-width reference accuracy
 * Accuracies are averaged over classes.
 *
 * Two deliberate differences from SAEBench: each class's train and test sets are drawn
 * once and shared by every k (SAEBench redraws the negatives for each probe, adding noise
 * to the comparison across k), and the full-width probes are the same regularised
 * logistic regression rather than SAEBench's Adam probe that keeps the epoch with the best
 * test accuracy (which selects on the test set).
 */
import { Rng } from "../core/rng.js";
import { fitLogisticRegression, probeAccuracy } from "./logistic-regression.js";

/** Pooled vectors of one split: class -> rows [n_class, width]. */
export interface ClassRows {
  width: number;
  classes: Map<string, Float32Array>;
}

export interface ProbeData {
  x: Float32Array;
  /** 1: the class, 0: the rest. */
  y: Uint8Array;
  n: number;
}

/** Class number `ci`'s random stream: a class's data does not depend on which others are probed. */
export function classRng(seed: number, ci: number): Rng {
  return new Rng(seed * 1000003 + ci);
}

/** First `count` of a random permutation of 0 .. n-1. */
function sample(rng: Rng, n: number, count: number): number[] {
  return rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, count);
}

/** A row of a split: its class and its index among that class's rows. */
export interface RowRef {
  cls: string;
  index: number;
}

/**
 * Which rows make up class `positive`'s balanced one-vs-rest data, shuffled, and their
 * labels; the same choice can then be gathered from any vectors aligned with the split
 * (the model's activations and each SAE's codes).
 */
export function oneVsRestRows(split: ClassRows, positive: string, rng: Rng): { rows: RowRef[]; y: Uint8Array } {
  const count = (c: string) => split.classes.get(c)!.length / split.width;
  if (!split.classes.has(positive)) throw new Error(`no rows of class ${positive}`);
  const nPos = count(positive);
  const others = [...split.classes.keys()].filter((c) => c !== positive);
  if (others.length === 0) throw new Error("one-vs-rest needs at least two classes");
  const perClass = Math.ceil(nPos / others.length);
  const drawn: RowRef[] = [];
  for (const c of others) for (const index of sample(rng, count(c), perClass)) drawn.push({ cls: c, index });
  const negatives = sample(rng, drawn.length, Math.min(nPos, drawn.length)).map((i) => drawn[i]!);
  const all: RowRef[] = [...Array.from({ length: nPos }, (_, index) => ({ cls: positive, index })), ...negatives];
  const order = sample(rng, all.length, all.length);
  return { rows: order.map((i) => all[i]!), y: Uint8Array.from(order, (i) => (i < nPos ? 1 : 0)) };
}

/** The vectors of `rows` from a split, as one [rows, width] matrix. */
export function gatherSplitRows(split: ClassRows, rows: RowRef[]): Float32Array {
  const { width } = split;
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(split.classes.get(r.cls)!.subarray(r.index * width, (r.index + 1) * width), i * width));
  return out;
}

/** Balanced one-vs-rest data for class `positive`, shuffled. */
export function oneVsRest(split: ClassRows, positive: string, rng: Rng): ProbeData {
  const { rows, y } = oneVsRestRows(split, positive, rng);
  return { x: gatherSplitRows(split, rows), y, n: rows.length };
}

/**
 * The k dimensions with the largest |mean over positives - mean over negatives|, largest
 * first (ties: lower index first). Means in float64.
 */
export function topKMeanDiff(data: ProbeData, width: number, k: number): Int32Array {
  if (!Number.isInteger(k) || k < 1 || k > width) throw new RangeError(`k = ${k} must be in 1 .. ${width}`);
  const sumPos = new Float64Array(width);
  const sumNeg = new Float64Array(width);
  let nPos = 0;
  for (let i = 0; i < data.n; i++) {
    const sums = data.y[i] ? sumPos : sumNeg;
    if (data.y[i]) nPos++;
    for (let j = 0; j < width; j++) sums[j]! += data.x[i * width + j]!;
  }
  const nNeg = data.n - nPos;
  if (nPos === 0 || nNeg === 0) throw new Error("top-k selection needs positive and negative examples");
  const diff = new Float64Array(width);
  for (let j = 0; j < width; j++) diff[j] = Math.abs(sumPos[j]! / nPos - sumNeg[j]! / nNeg);
  const order = Array.from({ length: width }, (_, j) => j).sort((a, b) => diff[b]! - diff[a]! || a - b);
  return Int32Array.from(order.slice(0, k));
}

/** Columns `dims` of a [n, width] matrix. */
export function gatherColumns(x: Float32Array, n: number, width: number, dims: Int32Array): Float32Array {
  const k = dims.length;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[i * k + j] = x[i * width + dims[j]!]!;
  return out;
}

export interface SparseProbingOptions {
  /** Probe sizes (SAEBench: 1, 2, 5). */
  kValues: number[];
  /** Also probe on every dimension. */
  full?: boolean;
  /** Logistic regression's C. */
  C?: number;
  seed?: number;
}

export interface ClassProbeResult {
  class: string;
  train_rows: number;
  test_rows: number;
  /** Full-width probe test accuracy (when asked for). */
  test_accuracy?: number;
  /** k -> test accuracy of the probe on the top-k dimensions. */
  top_k_test_accuracy: Record<string, number>;
  /** k -> the dimensions (latents or model channels) that probe used. */
  top_k_dims: Record<string, number[]>;
}

export interface ProbingResult {
  classes: ClassProbeResult[];
  /** Class means of the accuracies. */
  test_accuracy?: number;
  top_k_test_accuracy: Record<string, number>;
}

/** k-sparse (and optionally full-width) probes of each class against the rest. */
export function sparseProbing(train: ClassRows, test: ClassRows, o: SparseProbingOptions): ProbingResult {
  if (train.width !== test.width) throw new Error(`train rows are ${train.width} wide, test rows ${test.width}`);
  const width = train.width;
  const C = o.C ?? 1;
  const classes = [...train.classes.keys()];
  const missing = classes.filter((c) => !test.classes.has(c));
  if (missing.length) throw new Error(`no test rows for class ${missing.join(", ")}`);
  const results: ClassProbeResult[] = classes.map((c, ci) => {
    const rng = classRng(o.seed ?? 42, ci);
    const tr = oneVsRest(train, c, rng);
    const te = oneVsRest(test, c, rng);
    const r: ClassProbeResult = { class: c, train_rows: tr.n, test_rows: te.n, top_k_test_accuracy: {}, top_k_dims: {} };
    if (o.full) {
      const probe = fitLogisticRegression(tr.x, tr.n, width, tr.y, { C });
      r.test_accuracy = probeAccuracy(probe, te.x, te.n, width, te.y);
    }
    for (const k of o.kValues) {
      const dims = topKMeanDiff(tr, width, Math.min(k, width));
      const probe = fitLogisticRegression(gatherColumns(tr.x, tr.n, width, dims), tr.n, dims.length, tr.y, { C });
      r.top_k_test_accuracy[k] = probeAccuracy(probe, gatherColumns(te.x, te.n, width, dims), te.n, dims.length, te.y);
      r.top_k_dims[k] = [...dims];
    }
    return r;
  });
  const mean = (f: (r: ClassProbeResult) => number) => results.reduce((s, r) => s + f(r), 0) / results.length;
  return {
    classes: results,
    ...(o.full ? { test_accuracy: mean((r) => r.test_accuracy!) } : {}),
    top_k_test_accuracy: Object.fromEntries(o.kValues.map((k) => [String(k), mean((r) => r.top_k_test_accuracy[k]!)])),
  };
}
