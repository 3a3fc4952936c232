/**
 * The shared finite-difference gradient check: an SAE's hand-written float32 gradients
 * against central differences of its float64 reference loss (reference-losses.ts), for
 * every parameter entry.
 */
import { expect } from "vitest";
import type { ParamSet, Sae, TrainStep } from "../../src/sae/sae.js";
import { zerosLike } from "../../src/sae/sae.js";
import { type Params64, type RefStep, referenceLoss } from "./reference-losses.js";

export interface GradCheckResult {
  loss32: number;
  loss64: number;
  /** Per parameter: ||g - g_fd||, relative to ||g_fd||, and ||g_fd||. */
  errors: Record<string, { abs: number; rel: number; fdNorm: number }>;
}

export function toParams64(params: ParamSet): Params64 {
  return new Map([...params].map(([n, t]) => [n, Float64Array.from(t.data)]));
}

export function gradCheck(sae: Sae, step: TrainStep, opts: { h?: number; skip?: string[] } = {}): GradCheckResult {
  const h = opts.h ?? 1e-5;
  const grads = zerosLike(sae.params);
  // Poison the gradients: lossAndGrad must overwrite every entry.
  for (const g of grads.values()) g.data.fill(NaN);
  const stats = sae.lossAndGrad(step, grads);
  const p64 = toParams64(sae.params);
  const ref: RefStep = {
    x: Float64Array.from(step.x), batch: step.batch, step: step.step, seed: step.seed, dead: step.dead,
    ...(step.target ? { target: Float64Array.from(step.target) } : {}),
  };
  // The first evaluation, at the unperturbed parameters, also freezes AuxK's residual.
  const loss64 = referenceLoss(sae.cfg, p64, ref);
  const errors: GradCheckResult["errors"] = {};
  for (const [name, values] of p64) {
    if (opts.skip?.includes(name)) continue;
    const g = grads.get(name)!.data;
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < values.length; i++) {
      const keep = values[i]!;
      values[i] = keep + h;
      const up = referenceLoss(sae.cfg, p64, ref);
      values[i] = keep - h;
      const down = referenceLoss(sae.cfg, p64, ref);
      values[i] = keep;
      const fd = (up - down) / (2 * h);
      expect(Number.isFinite(g[i]!), `${name}[${i}] gradient is not finite`).toBe(true);
      diff += (g[i]! - fd) ** 2;
      norm += fd * fd;
    }
    errors[name] = { abs: Math.sqrt(diff), rel: Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12), fdNorm: Math.sqrt(norm) };
  }
  return { loss32: stats.loss, loss64, errors };
}

/** Asserts the check passed: losses agree and every gradient matches its finite differences. */
export function expectGradientsMatch(r: GradCheckResult, label: string, tol = 2e-3): void {
  expect(Math.abs(r.loss32 - r.loss64), `${label}: loss ${r.loss32} vs reference ${r.loss64}`)
    .toBeLessThan(1e-4 * (1 + Math.abs(r.loss64)));
  for (const [name, e] of Object.entries(r.errors)) {
    // Relative to the gradient's size; parameters the loss does not reach must get ~0.
    const ok = e.rel < tol || e.abs < 1e-5;
    expect(ok, `${label}: ${name} gradient off by ${e.abs.toExponential(2)} (relative ${e.rel.toExponential(2)}, |fd| ${e.fdNorm.toExponential(2)})`).toBe(true);
  }
}
