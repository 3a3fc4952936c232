/**
 * VAEase ("Sparse Autoencoders, Again?", Lu, Zhu, He, Wipf; ICML 2025).
 *
 * A VAE whose encoder variance doubles as a sparsity gate:
 *   h            = Swish MLP(x)                      (hidden = [] gives linear heads on x)
 *   mu, s        = W_mu h + b_mu,  W_s h + b_s
 *   log sigma^2  = -softplus(s) <= 0                 (sigma <= 1, as the paper requires)
 *   z            = mu + sigma * eps                  (training; eps ~ N(0, I))
 *   e            = (1 - sigma) * z                   (the VAEase gating: sigma -> 1 silences a dim)
 *   x_hat        = W_dec^T e + b_dec
 *   loss = ||x - x_hat||^2 / gamma + d log gamma + sum_j (sigma_j^2 + mu_j^2 - log sigma_j^2 - 1)
 * per token (= 2 * (-ELBO) up to the constant d log 2 pi), with gamma = exp(log_gamma) a
 * learned scalar decoder variance. Inference uses e = (1 - sigma) * mu.
 *
 * With gate = false the decoder sees z itself (e = z, inference mu): the plain VAE the paper
 * compares against, which can only switch a dimension off for every input at once.
 *
 * Active dimensions of a token are the low-variance group of a two-cluster split of its
 * log-variances (activeDims), as the authors count them. The latent count is small
 * (kappa, the paper's 20-512), so everything here is dense.
 */
import { Tensor } from "../core/tensor.js";
import { kernels } from "../core/kernels.js";
import type { VaeaseConfig } from "./config.js";
import { type ParamSet, type Sae, type StepStats, type TrainStep, targetOf } from "./sae.js";
import { fixedKRowPtr, type SparseCode } from "./sparse-code.js";
import { Workspace } from "../core/workspace.js";

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

interface Forward {
  /** Layer inputs (x, then each hidden activation) and pre-activations of hidden layers. */
  inputs: Float32Array[];
  hiddenPre: Float32Array[];
  mu: Float32Array;
  /** log sigma^2 = -softplus(s), and with it sigma and sigmoid(s) = 1 - sigma^2. */
  logvar: Float32Array;
  sigma: Float32Array;
  gate: Float32Array;
}

export class VaeaseSae implements Sae {
  readonly params: ParamSet;
  readonly buffers: ParamSet = new Map();
  private readonly ws = new Workspace();
  private readonly k = kernels();

  constructor(readonly cfg: VaeaseConfig, params?: ParamSet) {
    const { d_in: d, d_sae: kappa } = cfg;
    const widths = [d, ...cfg.hidden];
    const last = widths[widths.length - 1]!;
    const shapes: Array<[string, number[]]> = [];
    cfg.hidden.forEach((h, i) => {
      shapes.push([`W_h${i}`, [h, widths[i]!]], [`b_h${i}`, [h]]);
    });
    shapes.push(["W_mu", [kappa, last]], ["b_mu", [kappa]], ["W_s", [kappa, last]], ["b_s", [kappa]],
      ["W_dec", [kappa, d]], ["b_dec", [d]], ["log_gamma", [1]]);
    this.params = params ?? new Map(shapes.map(([n, s]) => [n, Tensor.zeros(s)]));
    for (const [n, s] of shapes) {
      const t = this.params.get(n);
      if (!t) throw new Error(`vaease SAE: missing parameter "${n}"`);
      t.expectShape(s, n);
    }
    if (!params) this.params.get("log_gamma")!.data[0] = cfg.init_log_gamma;
  }

  private p(name: string): Float32Array {
    return this.params.get(name)!.data;
  }

  /** y[B, out] = x[B, in] W^T + b. */
  private linear(x: Float32Array, B: number, W: string, b: string, name: string): Float32Array {
    const [out, inp] = this.params.get(W)!.shape as [number, number];
    const y = this.ws.float(name, B * out);
    this.k.sgemm(false, true, B, out, inp, 1, x, inp, this.p(W), inp, 0, y, out);
    this.k.addRowVector(y, B, out, this.p(b));
    return y;
  }

