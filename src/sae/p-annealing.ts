/**
 * p-annealing (Karvonen et al. 2024, "Measuring Progress in Dictionary Learning for Language
 * Model Interpretability with Board Game Models"; dictionary_learning's PAnnealTrainer and
 * GatedAnnealTrainer): a sparsity penalty over a code's values u_bj = v_bj ||W_dec_j||,
 *
 *   alpha * w(t) * mean_b P_p(u_b),   P_p(u) = sum_j u_j^p  ("Lp^p")   or   (sum_j u_j^p)^(1/p)  ("Lp"),
 *
 * w(t) the linear warm-up, whose exponent p steps from p_start toward p_end at
 * n_sparsity_updates steps spaced evenly from anneal_start to anneal_end. At p = 1 it is the
 * L1 penalty; as p falls below 1 it leans toward counting active latents (an L0 penalty)
 * while keeping a gradient. A smaller p changes the penalty's size, so each update first
 * rescales alpha by mean P_p / mean P_p' over the batches since the last update, at most
 * sparsity_queue_length of them (p the value in force, p' the next one, both measured on
 * every batch): the weighted penalty stays where it was, and only its shape changes.
 * (dictionary_learning's queue also keeps batches from before the last update, which
 * measured the previous pair of p's; with updates fewer than the queue's length apart
 * they would mix in, so here the queue starts empty at each update.)
 *
 * The panneal SAE puts it on ReLU(pre) (panneal.ts), the gated_anneal SAE on its gate,
 * ReLU(pi_gate) (gated.ts). The state (alpha, updates done, the batches' penalties; p and the
 * next p follow from the updates done) is an SAE buffer, so checkpoints carry it and a
 * resumed run continues the schedule exactly.
 */
import { Tensor } from "../core/tensor.js";
import type { PAnnealSettings } from "./config.js";
import { warmup } from "./config.js";
import type { ParamSet } from "./sae.js";
import type { SparseCode } from "./sparse-code.js";

/** Where the schedule updates p, and the p each update sets. */
export interface AnnealSchedule {
  updateSteps: number[];
  pValues: number[];
}

/**
 * The updates' steps (floor of an even spacing from anneal_start to anneal_end, as torch's
 * integer linspace) and p values (p_start to p_end evenly). anneal_end 0 means the run's
 * last step + 1 (`runSteps`), which is never reached: p_end itself is then never used.
 */
export function annealSchedule(cfg: PAnnealSettings & { architecture: string }, runSteps?: number): AnnealSchedule {
  const end = cfg.anneal_end > 0 ? cfg.anneal_end : runSteps;
  const who = `${cfg.architecture} SAE`;
  if (end === undefined) {
    throw new RangeError(`${who}: with anneal_end 0 (the end of the run) the schedule needs the run's length; train it with a trainer, or set anneal_end`);
  }
  const start = cfg.anneal_start;
  const n = cfg.n_sparsity_updates;
  if (end < start) throw new RangeError(`${who}: annealing would end at step ${end}, before it starts (anneal_start ${start})`);
  if (n > end - start + 1) {
    throw new RangeError(`${who}: ${n} updates of p do not fit in steps ${start} to ${end}; use fewer (n_sparsity_updates) or a longer anneal`);
  }
  const at = (a: number, b: number, i: number) => (n === 1 ? a : a + (i * (b - a)) / (n - 1));
  return {
    updateSteps: Array.from({ length: n }, (_, i) => Math.floor(at(start, end, i))),
    pValues: Array.from({ length: n }, (_, i) => at(cfg.p_start, cfg.p_end, i)),
  };
}

// Layout of the state buffer: scalars, then the queue of [P_p, P_p'] pairs (a ring).
const ALPHA = 0;
const UPDATES = 1;
const FILLED = 2;
const WRITE = 3;
const QUEUE = 4;

export const PANNEAL_STATE = "p_anneal_state";

export class PAnnealing {
  private schedule: AnnealSchedule | null = null;
  /** The last training step's penalties at p and at the next p, for afterStep. */
  private pending: { step: number; now: number; next: number } | null = null;

  /**
   * The state lives in the SAE's `buffers`: the one `loaded` holds (a checkpoint's), else a
   * fresh one at alpha = l1_coefficient.
   */
  constructor(private readonly cfg: PAnnealSettings & { architecture: string }, private readonly buffers: ParamSet, loaded?: ParamSet) {
    const size = QUEUE + 2 * cfg.sparsity_queue_length;
    let state = loaded?.get(PANNEAL_STATE);
    if (!state) {
      state = Tensor.zeros([size]);
      state.data[ALPHA] = cfg.l1_coefficient;
    }
    buffers.set(PANNEAL_STATE, state.expectShape([size], PANNEAL_STATE));
  }

  private get state(): Float32Array {
    return this.buffers.get(PANNEAL_STATE)!.data;
  }

  /** The exponent and the coefficient (before warm-up) in force now. */
  get annealing(): { p: number; coefficient: number; updates: number } {
    return { p: this.exponents().p, coefficient: this.state[ALPHA]!, updates: this.state[UPDATES]! };
  }

