/**
 * Gated SAE (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated Sparse
 * Autoencoders"; SAELens "gated", dictionary_learning GatedAutoEncoder). One encoder matrix
 * feeds two paths: a gate deciding which latents fire and a magnitude path deciding how much.
 *
 *   pre      = W_enc (x - b_dec)                      (b_enc is the gate bias, SAELens' b_gate)
 *   pi_gate  = pre + b_gate,   pi_mag = exp(r_mag) * pre + b_mag
 *   f        = 1[pi_gate > 0] * ReLU(pi_mag),   x_hat = W_dec^T f + b_dec
 *   loss     = ||x - x_hat||^2
 *            + l1(t) * sum_j ReLU(pi_gate_j) ||W_dec_j||                       (sparsity, on the gate)
 *            + ||x - (sg(W_dec)^T ReLU(pi_gate) + sg(b_dec))||^2              (auxiliary reconstruction)
 *
 * The Heaviside gate has no gradient, so the gate path learns from the two auxiliary terms;
 * sg() stops gradients into the decoder from the auxiliary reconstruction, as the paper and
 * SAELens do. Everything runs on the gate's support {pi_gate > 0}: the code of ReLU(pi_gate)
 * carries the gate gradients, its subset with pi_mag > 0 is f.
 */
import { Tensor } from "../core/tensor.js";
import type { GatedAnnealConfig, GatedConfig } from "./config.js";
import { warmup } from "./config.js";
import { LinearSae, type ParamSet, type StepStats, type TrainStep, targetOf } from "./sae.js";
import { nnz, type SparseCode } from "./sparse-code.js";

/** A penalty on the gate other than gated's L1 (gated-anneal.ts): its value and dL/d||W_dec_j||. */
export interface GatePenalty {
  /** The weighted penalty, a loss term under `name`. */
  value: number;
  name: string;
  /** dL/d||W_dec_j||, summed over the batch. */
  gNorm: Float32Array;
  schedule?: Record<string, number>;
}

export class GatedSae extends LinearSae {
  declare readonly cfg: GatedConfig | GatedAnnealConfig;

  constructor(cfg: GatedConfig | GatedAnnealConfig, params?: ParamSet) {
    super(cfg, params);
    for (const name of ["r_mag", "b_mag"]) {
      if (!this.params.has(name)) this.params.set(name, Tensor.zeros([cfg.d_sae]));
      this.param(name).expectShape([cfg.d_sae], name);
    }
  }

  /** The gate's code, ReLU(pi_gate) on {pi_gate > 0}, and f on its subset with pi_mag > 0. */
  private gateAndCode(pre: Float32Array, batch: number): { gate: SparseCode; code: SparseCode; mag: Float32Array; magScale: Float32Array } {
    const bGate = this.b_enc;
    const gate = this.selectAbove(pre, batch, bGate, null, "gate");
    const magScale = this.magnitudeScales();
    const bMag = this.param("b_mag").data;
    const n = nnz(gate);
    const code = this.codeBuffers("code", batch, n);
    // exp(r_mag) * pre for each gate entry (pre = pi_gate - b_gate), kept for the backward.
    const mag = this.ws.float("mag_scaled_pre", n);
    let a = 0;
    for (let b = 0; b < batch; b++) {
      code.rowPtr[b] = a;
      for (let e = gate.rowPtr[b]!; e < gate.rowPtr[b + 1]!; e++) {
        const j = gate.idx[e]!;
        mag[e] = magScale[j]! * (gate.val[e]! - bGate[j]!);
        const piMag = mag[e]! + bMag[j]!;
        if (piMag > 0) {
          code.idx[a] = j;
          code.val[a++] = piMag;
        }
      }
    }
    code.rowPtr[batch] = a;
    return { gate, code, mag, magScale };
  }

  /** exp(r_mag) per latent (once per call: a gate entry each would be ~10^7 exps a step). */
  private magnitudeScales(): Float32Array {
    const rMag = this.param("r_mag").data;
    const scales = this.ws.float("mag_scales", rMag.length);
    for (let j = 0; j < rMag.length; j++) scales[j] = Math.exp(rMag[j]!);
    return scales;
  }

  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    return this.gateAndCode(this.preActivations(xc, batch), batch).code;
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const m = this.cfg.d_sae;
    const B = s.batch;
    const xc = this.centered(s.x, B);
    const pre = this.preActivations(xc, B);
    const { gate, code, mag, magScale } = this.gateAndCode(pre, B);
    const nGate = nnz(gate);

