/**
 * Variational TopK SAE (vSAE; Baker & Li, "Analysis of Variational Sparse Autoencoders").
 *
 *   mu = act(pre)                 act = ReLU (relu_mu, the published code) or identity (paper)
 *   z  = mu + sigma * eps         training only; sigma = 1, or exp(logvar / 2) with
 *                                 logvar = clamp(W_lv (x - b_dec) + b_lv, -6, 2)
 *   f  = TopK(z)                  after ReLU, or by |z| keeping the sign (topk_mode)
 *   loss = ||x - x_hat||^2 + beta * min(1, t / kl_warmup_steps) * KL
 *   KL = 0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)   (= 0.5 sum mu^2 at sigma = 1)
 *
 * kl_scope "all" sums KL over every latent, as the paper does (and blames for its dead
 * features); "active" only over the k selected per token. Inference uses f = TopK(mu).
 *
 * The KL over all latents has a dense gradient, the one dense [batch, d_sae] backward in
 * saekit. With sigma fixed and no ReLU on mu it needs no [batch, d_sae] work at all:
 * sum_b mu_b xc_b^T = W_enc (sum_b xc_b xc_b^T) + b_enc (sum_b xc_b)^T, a d_in x d_in Gram
 * matrix instead of a second full-size GEMM.
 */
import { SelectMode } from "../core/kernels.js";
import { Tensor } from "../core/tensor.js";
import type { VsaeConfig } from "./config.js";
import { warmup } from "./config.js";
import type { ParamSet, StepStats, TrainStep } from "./sae.js";
import { nnz, type SparseCode } from "./sparse-code.js";
import { TopKFamilySae } from "./topk-family.js";

const LOGVAR_MIN = -6;
const LOGVAR_MAX = 2;
/** Initial bias of the log-variance head (the published code's). */
export const LOGVAR_INIT_BIAS = -2;

export class VariationalSae extends TopKFamilySae {
  declare readonly cfg: VsaeConfig;

  constructor(cfg: VsaeConfig, params?: ParamSet) {
    super(cfg, params);
    if (cfg.variance === "learned") {
      const { d_in: d, d_sae: m } = cfg;
      if (!this.params.has("W_logvar")) this.params.set("W_logvar", Tensor.zeros([m, d]));
      if (!this.params.has("b_logvar")) this.params.set("b_logvar", new Tensor([m], new Float32Array(m).fill(LOGVAR_INIT_BIAS)));
      this.param("W_logvar").expectShape([m, d], "W_logvar");
      this.param("b_logvar").expectShape([m], "b_logvar");
    }
  }

  /** Selection on z during training. */
  private get trainMode(): SelectMode {
    return this.cfg.topk_mode === "abs" ? SelectMode.Abs : SelectMode.Relu;
  }

  /** Inference selects on mu; with ReLU on mu, |mu| = mu and both modes agree. */
  private get inferMode(): SelectMode {
    return this.cfg.relu_mu ? SelectMode.Relu : this.trainMode;
  }

  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    return this.selectTopK(this.preActivations(xc, batch), batch, this.cfg.k, this.inferMode, this.b_enc);
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const { d_in: d, d_sae: m, relu_mu: reluMu } = this.cfg;
    const B = s.batch;
    const scope = this.cfg.kl_scope;
    const learned = this.cfg.variance === "learned";
    const a = this.cfg.beta * warmup(s.step, this.cfg.kl_warmup_steps);
    const b_enc = this.b_enc;