  private encoder(x: Float32Array, B: number): Forward {
    const inputs = [x.subarray(0, B * this.cfg.d_in)];
    const hiddenPre: Float32Array[] = [];
    this.cfg.hidden.forEach((_, i) => {
      const a = this.linear(inputs[i]!, B, `W_h${i}`, `b_h${i}`, `a${i}`);
      const h = this.ws.float(`h${i}`, a.length);
      for (let t = 0; t < a.length; t++) h[t] = a[t]! * sigmoid(a[t]!);
      hiddenPre.push(a);
      inputs.push(h);
    });
    const top = inputs[inputs.length - 1]!;
    const mu = this.linear(top, B, "W_mu", "b_mu", "mu");
    const sPre = this.linear(top, B, "W_s", "b_s", "s_pre");
    const logvar = this.ws.float("logvar", sPre.length);
    const sigma = this.ws.float("sigma", sPre.length);
    const gate = this.ws.float("gate", sPre.length);
    for (let t = 0; t < sPre.length; t++) {
      // One exp and one log per entry, overflow-free: with e = exp(-|s|) in (0, 1],
      // softplus(s) = max(s, 0) + log(1 + e) and sigmoid(s) = 1/(1+e) or e/(1+e).
      const v = sPre[t]!;
      const e = Math.exp(-Math.abs(v));
      logvar[t] = -(Math.max(v, 0) + Math.log(1 + e));
      const sig = v >= 0 ? 1 / (1 + e) : e / (1 + e);
      gate[t] = sig;
      sigma[t] = Math.sqrt(1 - sig); // sigma^2 = exp(-softplus(s)) = 1 - sigmoid(s)
    }
    return { inputs, hiddenPre, mu, logvar, sigma, gate };
  }

  /** Log-variances [batch, kappa] of x (for active-dimension counting). */
  logVariances(x: Float32Array, batch: number): Float32Array {
    return this.encoder(x, batch).logvar.slice();
  }

  /** Inference code e = (1 - sigma) * mu (mu without the gate), every latent present. */
  encode(x: Float32Array, batch: number): SparseCode {
    const kappa = this.cfg.d_sae;
    const f = this.encoder(x, batch);
    const code = this.denseCode(batch);
    for (let t = 0; t < batch * kappa; t++) code.val[t] = this.cfg.gate ? (1 - f.sigma[t]!) * f.mu[t]! : f.mu[t]!;
    return code;
  }

  private denseCode(batch: number): SparseCode {
    const kappa = this.cfg.d_sae;
    const idx = this.ws.int("code_idx", batch * kappa);
    for (let b = 0; b < batch; b++) for (let j = 0; j < kappa; j++) idx[b * kappa + j] = j;
    return { batch, m: kappa, rowPtr: fixedKRowPtr(batch, kappa, this.ws.int("code_row_ptr", batch + 1)), idx, val: this.ws.float("code_val", batch * kappa) };
  }

  decode(code: SparseCode): Float32Array {
    const { d_in: d, d_sae: kappa } = this.cfg;
    const out = this.ws.float("x_hat", code.batch * d);
    if (isDenseCode(code, kappa)) {
      // A dense code (what encode and training produce): one GEMM, e W_dec + b_dec.
      this.k.sgemm(false, false, code.batch, d, kappa, 1, code.val, kappa, this.p("W_dec"), d, 0, out, d);
      this.k.addRowVector(out, code.batch, d, this.p("b_dec"));
    } else {
      this.k.sparseDecode(code.batch, code.rowPtr, code.idx, code.val, this.p("W_dec"), d, this.p("b_dec"), out);
    }
    return out;
  }

  lossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const { d_in: d, d_sae: kappa } = this.cfg;
    const B = s.batch;
    const n = B * kappa;
    const f = this.encoder(s.x, B);
    const eps = this.ws.float("eps", n);
    this.k.fillNormal(eps, s.seed, s.step >>> 0, 0);
    const sigma = f.sigma;
    const z = this.ws.float("z", n);
    const code = this.denseCode(B);
    const e = code.val;
    const gated = this.cfg.gate;
    let klSum = 0;
    for (let t = 0; t < n; t++) {
      z[t] = f.mu[t]! + sigma[t]! * eps[t]!;
      e[t] = gated ? (1 - sigma[t]!) * z[t]! : z[t]!;
      klSum += sigma[t]! ** 2 + f.mu[t]! ** 2 - f.logvar[t]! - 1;
    }
    const xHat = this.decode(code);
    const logGamma = this.p("log_gamma")[0]!;
    const gamma = Math.exp(logGamma);
    const gXhat = this.ws.float("g_xhat", B * d);
    const sumSq = this.k.diffScaled(xHat, targetOf(s).subarray(0, B * d), gXhat, 2 / (B * gamma));

    // Decoder and gamma.
    this.k.sgemm(true, false, kappa, d, B, 1, e, kappa, gXhat, d, 0, grads.get("W_dec")!.data, d);
    this.k.colSums(gXhat, B, d, grads.get("b_dec")!.data, false);
    grads.get("log_gamma")!.data[0] = -sumSq / (B * gamma) + d;

