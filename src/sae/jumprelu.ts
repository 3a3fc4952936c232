/**
 * JumpReLU SAE (Rajamanoharan et al. 2024; SAELens "jumprelu"):
 *   f = z * H(z - theta),  z = pre,  theta = exp(log_threshold),
 *   loss = ||x - x_hat||^2 + l0(t) * S + pre_act,
 * with the sparsity S either GDM's L0, sum_j H(z_j - theta_j) ("step"), or Anthropic's
 * smooth count sum_j tanh(c f_j ||W_dec_j||) ("tanh", c = tanh_scale) — or, with a
 * target_l0, dictionary_learning's l0(t) * (L0 / target_l0 - 1)^2 on the batch's mean L0
 * in place of l0(t) * S — and, when its
 * coefficient is set, Anthropic's pre-activation loss on the latents the trainer counts
 * dead (as SAELens applies it): pre_act = a * sum_{j dead} relu(theta_j - z_j) ||W_dec_j||,
 * which pushes a dead latent's pre-activations up toward its threshold. All terms are per
 * token, averaged over the batch.
 *
 * H has no useful derivative, so theta learns through the straight-through estimator
 * with a rectangle kernel K(u) = 1[|u| < 1/2] of bandwidth eps:
 *   d f / d theta = -(theta / eps) K((z - theta) / eps),   d H / d theta = -(1 / eps) K(...),
 * and d f / d z = H(z - theta). Only entries within eps/2 of their threshold feed theta, so
 * the step selects entries with z > theta - eps/2 and works on that sparse set (the
 * pre-activation loss alone reads the dead latents' columns densely).
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

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
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

    // The active code, candidates with z > theta, and the rest: the band below theta, which
    // only the threshold's straight-through gradient reads. (The arrays in locals: a fresh
    // SAE has tens of millions of candidates, and these loops are most of its step's own time.)
    const code = this.codeBuffers("code", B, nCand);
    const below = this.codeBuffers("below", B, nCand);
    const { rowPtr: cRow, idx: cIdx, val: cVal } = cand;
    const { rowPtr, idx, val } = code;
    let n = 0;
    let nBelow = 0;
    for (let b = 0; b < B; b++) {
      rowPtr[b] = n;
      below.rowPtr[b] = nBelow;
      const end = cRow[b + 1]!;
      for (let e = cRow[b]!; e < end; e++) {
        const j = cIdx[e]!;
        const z = cVal[e]!;
        if (z > theta[j]!) {
          idx[n] = j;
          val[n++] = z;
        } else {
          below.idx[nBelow] = j;
          below.val[nBelow++] = z;
        }
      }
    }
    rowPtr[B] = n;
    below.rowPtr[B] = nBelow;

    // The reconstruction and W_dec's gradient in one pass, with dL/df on the active code;
    // the band below theta gets its dL/df from row dots of its own. gF: both, per candidate.
    const { sumSq, xHat, gXhat, gVal } = this.reconstructFused(code, this.reconstructionTarget(s, code), B, "", 1, grads);
    const gBelow = this.codeGrad(below, gXhat, "below_g");
    const l0 = this.cfg.l0_coefficient * warmup(s.step, this.cfg.l0_warmup_steps);
    const tanhMode = this.cfg.sparsity_loss_mode === "tanh";
    const c = this.cfg.tanh_scale;
    // Only the tanh count and the pre-activation loss read the decoder norms; the plain step
    // count does not pay for them.
    const readsNorms = tanhMode || this.cfg.pre_act_loss_coefficient > 0;
    const norms = readsNorms ? this.decoderNorms() : null;
    const gNorm = readsNorms ? this.ws.float("g_dec_norm", m).fill(0) : null;
    // What one more firing entry adds to the loss, for the straight-through threshold
    // gradient: l0 / B for the count; for the target penalty l0 (L0/t - 1)^2, L0 = n / B,
    // its derivative 2 l0 (L0/t - 1) / (t B).
    const target = this.cfg.target_l0;
    let perEntry = l0 / B;
    if (target > 0) perEntry = (2 * l0 * (n / B / target - 1)) / (target * B);
    const gLogTheta = grads.get("log_threshold")!.data;
    gLogTheta.fill(0);
    // One pass over the candidates, in order: the active ones' dL/df in gVal (which becomes
    // dL/dpre: d f / d z = 1 there), the band's below theta in gBelow.
    const gPre = gVal;
    const halfBand = eps / 2;
    const countTerm = tanhMode ? 0 : perEntry * (-1 / eps);
    let sparsity = tanhMode ? 0 : n;
    let a = 0;
    let r = 0;
    for (let e = 0; e < nCand; e++) {
      const j = cIdx[e]!;
      const z = cVal[e]!;
      const t = theta[j]!;
      const active = z > t;
      let g = active ? gVal[a]! : gBelow[r]!;
      if (tanhMode) {
        // d/df of (l0 / B) tanh(c f n_j) reaches every candidate (at f = 0 too, where the
        // straight-through estimator passes it on to theta), and d/dn_j collects c f sech^2.
        const f = active ? z : 0;
        const th = Math.tanh(c * f * norms![j]!);
        const sech2 = 1 - th * th;
        sparsity += th;
        g += (l0 / B) * c * norms![j]! * sech2;
        gNorm![j]! += (l0 / B) * c * f * sech2;
      }
      if (active) gPre[a++] = g;
      else r++;
      if (z - t < halfBand && t - z < halfBand) {
        // Straight-through: d/d log theta = theta * d/d theta; the step count's own term in step mode.
        gLogTheta[j]! += t * (g * (-t / eps) + countTerm);
      }
    }
    this.scatterGrads(code, "code", null, gPre, xc, grads, false);
    const preAct = norms ? this.preActLoss(pre, xc, theta, norms, s.dead, B, grads, gNorm!) : 0;
    if (norms) this.addNormGrads(gNorm!, norms, grads);
    this.outputGrads(gXhat, s, grads);

    const mse = sumSq / B;
    const l0Term = target > 0 ? l0 * (n / B / target - 1) ** 2 : (l0 * sparsity) / B;
    return {
      // "l0_loss", as SAELens names it: "l0" in the metrics is the L0 itself.
      loss: mse + l0Term + preAct, terms: { mse, l0_loss: l0Term, ...(this.cfg.pre_act_loss_coefficient > 0 ? { pre_act: preAct } : {}) },
      sumSquaredError: sumSq, xHat, code,
    };
  }

  /**
   * Anthropic's pre-activation loss over the dead latents, a/B sum_b sum_{j dead}
   * relu(theta_j - z_bj) n_j: gradients -a n_j / B into z (so W_enc, b_enc) and
   * +a n_j theta_j / B into log theta wherever z < theta, and its norm part into gNorm.
   * Returns the loss (0 when off or nothing is dead).
   *
   * The dead latents' columns of pre are gathered a block of rows at a time into a dense
   * [rows, D] block, row-major: walking the columns of pre one latent at a time instead
   * read each value from its own cache line (~250 ms a step with 2048 of 16384 dead).
   */
  private preActLoss(pre: Float32Array, xc: Float32Array, theta: Float32Array, norms: Float32Array,
    dead: Uint8Array | null, B: number, grads: ParamSet, gNorm: Float32Array): number {
    const coef = this.cfg.pre_act_loss_coefficient;
    if (!(coef > 0) || !dead) return 0;
    const { d_in: d, d_sae: m } = this.cfg;
    let D = 0;
    for (let j = 0; j < m; j++) if (dead[j]) D++;
    if (D === 0) return 0;
    const cols = this.ws.int("preact_cols", D);
    for (let j = 0, r = 0; j < m; j++) if (dead[j]) cols[r++] = j;
    // Per dead latent: its bias and threshold, -a n_j / B (dL/dz below the threshold), and
    // over the batch the count of tokens below its threshold and their summed gap.
    const bias = this.ws.float("preact_bias", D), limit = this.ws.float("preact_theta", D), slope = this.ws.float("preact_slope", D);
    for (let r = 0; r < D; r++) {
      const j = cols[r]!;
      bias[r] = this.b_enc[j]!;
      limit[r] = theta[j]!;
      slope[r] = (-coef * norms[j]!) / B;
    }
    const below = new Float64Array(D), gap = new Float64Array(D);
    // G [rows, D] holds dL/dz for each token and dead latent, in place of the gathered block;
    // gW [D, d] += G^T xc sums the W_enc rows' gradients over the blocks.
    const blockRows = Math.max(1, Math.min(B, Math.floor(PREACT_BLOCK_FLOATS / D)));
    const G = this.ws.float("preact_g", blockRows * D);
    const gW = this.ws.float("preact_g_w", D * d);
    for (let b0 = 0; b0 < B; b0 += blockRows) {
      const rows = Math.min(blockRows, B - b0);
      this.k.gatherColumns(pre.subarray(b0 * m), rows, m, cols, D, G);
      for (let b = 0; b < rows; b++) {
        const row = b * D;
        for (let r = 0; r < D; r++) {
          const z = G[row + r]! + bias[r]!;
          if (z < limit[r]!) {
            below[r]!++;
            gap[r]! += limit[r]! - z;
            G[row + r] = slope[r]!;
          } else {
            G[row + r] = 0;
          }
        }
      }
      this.k.sgemm(true, false, D, d, rows, 1, G, D, xc.subarray(b0 * d), d, b0 === 0 ? 0 : 1, gW, d);
    }
    const gLogTheta = grads.get("log_threshold")!.data;
    const gb = grads.get("b_enc")!.data;
    const gWenc = grads.get("W_enc")!.data;
    let loss = 0;
    for (let r = 0; r < D; r++) {
      const j = cols[r]!;
      loss += (coef * norms[j]! * gap[r]!) / B;
      gNorm[j]! += (coef * gap[r]!) / B;
      gLogTheta[j]! += (coef * norms[j]! * theta[j]! * below[r]!) / B;
      gb[j]! += (-coef * norms[j]! * below[r]!) / B;
      for (let i = 0; i < d; i++) gWenc[j * d + i]! += gW[r * d + i]!;
    }
    return loss;
  }
}

/** The most floats of gathered pre-activations the pre-activation loss holds at once (16 MB). */
const PREACT_BLOCK_FLOATS = 1 << 22;