    const xc = this.centered(s.x, B);
    const pre = this.preActivations(xc, B);
    const logvar = learned ? this.logVariance(xc, B) : null;
    // z = act(pre + b_enc) + sigma * eps, with eps number (b*m + j) of noise stream `step`.
    const z = this.ws.float("z", B * m);
    const sumMuSq = this.k.sampleLatents(pre, B, m, b_enc, reluMu, logvar?.value ?? null, 1, s.seed, s.step >>> 0, z);
    const code = this.selectTopK(z, B, this.cfg.k, this.trainMode, null);
    // x_hat, dL/dx_hat and dL/dz at the selected entries; then to pre through z = mu + ...
    const target = this.reconstructionTarget(s, code);
    const { sumSq, xHat, gXhat, gVal: gZ } = this.reconstructFused(code, target, B, "", 1, grads);
    const n = nnz(code);
    const gPre = this.ws.float("g_pre", n);
    const gLv = learned ? this.ws.float("g_lv", n) : null;
    // pre and z where the code selected, gathered natively: read one by one here, each a
    // cache miss into [B, m], they cost a 4096 x 16384 step ~40 ms.
    const preAt = this.gathered(pre, code, "pre_at");
    const zAt = learned ? this.gathered(z, code, "z_at") : null;
    const lvAt = logvar ? this.gathered(logvar.value, code, "logvar_at") : null;
    let klActive = 0;
    for (let b = 0; b < B; b++) {
      for (let e = code.rowPtr[b]!; e < code.rowPtr[b + 1]!; e++) {
        const i = b * m + code.idx[e]!;
        const u = preAt[e]! + b_enc[code.idx[e]!]!;
        const mu = reluMu && u < 0 ? 0 : u;
        const pass = !reluMu || u > 0 ? 1 : 0;
        const g = this.trainMode === SelectMode.Relu && !(code.val[e]! > 0) ? 0 : gZ[e]!;
        let gMu = g;
        if (scope === "active") {
          gMu += (a / B) * mu;
          klActive += mu * mu;
        }
        gPre[e] = gMu * pass;
        if (gLv && logvar) {
          // dz/dlogvar = sigma * eps / 2 = (z - mu) / 2; the clamp passes gradient inside only.
          const lv = lvAt![e]!;
          let gl = g * 0.5 * (zAt![e]! - mu);
          if (scope === "active") {
            gl += (a / B) * 0.5 * (Math.exp(lv) - 1);
            klActive += Math.exp(lv) - 1 - lv;
          }
          gLv[e] = logvar.inside[i] ? gl : 0;
        }
      }
    }
    const t = this.transpose(code, "code");
    this.scatterGrads(code, t, null, gPre, xc, grads, false);

    let kl: number;
    if (scope === "active") {
      kl = (0.5 * klActive) / B;
    } else {
      kl = (0.5 * sumMuSq) / B;
      this.denseKlMuGrad(pre, xc, B, a / B, grads);
      if (logvar) kl += (0.5 * this.sumVarianceKl(logvar.value)) / B;
    }
    if (gLv && logvar) this.logVarianceGrads(code, t, gLv, logvar, xc, B, scope === "all" ? a / B : 0, grads);

