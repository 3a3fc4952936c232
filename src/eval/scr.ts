/**
 * Spurious correlation removal (SAEBench's SCR eval; Karvonen et al.): can ablating an
 * SAE's latents for a spurious attribute debias a probe? With two classes of a target
 * label (professor / nurse) and two values of an attribute (male / female), SAEBench's
 * four quadrants of texts make three probe tasks:
 *
 *   target    professor (male and female) vs nurse (male and female)
 *   spurious  male (professors and nurses) vs female (professors and nurses)
 *   biased    male professors vs female nurses: label and attribute perfectly correlated
 *
 * A probe is trained on each (pooled model activations). The biased probe leans on both
 * signals. Direction 1 ablates the top N latents for the spurious probe, ranked by
 * |(mean code over its positives - over its negatives) * (w_spurious . W_dec_j)|, and scores
 * the biased probe on the target test set:
 *
 *   SCR = (acc_ablated - acc_biased) / (acc_target_probe - acc_biased)
 *
 * (0: no better than before, 1: as good as a probe trained without the bias). Direction 2
 * swaps the roles (ablate target latents, score on the spurious test set). The reported
 * metric is the direction in which the biased probe did worse to begin with — the signal
 * it learnt less of is the one whose latents should be removed.
 *
 * As in TPP (tpp.ts), ablation keeps the SAE's error term and is exact on pooled vectors.
 */
import { Rng } from "../core/rng.js";
import type { LabeledText } from "../data/labeled.js";
import { fitLogisticRegression, type LogisticModel, probeAccuracy } from "./logistic-regression.js";
import { type ClassRows, gatherSplitRows, type RowRef } from "./sparse-probing.js";
import { ablateLatents, latentEffects, type PooledSplit, topLatentsByEffect } from "./tpp.js";

/** Target classes [positive, negative] and attribute values [positive, negative]. */
export interface ScrPair {
  target: [string, string];
  attribute: [string, string];
}

/** The four quadrants (pp: target positive with attribute positive, ...), shuffled. */
export type Quadrants = Record<"pp" | "pn" | "np" | "nn", string[]>;

/** One probe task: rows of the pooled quadrants and their labels. */
interface ProbeSet {
  rows: RowRef[];
  y: Uint8Array;
}

/** The texts of each quadrant, shuffled with `seed`. */
export function scrQuadrants(items: LabeledText[], pair: ScrPair, seed: number): Quadrants {
  const rng = new Rng(seed);
  const pick = (t: string, a: string) => rng.shuffle(items.filter((i) => i.label === t && i.attribute === a).map((i) => i.text));
  const [t0, t1] = pair.target;
  const [a0, a1] = pair.attribute;
  return { pp: pick(t0, a0), pn: pick(t0, a1), np: pick(t1, a0), nn: pick(t1, a1) };
}

/**
 * The texts each quadrant contributes with q per quadrant, as SAEBench draws them: the
 * biased task takes 2q texts of pp and nn, the others q of each quadrant.
 */
export function quadrantTexts(quadrants: Quadrants, q: number, pair: ScrPair): Map<string, string[]> {
  const need = { pp: 2 * q, pn: q, np: q, nn: 2 * q };
  const names = { pp: [pair.target[0], pair.attribute[0]], pn: [pair.target[0], pair.attribute[1]], np: [pair.target[1], pair.attribute[0]], nn: [pair.target[1], pair.attribute[1]] };
  const out = new Map<string, string[]>();
  for (const key of ["pp", "pn", "np", "nn"] as const) {
    if (quadrants[key].length < need[key]) {
      throw new Error(`SCR needs ${need[key]} texts of ${names[key].join(" + ")}, the dataset has ${quadrants[key].length}; lower the per-quadrant count`);
    }
    out.set(key, quadrants[key].slice(0, need[key]));
  }
  return out;
}

/** The three probe tasks over pooled quadrants of q texts each. */
function probeSets(q: number): Record<"target" | "spurious" | "biased", ProbeSet> {
  const refs = (cls: string, n: number): RowRef[] => Array.from({ length: n }, (_, index) => ({ cls, index }));
  const set = (pos: RowRef[], neg: RowRef[]): ProbeSet => ({
    rows: [...pos, ...neg], y: Uint8Array.from({ length: pos.length + neg.length }, (_, i) => (i < pos.length ? 1 : 0)),
  });
  return {
    target: set([...refs("pp", q), ...refs("pn", q)], [...refs("np", q), ...refs("nn", q)]),
    spurious: set([...refs("pp", q), ...refs("np", q)], [...refs("pn", q), ...refs("nn", q)]),
    biased: set(refs("pp", 2 * q), refs("nn", 2 * q)),
  };
}

