/**
 * Learning-rate schedule of dictionary_learning's trainers: linear warm-up from 0 over
 * warmupSteps, constant, then linear decay to 0 from decayStart to the last step.
 */
export interface LrSchedule {
  lr: number;
  steps: number;
  warmupSteps: number;
  /** Step where the decay starts (>= steps: no decay). */
  decayStart: number;
}

export function defaultSchedule(lr: number, steps: number): LrSchedule {
  return { lr, steps, warmupSteps: Math.min(1000, Math.floor(0.05 * steps)), decayStart: Math.floor(0.8 * steps) };
}

/** The learning rate at 0-based step `step`. */
export function lrAt(s: LrSchedule, step: number): number {
  let factor = 1;
  if (s.warmupSteps > 0 && step < s.warmupSteps) factor = (step + 1) / s.warmupSteps;
  if (step >= s.decayStart && s.steps > s.decayStart) factor = Math.min(factor, (s.steps - step) / (s.steps - s.decayStart));
  return s.lr * factor;
}