    // Through e = (1 - sigma) z (or e = z), z = mu + sigma eps, sigma = exp(logvar / 2),
    // logvar = -softplus(s).
    const gE = this.ws.float("g_e", n);
    this.k.sgemm(false, true, B, kappa, d, 1, gXhat, d, this.p("W_dec"), d, 0, gE, kappa);
    const gMu = this.ws.float("g_mu", n);
    const gS = this.ws.float("g_s", n);
    for (let t = 0; t < n; t++) {
      const sg = sigma[t]!;
      gMu[t] = gE[t]! * (gated ? 1 - sg : 1) + (2 / B) * f.mu[t]!;
      const gSigma = gated ? gE[t]! * (-z[t]! + (1 - sg) * eps[t]!) : gE[t]! * eps[t]!;
      const gLogvar = gSigma * 0.5 * sg + (1 / B) * (sg * sg - 1);
      gS[t] = gLogvar * -f.gate[t]!; // d logvar / d s = -sigmoid(s)
    }
    // Heads, then back through the hidden layers.
    const top = f.inputs[f.inputs.length - 1]!;
    const width = top.length / B;
    this.k.sgemm(true, false, kappa, width, B, 1, gMu, kappa, top, width, 0, grads.get("W_mu")!.data, width);
    this.k.colSums(gMu, B, kappa, grads.get("b_mu")!.data, false);
    this.k.sgemm(true, false, kappa, width, B, 1, gS, kappa, top, width, 0, grads.get("W_s")!.data, width);
    this.k.colSums(gS, B, kappa, grads.get("b_s")!.data, false);
    if (this.cfg.hidden.length > 0) {
      let gH = this.ws.float(`g_h${this.cfg.hidden.length - 1}`, B * width);
      this.k.sgemm(false, false, B, width, kappa, 1, gMu, kappa, this.p("W_mu"), width, 0, gH, width);
      this.k.sgemm(false, false, B, width, kappa, 1, gS, kappa, this.p("W_s"), width, 1, gH, width);
      for (let i = this.cfg.hidden.length - 1; i >= 0; i--) {
        const a = f.hiddenPre[i]!;
        const out = this.cfg.hidden[i]!;
        const inp = f.inputs[i]!.length / B;
        // Swish'(a) = sigmoid(a) (1 + a (1 - sigmoid(a))).
        for (let t = 0; t < a.length; t++) {
          const sa = sigmoid(a[t]!);
          gH[t]! *= sa * (1 + a[t]! * (1 - sa));
        }
        this.k.sgemm(true, false, out, inp, B, 1, gH, out, f.inputs[i]!, inp, 0, grads.get(`W_h${i}`)!.data, inp);
        this.k.colSums(gH, B, out, grads.get(`b_h${i}`)!.data, false);
        if (i > 0) {
          const gPrev = this.ws.float(`g_h${i - 1}`, B * inp);
          this.k.sgemm(false, false, B, inp, out, 1, gH, out, this.p(`W_h${i}`), inp, 0, gPrev, inp);
          gH = gPrev;
        }
      }
    }
    const recon = sumSq / (B * gamma);
    const kl = klSum / B;
    const loss = recon + d * logGamma + kl;
    return {
      loss,
      terms: { mse: sumSq / B, recon, log_gamma: d * logGamma, kl },
      sumSquaredError: sumSq,
      xHat,
      code,
    };
  }
}

/** True when a code lists every latent of every row in order (a dense matrix in CSR form). */
function isDenseCode(code: SparseCode, m: number): boolean {
  if (code.rowPtr[code.batch] !== code.batch * m) return false;
  for (let b = 0; b < code.batch; b++) {
    if (code.rowPtr[b] !== b * m) return false;
    for (let j = 0; j < m; j++) if (code.idx[b * m + j] !== j) return false;
  }
  return true;
}

/**
 * Number of active dimensions of one token: sort its log-variances, split them into two
 * groups minimising the within-group sum of squared deviations, and count the low-variance
 * group (the authors' find_optimal_threshold). With a single value, it is active.
 */
export function activeDims(logvar: ArrayLike<number>): number {
  const v = Array.from(logvar).sort((a, b) => a - b);
  const n = v.length;
  if (n <= 1) return n;
  // Prefix sums give each split's SSE in O(1): SSE = sum x^2 - (sum x)^2 / count.
  const s1 = new Float64Array(n + 1);
  const s2 = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    s1[i + 1] = s1[i]! + v[i]!;
    s2[i + 1] = s2[i]! + v[i]! * v[i]!;
  }
  const sse = (a: number, b: number) => s2[b]! - s2[a]! - (s1[b]! - s1[a]!) ** 2 / (b - a);
  let best = 1;
  let bestCost = Infinity;
  for (let split = 1; split < n; split++) {
    const cost = sse(0, split) + sse(split, n);
    if (cost < bestCost - 1e-12) {
      bestCost = cost;
      best = split;
    }
  }
  return best;
}