export interface ScrOptions {
  nValues: number[];
  C?: number;
}

export interface ScrResult {
  /** Clean test accuracies: each probe on its own task, and the biased probe on the other two. */
  accuracy: { target: number; spurious: number; biased: number; biased_on_target: number; biased_on_spurious: number };
  /** 1: ablate spurious latents, score on target data; 2: the reverse. Which one is the metric. */
  metric_direction: 1 | 2 | null;
  /** N -> scores. */
  scr_dir1: Record<string, number>;
  scr_dir2: Record<string, number>;
  scr_metric: Record<string, number | null>;
  /** N -> latents ablated in each direction. */
  dir1_latents: Record<string, number[]>;
  dir2_latents: Record<string, number[]>;
}

/**
 * SCR from pooled quadrants (ClassRows keyed pp, pn, np, nn: q texts each for pn and np,
 * 2q for pp and nn, train and test alike) and the SAE's decoder.
 */
export function spuriousCorrelationRemoval(train: PooledSplit, test: PooledSplit, qTrain: number, qTest: number,
  W_dec: Float32Array, o: ScrOptions): ScrResult {
  const d = train.model.width;
  const m = train.sae.width;
  const trainSets = probeSets(qTrain);
  const testSets = probeSets(qTest);
  const fit = (s: ProbeSet) => fitLogisticRegression(gatherSplitRows(train.model, s.rows), s.rows.length, d, s.y, { C: o.C ?? 1 });
  const probes = { target: fit(trainSets.target), spurious: fit(trainSets.spurious), biased: fit(trainSets.biased) };
  const testX = (s: ProbeSet, split: ClassRows) => gatherSplitRows(split, s.rows);
  const acc = (probe: LogisticModel, s: ProbeSet, x: Float32Array) => probeAccuracy(probe, x, s.rows.length, d, s.y);
  const clean = {
    target: acc(probes.target, testSets.target, testX(testSets.target, test.model)),
    spurious: acc(probes.spurious, testSets.spurious, testX(testSets.spurious, test.model)),
    biased: acc(probes.biased, testSets.biased, testX(testSets.biased, test.model)),
    biased_on_target: acc(probes.biased, testSets.target, testX(testSets.target, test.model)),
    biased_on_spurious: acc(probes.biased, testSets.spurious, testX(testSets.spurious, test.model)),
  };
  const effects = {
    spurious: latentEffects(train.sae, trainSets.spurious.rows, trainSets.spurious.y, probes.spurious, W_dec, d, "scr"),
    target: latentEffects(train.sae, trainSets.target.rows, trainSets.target.y, probes.target, W_dec, d, "scr"),
  };
  /** The biased probe's accuracy on `evalSet` after ablating `latents`. */
  const ablatedAccuracy = (evalSet: ProbeSet, latents: number[]) => {
    const x = testX(evalSet, test.model);
    const codes = testX(evalSet, test.sae);
    return acc(probes.biased, evalSet, ablateLatents(x, codes, evalSet.rows.length, d, m, W_dec, latents));
  };
  const direction: 1 | 2 | null = clean.biased_on_target < clean.biased_on_spurious ? 1
    : clean.biased_on_target > clean.biased_on_spurious ? 2 : null;
  const r: ScrResult = { accuracy: clean, metric_direction: direction, scr_dir1: {}, scr_dir2: {}, scr_metric: {}, dir1_latents: {}, dir2_latents: {} };
  for (const n of o.nValues) {
    const l1 = topLatentsByEffect(effects.spurious, n);
    const l2 = topLatentsByEffect(effects.target, n);
    r.dir1_latents[n] = l1;
    r.dir2_latents[n] = l2;
    r.scr_dir1[n] = (ablatedAccuracy(testSets.target, l1) - clean.biased_on_target) / (clean.target - clean.biased_on_target);
    r.scr_dir2[n] = (ablatedAccuracy(testSets.spurious, l2) - clean.biased_on_spurious) / (clean.spurious - clean.biased_on_spurious);
    r.scr_metric[n] = direction === 1 ? r.scr_dir1[n]! : direction === 2 ? r.scr_dir2[n]! : null;
  }
  return r;
}