    const aux = this.auxK(this.cfg, s.auxTarget ?? target, xHat, pre, xc, B, s.dead, this.inferMode, grads);
    this.outputGrads(gXhat, s, grads);
    if (learned && this.cfg.apply_b_dec_to_input) {
      // b_dec also reaches logvar through W_logvar (when subtracted from the input): -W_logvar^T grad(b_logvar).
      this.k.sgemm(false, false, 1, d, m, -1, grads.get("b_logvar")!.data, m, this.param("W_logvar").data, d, 1,
        grads.get("b_dec")!.data, d);
    }
    const mse = sumSq / B;
    const klTerm = a * kl;
    return { loss: mse + klTerm + aux, terms: { mse, kl: klTerm, kl_raw: kl, aux }, sumSquaredError: sumSq, xHat, code };
  }

  /** X [batch, d_sae]'s values at the code's entries, into the workspace buffer `name`. */
  private gathered(X: Float32Array, code: SparseCode, name: string): Float32Array {
    const out = this.ws.float(name, nnz(code));
    this.k.gatherEntries(X, code.batch, this.cfg.d_sae, code.rowPtr, code.idx, out);
    return out;
  }

  /** Adds the KL-over-all-latents part of dL/dpre = c * mu (c = weight / B) to W_enc, b_enc. */
  private denseKlMuGrad(pre: Float32Array, xc: Float32Array, B: number, c: number, grads: ParamSet): void {
    const { d_in: d, d_sae: m } = this.cfg;
    const gW = grads.get("W_enc")!.data;
    const gb = grads.get("b_enc")!.data;
    if (c === 0) return;
    if (!this.cfg.relu_mu) {
      // mu_b = W_enc xc_b + b_enc, so sum_b mu_b xc_b^T = W_enc G + b_enc s^T and
      // sum_b mu_b = W_enc s + B b_enc, with G = sum_b xc_b xc_b^T and s = sum_b xc_b.
      const G = this.ws.float("gram", d * d);
      this.k.sgemm(true, false, d, d, B, 1, xc, d, xc, d, 0, G, d);
      const sum = this.ws.float("xc_sum", d);
      this.k.colSums(xc, B, d, sum, false);
      this.k.sgemm(false, false, m, d, d, c, this.W_enc, d, G, d, 1, gW, d);
      this.k.sgemm(false, false, m, d, 1, c, this.b_enc, 1, sum, d, 1, gW, d);
      this.k.sgemm(false, true, 1, m, d, c, sum, d, this.W_enc, d, 1, gb, m);
      for (let j = 0; j < m; j++) gb[j]! += c * B * this.b_enc[j]!;
      return;
    }
    // With the ReLU, mu * act'(pre + b) = ReLU(pre + b): a dense [B, m] gradient and a GEMM.
    const gPreDense = this.ws.float("g_pre_dense", B * m);
    this.k.biasAct(pre, B, m, this.b_enc, true, c, gPreDense);
    this.k.sgemm(true, false, m, d, B, 1, gPreDense, m, xc, d, 1, gW, d);
    this.k.colSums(gPreDense, B, m, gb, true);
  }

  /** logvar = clamp(xc W_logvar^T + b_logvar, -6, 2), with where the clamp passes gradient. */
  private logVariance(xc: Float32Array, B: number): { value: Float32Array; inside: Uint8Array } {
    const { d_in: d, d_sae: m } = this.cfg;
    const value = this.ws.float("logvar", B * m);
    this.k.sgemm(false, true, B, m, d, 1, xc, d, this.param("W_logvar").data, d, 0, value, m);
    this.k.addRowVector(value, B, m, this.param("b_logvar").data);
    const inside = new Uint8Array(B * m);
    for (let i = 0; i < B * m; i++) {
      const v = value[i]!;
      inside[i] = v > LOGVAR_MIN && v < LOGVAR_MAX ? 1 : 0;
      value[i] = Math.min(LOGVAR_MAX, Math.max(LOGVAR_MIN, v));
    }
    return { value, inside };
  }

  /** sum over all entries of sigma^2 - 1 - log sigma^2 (the variance part of 2 KL). */
  private sumVarianceKl(logvar: Float32Array): number {
    let s = 0;
    for (let i = 0; i < logvar.length; i++) s += Math.exp(logvar[i]!) - 1 - logvar[i]!;
    return s;
  }

  /**
   * Gradients of W_logvar and b_logvar: the sparse reconstruction part gLv at the selected
   * entries, plus (scope all) the dense KL part c * (exp(logvar) - 1) / 2 everywhere.
   */
  private logVarianceGrads(code: SparseCode, t: { colPtr: Int32Array; entries: Int32Array; entryRow: Int32Array },
    gLv: Float32Array, logvar: { value: Float32Array; inside: Uint8Array }, xc: Float32Array, B: number,
    c: number, grads: ParamSet): void {
    const { d_in: d, d_sae: m } = this.cfg;
    const gW = grads.get("W_logvar")!.data;
    const gb = grads.get("b_logvar")!.data;
    if (c === 0) {
      this.k.sparseScatterRows(m, t.colPtr, t.entries, t.entryRow, gLv, xc, d, false, gW, gb);
      return;
    }
    const dense = this.ws.float("g_lv_dense", B * m);
    for (let i = 0; i < B * m; i++) dense[i] = logvar.inside[i] ? c * 0.5 * (Math.exp(logvar.value[i]!) - 1) : 0;
    for (let b = 0; b < B; b++) {
      for (let e = code.rowPtr[b]!; e < code.rowPtr[b + 1]!; e++) dense[b * m + code.idx[e]!]! += gLv[e]!;
    }
    this.k.sgemm(true, false, m, d, B, 1, dense, m, xc, d, 0, gW, d);
    this.k.colSums(dense, B, m, gb, false);
  }
}
