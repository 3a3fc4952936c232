/**
 * Gated SAE with p-annealing (dictionary_learning's GatedAnnealTrainer; Karvonen et al.
 * 2024, "Measuring Progress in Dictionary Learning for Language Model Interpretability with
 * Board Game Models"): gated.ts's SAE, whose penalty on the gate,
 *
 *   alpha * w(t) * mean_b P_p(u_b),   u_bj = ReLU(pi_gate_bj) ||W_dec_j||,
 *
 * is annealed in p (p-annealing.ts) rather than held at L1 (p = 1 is gated's own penalty).
 * The magnitude path, the auxiliary reconstruction through the gate and inference are the
 * gated SAE's (SAELens "gated").
 */
import type { GatedAnnealConfig } from "./config.js";
import { type GatePenalty, GatedSae } from "./gated.js";
import { PAnnealing } from "./p-annealing.js";
import type { ParamSet } from "./sae.js";
import type { SparseCode } from "./sparse-code.js";

export class GatedAnnealSae extends GatedSae {
  declare readonly cfg: GatedAnnealConfig;
  private readonly anneal: PAnnealing;

  constructor(cfg: GatedAnnealConfig, params?: ParamSet, buffers?: ParamSet) {
    super(cfg, params);
    this.anneal = new PAnnealing(cfg, this.buffers, buffers);
  }

  /** The exponent and the coefficient (before warm-up) in force now. */
  get annealing(): { p: number; coefficient: number; updates: number } {
    return this.anneal.annealing;
  }

  startRun(steps: number): void {
    this.anneal.startRun(steps);
  }

  protected override gatePenalty(step: number, gate: SparseCode, norms: Float32Array, gGate: Float32Array): GatePenalty {
    const gNorm = this.ws.float("g_norm", this.cfg.d_sae, true);
    const { penalty, p, coefficient } = this.anneal.penalize(step, gate, norms, gGate, gNorm);
    return { value: penalty, name: "sparsity", gNorm, schedule: { p, sparsity_coefficient: coefficient } };
  }

  /** Records the step's penalties and, at an update step, rescales alpha and moves p on. */
  afterStep(): void {
    this.anneal.afterStep();
  }
}