    // Main reconstruction: x_hat, dL/dx_hat, dL/df per entry of f and W_dec's gradient.
    const { sumSq, xHat, gXhat, gVal: gF } = this.reconstructFused(code, targetOf(s), B, "", 1, grads);
    // Auxiliary reconstruction through the gate with the decoder held constant: its
    // dL/dx_aux and dL/dReLU(pi_gate) per gate entry (W_dec and b_dec get nothing from it).
    const { sumSq: auxSq, gVal: gGate } = this.reconstructFused(gate, targetOf(s), B, "aux_");

    // One pass over the gate's entries (tens of millions while the gate is open to half the
    // latents, as it is when training starts) for the sparsity penalty on ReLU(pi_gate),
    // weighted by decoder norms, and dL/dpre per gate entry: the gate path (dReLU(pi_gate)
    // = 1 on the support, gGate plus the penalty's l1/B ||W_dec_j||) plus, where f fires,
    // the magnitude path exp(r_mag) * dL/df, from which r_mag and b_mag learn. dL/dpre
    // overwrites gGate. Another penalty (gatePenalty) adds its gradient into gGate first,
    // and the L1 terms of the pass are zero.
    const norms = this.decoderNorms();
    const other = this.gatePenalty(s.step, gate, norms, gGate);
    const l1 = other ? 0 : (this.cfg.l1_coefficient * warmup(s.step, this.cfg.l1_warmup_steps));
    const penaltyGrad = this.ws.float("gate_penalty_g", m);
    for (let j = 0; j < m; j++) penaltyGrad[j] = (l1 / B) * norms[j]!;
    const gateSum = this.ws.float("gate_sum", m, true);
    const gRMag = grads.get("r_mag")!.data;
    const gBMag = grads.get("b_mag")!.data;
    const gBGate = grads.get("b_enc")!.data;
    gRMag.fill(0);
    gBMag.fill(0);
    gBGate.fill(0);
    const gPre = gGate;
    const bMag = this.param("b_mag").data;
    const { idx, val } = gate;
    let penalty = 0;
    let a = 0;
    for (let e = 0; e < nGate; e++) {
      const j = idx[e]!;
      const v = val[e]!;
      penalty += v * norms[j]!;
      gateSum[j]! += v;
      let g = gGate[e]! + penaltyGrad[j]!;
      gBGate[j]! += g;
      if (mag[e]! + bMag[j]! > 0) {
        const gf = gF[a++]!;
        g += gf * magScale[j]!;
        gRMag[j]! += gf * mag[e]!;
        gBMag[j]! += gf;
      }
      gPre[e] = g;
    }

    // W_dec: the penalty's d/dW_dec_j of ||W_dec_j|| on top of the main reconstruction's.
    if (other) this.addNormGrads(other.gNorm, norms, grads);
    else {
      for (let j = 0; j < m; j++) gateSum[j] = (l1 / B) * gateSum[j]!;
      this.addNormGrads(gateSum, norms, grads);
    }
    // W_enc through pre on the gate's support; the per-latent sums of dL/dpre feed b_dec.
    const gPreSum = this.ws.float("g_pre_sum", m);
    this.scatterRows(gate, "gate", gPre, xc, false, grads.get("W_enc")!.data, gPreSum);
    // b_dec (the main decoder bias, and through x - b_dec) and W_skip.
    this.outputGrads(gXhat, s, grads, gPreSum);

    const mse = sumSq / B;
    const sparsity = other ? other.value : (l1 * penalty) / B;
    const aux = auxSq / B;
    return {
      loss: mse + sparsity + aux, terms: { mse, [other?.name ?? "l1"]: sparsity, aux }, sumSquaredError: sumSq, xHat, code,
      ...(other?.schedule ? { schedule: other.schedule } : {}),
    };
  }

  /**
   * A penalty on the gate's code ReLU(pi_gate) in place of the L1 one: adds its gradient in
   * each gate entry's value to gGate and returns its value and dL/d||W_dec_j||; null (here)
   * for the L1 penalty, which the step's pass over the gate computes itself.
   */
  protected gatePenalty(_step: number, _gate: SparseCode, _norms: Float32Array, _gGate: Float32Array): GatePenalty | null {
    return null;
  }
}
