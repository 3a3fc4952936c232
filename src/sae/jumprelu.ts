/**
 * JumpReLU SAE (Rajamanoharan et al. 2024; SAELens "jumprelu", GDM's "step" L0):
 *   f = z * H(z - theta),  z = pre,  theta = exp(log_threshold),
 *   loss = ||x - x_hat||^2 + l0(t) * sum_j H(z_j - theta_j).
 * H has no useful derivative, so theta learns through the straight-through estimator
 * with a rectangle kernel K(u) = 1[|u| < 1/2] of bandwidth eps:
 *   d f / d theta = -(theta / eps) K((z - theta) / eps),   d H / d theta = -(1 / eps) K(...),
 * and d f / d z = H(z - theta). Only entries within eps/2 of their threshold feed theta, so
 * the step selects entries with z > theta - eps/2 and works on that sparse set.
 */
import { Tensor } from "../core/tensor.js";
import type { JumpReluConfig } from "./config.js";
import { warmup } from "./config.js";
import { LinearSae, type ParamSet, type StepStats, type TrainStep } from "./sae.js";
import { nnz, type SparseCode } from "./sparse-code.js";

export class JumpReluSae extends LinearSae {
  declare readonly cfg: JumpReluConfig;

  constructor(cfg: JumpReluConfig, params?: ParamSet) {
    super(cfg, params ?? undefined);
    if (!this.params.has("log_threshold")) {
      this.params.set("log_threshold", new Tensor([cfg.d_sae], new Float32Array(cfg.d_sae).fill(Math.log(cfg.init_threshold))));
    }
    this.param("log_threshold").expectShape([cfg.d_sae], "log_threshold");
  }

  /** theta = exp(log_threshold). */
  thresholds(): Float32Array {
    const lt = this.param("log_threshold").data;
    const theta = this.ws.float("theta", lt.length);
    for (let j = 0; j < lt.length; j++) theta[j] = Math.exp(lt[j]!);
    return theta;
  }

  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    return this.selectAbove(this.preActivations(xc, batch), batch, this.b_enc, this.thresholds(), "code");
  }

  lossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const m = this.cfg.d_sae;
    const B = s.batch;
    const eps = this.cfg.bandwidth;
    const theta = this.thresholds();
    const xc = this.centered(s.x, B);
    const pre = this.preActivations(xc, B);

    // Candidates: z > theta - eps/2 (the active set plus the lower half of the band).
    const low = this.ws.float("theta_low", m);
    for (let j = 0; j < m; j++) low[j] = theta[j]! - eps / 2;
    const cand = this.selectAbove(pre, B, this.b_enc, low, "cand");
    const nCand = nnz(cand);

    // The active code: candidates with z > theta.
    const code = this.codeBuffers("code", B, nCand);
    let n = 0;
    for (let b = 0; b < B; b++) {
      code.rowPtr[b] = n;
      for (let e = cand.rowPtr[b]!; e < cand.rowPtr[b + 1]!; e++) {
        if (cand.val[e]! > theta[cand.idx[e]!]!) {
          code.idx[n] = cand.idx[e]!;
          code.val[n++] = cand.val[e]!;
        }
      }
    }
    code.rowPtr[B] = n;

    const xHat = this.decode(code);
    const { sumSq, gXhat } = this.reconstruction(s.x, xHat, B);
    // dL/df for every candidate (active or within the band below theta).
    const gF = this.codeGrad(cand, gXhat, "cand_g");
    const l0 = this.cfg.l0_coefficient * warmup(s.step, this.cfg.l0_warmup_steps);
    const gLogTheta = grads.get("log_threshold")!.data;
    gLogTheta.fill(0);
    const gPre = this.ws.float("g_pre", n);
    let a = 0;
    for (let e = 0; e < nCand; e++) {
      const j = cand.idx[e]!;
      const z = cand.val[e]!;
      const t = theta[j]!;
      if (z > t) gPre[a++] = gF[e]!; // d f / d z = 1 on the active set
      if (Math.abs(z - t) < eps / 2) {
        // Straight-through: d/d log theta = theta * d/d theta.
        gLogTheta[j]! += t * (gF[e]! * (-t / eps) + (l0 / B) * (-1 / eps));
      }
    }
    this.scatterGrads(code, this.transpose(code, "code"), gXhat, gPre, xc, grads, false);
    this.bDecGrad(gXhat, B, grads);

    const mse = sumSq / B;
    const l0Term = (l0 * n) / B;
    return { loss: mse + l0Term, terms: { mse, l0: l0Term }, sumSquaredError: sumSq, xHat, code };
  }
}