  /**
   * p in force and the next p (0 before the first update, when none is measured yet): the
   * schedule's values as far as the updates done have gone.
   */
  private exponents(): { p: number; next: number } {
    const done = this.state[UPDATES]!;
    if (done === 0) return { p: this.cfg.p_start, next: 0 };
    const { pValues } = this.requireSchedule();
    return { p: pValues[done - 1]!, next: done < pValues.length ? pValues[done]! : this.cfg.p_end };
  }

  /** The schedule startRun fixed, or, outside a run, the one an explicit anneal_end gives. */
  private requireSchedule(): AnnealSchedule {
    return this.schedule ??= annealSchedule(this.cfg);
  }

  /**
   * Fixes the schedule for a run of `steps` steps, refusing one under which p would never
   * move (annealing starting at or after the run's end).
   */
  startRun(steps: number): void {
    const schedule = annealSchedule(this.cfg, steps);
    if (schedule.updateSteps.length > 1 && schedule.updateSteps[1]! >= steps) {
      throw new RangeError(`${this.cfg.architecture}: p would stay at ${this.cfg.p_start} for all ${steps} steps (its first change is at step ${schedule.updateSteps[1]}; ` +
        `anneal_start ${this.cfg.anneal_start}); set --anneal-start well below --steps`);
    }
    this.schedule = schedule;
  }

  /**
   * The penalty on a code of `batch` rows at training step `step`, u_e = val_e norms_j:
   * returns alpha w(t) mean_b P_p(u_b), adds its gradient in each entry's value to gVal[e]
   * and in each latent's decoder norm (summed over the batch) to gNorm[j], and keeps the
   * batch's penalties at p and the next p for afterStep.
   */
  penalize(step: number, code: SparseCode, norms: Float32Array, gVal: Float32Array, gNorm: Float32Array): { penalty: number; p: number; coefficient: number } {
    const B = code.batch;
    const { p, next: nextP } = this.exponents();
    const alpha = this.state[ALPHA]! * warmup(step, this.cfg.l1_warmup_steps);
    const lpp = this.cfg.sparsity_function === "Lp^p";
    let penalty = 0;
    let penaltyNext = 0;
    // At p = 1 (until the first update, while the code is at its densest) u^p is u and
    // u^(p-1) is 1, exactly: two powers fewer per entry, ~0.2 s of a fresh m = 16384 step.
    const one = p === 1;
    for (let b = 0; b < B; b++) {
      const from = code.rowPtr[b]!;
      const to = code.rowPtr[b + 1]!;
      let sum = 0;
      let sumNext = 0;
      for (let e = from; e < to; e++) {
        const u = code.val[e]! * norms[code.idx[e]!]!;
        if (u <= 0) continue; // a zero decoder row: no penalty, and u^(p-1) has no value there
        sum += one ? u : u ** p;
        if (nextP > 0) sumNext += u ** nextP;
      }
      if (sum === 0) continue;
      penalty += lpp ? sum : sum ** (1 / p);
      penaltyNext += lpp ? sumNext : sumNext > 0 ? sumNext ** (1 / nextP) : 0;
      // dP/du = p u^(p-1) (Lp^p) or (sum u^p)^(1/p - 1) u^(p-1) (Lp), then through u = v n.
      const outer = (alpha / B) * (lpp ? p : sum ** (1 / p - 1));
      for (let e = from; e < to; e++) {
        const j = code.idx[e]!;
        const u = code.val[e]! * norms[j]!;
        if (u <= 0) continue;
        const gU = one ? outer : outer * u ** (p - 1);
        gVal[e]! += gU * norms[j]!;
        gNorm[j]! += gU * code.val[e]!;
      }
    }
    this.pending = { step, now: penalty / B, next: penaltyNext / B };
    return { penalty: (alpha * penalty) / B, p, coefficient: this.state[ALPHA]! };
  }

  /** Records the last step's penalties and, at an update step, rescales alpha and moves p on. */
  afterStep(): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    const state = this.state;
    const length = this.cfg.sparsity_queue_length;
    const measured = state[UPDATES]! > 0; // the next p: measured on every batch after the first update
    if (measured) {
      const w = state[WRITE]!;
      state[QUEUE + 2 * w] = pending.now;
      state[QUEUE + 2 * w + 1] = pending.next;
      state[WRITE] = (w + 1) % length;
      state[FILLED] = Math.min(length, state[FILLED]! + 1);
    }
    const schedule = this.requireSchedule();
    const i = state[UPDATES]!;
    if (i >= schedule.updateSteps.length || pending.step < schedule.updateSteps[i]!) return;
    const filled = state[FILLED]!;
    if (measured && filled > 0) {
      let now = 0;
      let next = 0;
      for (let q = 0; q < filled; q++) {
        now += state[QUEUE + 2 * q]!;
        next += state[QUEUE + 2 * q + 1]!;
      }
      if (now > 0 && next > 0) state[ALPHA] = state[ALPHA]! * (now / next);
    }
    state[UPDATES] = i + 1;
    // The queue compared the old p with this one; from here it compares this one with the next.
    state[FILLED] = 0;
    state[WRITE] = 0;
  }
}
