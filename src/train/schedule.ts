/**
 * Learning-rate schedules, in three phases as SAELens builds them (its get_lr_scheduler):
 *
 *   1. linear warm-up over warmupSteps, from lr / warmupSteps at the first step to lr;
 *   2. the main schedule until decayStart:
 *        constant          lr (dictionary_learning's, and SAELens' default);
 *        cosine            lr_end + (lr - lr_end) (1 + cos(pi t / T)) / 2 over its T steps
 *                          (SAELens' "cosineannealing", torch's CosineAnnealingLR);
 *        cosine_restarts   the same cosine restarted every floor(T / cycles) steps
 *                          ("cosineannealingwarmrestarts", CosineAnnealingWarmRestarts);
 *   3. linear decay to 0 from decayStart to the last step, starting from where the main
 *      schedule ends: lr for constant, lr_end for the cosines.
 *
 * The default (constant, 5% warm-up, decay over the last 20%) is dictionary_learning's
 * warm-up / decay schedule.
 */
export const LR_SCHEDULES = ["constant", "cosine", "cosine_restarts"] as const;
export type LrScheduleKind = (typeof LR_SCHEDULES)[number];

export interface LrSchedule {
  lr: number;
  steps: number;
  warmupSteps: number;
  /** Step where the decay starts (>= steps: no decay). */
  decayStart: number;
  /** The main schedule (default constant). */
  kind?: LrScheduleKind;
  /** The cosines' floor, where the decay starts from (default lr / 10, as SAELens). */
  lrEnd?: number;
  /** cosine_restarts: cosine cycles in the main phase (default 1). */
  cycles?: number;
}

/** The default warm-up (min(1000, 5% of steps)) and decay start: 80% of steps for constant, none after a cosine. */
export function defaultSchedule(lr: number, steps: number, kind: LrScheduleKind = "constant"): LrSchedule {
  return {
    lr, steps, kind, warmupSteps: Math.min(1000, Math.floor(0.05 * steps)),
    decayStart: kind === "constant" ? Math.floor(0.8 * steps) : steps,
  };
}

/** Throws an error naming the setting for a schedule that cannot work. */
export function validateSchedule(s: LrSchedule): void {
  const kind = s.kind ?? "constant";
  if (!(LR_SCHEDULES as readonly string[]).includes(kind)) throw new RangeError(`unknown lr schedule "${kind}" (known: ${LR_SCHEDULES.join(", ")})`);
  if (!Number.isSafeInteger(s.warmupSteps) || s.warmupSteps < 0) throw new RangeError(`lr warm-up steps must be a non-negative integer, got ${s.warmupSteps}`);
  if (!Number.isSafeInteger(s.decayStart) || s.decayStart < 0) throw new RangeError(`lr decay start must be a non-negative integer, got ${s.decayStart}`);
  const lrEnd = s.lrEnd ?? s.lr / 10;
  if (!(lrEnd >= 0 && lrEnd <= s.lr)) throw new RangeError(`lr_end must be in [0, lr = ${s.lr}], got ${lrEnd}`);
  if (!Number.isSafeInteger(s.cycles ?? 1) || (s.cycles ?? 1) < 1) throw new RangeError(`lr cycles must be a positive integer, got ${s.cycles}`);
  if (kind !== "constant" && lrEnd === 0 && s.decayStart < s.steps) {
    // As SAELens refuses it: the decay would run from 0 to 0.
    throw new RangeError(`a decay after the ${kind} schedule starts from lr_end, which is 0; set lr_end > 0 or no decay`);
  }
}

/** The learning rate at 0-based step `step`. */
export function lrAt(s: LrSchedule, step: number): number {
  const kind = s.kind ?? "constant";
  const lrEnd = kind === "constant" ? s.lr : (s.lrEnd ?? s.lr / 10);
  const decayStart = Math.min(s.decayStart, s.steps);
  let lr: number;
  if (step >= decayStart && s.steps > decayStart) {
    lr = lrEnd * ((s.steps - step) / (s.steps - decayStart));
  } else if (kind === "constant" || step < s.warmupSteps) {
    lr = s.lr;
  } else {
    // The main phase's own clock: 0 at the first step after the warm-up.
    const t = step - s.warmupSteps;
    const span = Math.max(1, decayStart - s.warmupSteps);
    const period = kind === "cosine" ? span : Math.max(1, Math.floor(span / (s.cycles ?? 1)));
    const phase = kind === "cosine" ? Math.min(t, period) : t % period;
    lr = lrEnd + ((s.lr - lrEnd) * (1 + Math.cos((Math.PI * phase) / period))) / 2;
  }
  // Where warm-up and decay overlap (short runs), the smaller wins.
  if (s.warmupSteps > 0 && step < s.warmupSteps) lr = Math.min(lr, s.lr * ((step + 1) / s.warmupSteps));
  return lr;
}
