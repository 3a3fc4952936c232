/**
 * Float64 reference forwards of every SAE architecture: the plainest loops computing each
 * loss from its definition (src/sae/*.ts docs). The gradient check differentiates these
 * by central finite differences and holds the hand-written float32 backwards to them.
 */
import { counterNormal } from "../../src/core/rng.js";
import type { SaeConfig } from "../../src/sae/config.js";
import { warmup } from "../../src/sae/config.js";

export type Params64 = Map<string, Float64Array>;

export interface RefStep {
  x: Float64Array;
  batch: number;
  step: number;
  seed: number;
  dead: Uint8Array | null;
  /** What to reconstruct, when not x (a transcoder's output activations). */
  target?: Float64Array;
  /**
   * AuxK reconstructs the residual e = x - x_hat as a constant (the implementations
   * detach it), so the check freezes e at the unperturbed parameters: when set, AuxK uses
   * this [batch * d_in] residual; when not, it computes e and stores it here.
   */
  auxResidual?: Float64Array;
  /**
   * The gated SAE's auxiliary reconstruction uses the decoder as a constant (stop-gradient);
   * the check freezes W_dec, b_dec (and W_skip) for it at the unperturbed parameters, likewise.
   */
  frozenDecoder?: { W: Float64Array; b: Float64Array; skip: Float64Array | undefined };
  /** p-annealing's exponent and coefficient in force (default: the config's p_start and l1_coefficient). */
  annealing?: { p: number; coefficient: number };
}

/** y = W v + b for W [rows, cols] (row-major). */
function affine(W: Float64Array, b: Float64Array | null, v: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r]! : 0;
    for (let c = 0; c < cols; c++) s += W[r * cols + c]! * v[c]!;
    y[r] = s;
  }
  return y;
}

/** x_hat = sum_j f_j W_dec_j + bias. */
function decode(W: Float64Array, f: Float64Array, d: number, bias: Float64Array | null): Float64Array {
  const out = new Float64Array(d);
  for (let c = 0; c < d; c++) out[c] = bias ? bias[c]! : 0;
  for (let j = 0; j < f.length; j++) if (f[j] !== 0) for (let c = 0; c < d; c++) out[c]! += f[j]! * W[j * d + c]!;
  return out;
}

/** The decoder's bias for row b: b_dec, plus W_skip x_b with a skip connection. */
function outputBias(bDec: Float64Array, W_skip: Float64Array | undefined, x: Float64Array, b: number, d: number): Float64Array {
  return W_skip ? affine(W_skip, bDec, x.subarray(b * d, (b + 1) * d), d, d) : bDec;
}

const sq = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
};

/** Indices of the k best keys (key desc, index asc); NaN keys rank last. */
function topIndices(keys: number[], k: number): number[] {
  const order = keys.map((_, j) => j);
  const key = (j: number) => (Number.isNaN(keys[j]!) ? -Infinity : keys[j]!);
  order.sort((a, b) => key(b) - key(a) || a - b);
  return order.slice(0, k);
}

function preActs(p: Params64, cfg: SaeConfig, x: Float64Array, b: number): { xc: number[]; pre: Float64Array } {
  const d = cfg.d_in;
  const xc = Array.from({ length: d }, (_, c) => x[b * d + c]! - (cfg.apply_b_dec_to_input ? p.get("b_dec")![c]! : 0));
  return { xc, pre: affine(p.get("W_enc")!, p.get("b_enc")!, xc, cfg.d_sae, d) };
}

/** The AuxK loss given each row's pre-activations (with b_enc) and reconstructions. */
function auxLoss(cfg: SaeConfig & { aux_k: number; aux_alpha: number }, p: Params64, s: RefStep,
  pres: Float64Array[], xHats: Float64Array[], abs: boolean): number {
  if (!s.dead || cfg.aux_k === 0 || cfg.aux_alpha === 0) return 0;
  const { d_in: d, d_sae: m } = cfg;
  const nDead = s.dead.reduce((a, v) => a + v, 0);
  if (nDead === 0) return 0;
  const kAux = Math.min(cfg.aux_k, nDead);
  if (!s.auxResidual) {
    s.auxResidual = new Float64Array(s.batch * d);
    for (let b = 0; b < s.batch; b++) for (let c = 0; c < d; c++) s.auxResidual[b * d + c] = (s.target ?? s.x)[b * d + c]! - xHats[b]![c]!;
  }
  const frozen = s.auxResidual;
  const e = Array.from({ length: s.batch }, (_, b) => Array.from(frozen.subarray(b * d, (b + 1) * d)));
  const mean = Array.from({ length: d }, (_, c) => e.reduce((acc, row) => acc + row[c]!, 0) / s.batch);
  let denom = 0;
  let num = 0;
  for (let b = 0; b < s.batch; b++) {
    const keys = Array.from(pres[b]!, (v, j) => (s.dead![j] ? (abs ? Math.abs(v) : v) : NaN));
    const f = new Float64Array(m);
    for (const j of topIndices(keys, kAux)) f[j] = abs ? pres[b]![j]! : Math.max(0, pres[b]![j]!);
    num += sq(e[b]!, decode(p.get("W_dec")!, f, d, null));
    denom += sq(e[b]!, mean);
  }
  return denom > 0 ? (cfg.aux_alpha * num) / denom : 0;
}

export function referenceLoss(cfg: SaeConfig, p: Params64, s: RefStep): number {
  const { d_in: d, d_sae: m } = cfg;
  const B = s.batch;
  const xRow = (b: number) => s.x.subarray(b * d, (b + 1) * d);
  // The reconstruction target: x for an SAE, the output activations for a transcoder.
  const yRow = (b: number) => (s.target ?? s.x).subarray(b * d, (b + 1) * d);
  const bias = (b: number) => outputBias(p.get("b_dec")!, p.get("W_skip"), s.x, b, d);
  switch (cfg.architecture) {
    case "topk":
    case "abstopk": {
      const abs = cfg.architecture === "abstopk";
      let mse = 0;
      const pres: Float64Array[] = [];
      const xHats: Float64Array[] = [];
      for (let b = 0; b < B; b++) {
        const { pre } = preActs(p, cfg, s.x, b);
        const code = (k: number) => {
          const f = new Float64Array(m);
          for (const j of topIndices(Array.from(pre, (v) => (abs ? Math.abs(v) : v)), k)) f[j] = abs ? pre[j]! : Math.max(0, pre[j]!);
          return f;
        };
        // groupmax: the largest of each of k runs of m / k latents, after ReLU.
        const groupMax = () => {
          const f = new Float64Array(m);
          const size = m / cfg.k;
          for (let g = 0; g < cfg.k; g++) {
            const j = g * size + topIndices(Array.from(pre.subarray(g * size, (g + 1) * size)), 1)[0]!;
            f[j] = Math.max(0, pre[j]!);
          }
          return f;
        };
        const xHat = decode(p.get("W_dec")!, cfg.activation === "groupmax" ? groupMax() : code(cfg.k), d, bias(b));
        mse += sq(yRow(b), xHat);
        // Multi-TopK: the top 4k reconstruct too, weighted 1/8.
        if (cfg.multi_topk) mse += sq(yRow(b), decode(p.get("W_dec")!, code(Math.min(4 * cfg.k, m)), d, bias(b))) / 8;
        pres.push(pre);
        xHats.push(xHat);
      }
      return mse / B + auxLoss(cfg, p, s, pres, xHats, abs);
    }
    case "batchtopk": {
      const pres = Array.from({ length: B }, (_, b) => preActs(p, cfg, s.x, b).pre);
      const flat = pres.flatMap((row) => Array.from(row));
      const chosen = new Set(topIndices(flat, cfg.k * B));
      let mse = 0;
      const xHats: Float64Array[] = [];
      for (let b = 0; b < B; b++) {
        const f = new Float64Array(m);
        for (let j = 0; j < m; j++) if (chosen.has(b * m + j)) f[j] = Math.max(0, pres[b]![j]!);
        const xHat = decode(p.get("W_dec")!, f, d, bias(b));
        mse += sq(yRow(b), xHat);
        xHats.push(xHat);
      }
      return mse / B + auxLoss(cfg, p, s, pres, xHats, false);
    }
    case "matryoshka": {
      // One BatchTopK selection; level i reconstructs from the latents below widths[i].
      const pres = Array.from({ length: B }, (_, b) => preActs(p, cfg, s.x, b).pre);
      const chosen = new Set(topIndices(pres.flatMap((row) => Array.from(row)), cfg.k * B));
      let loss = 0;
      const xHats: Float64Array[] = [];
      for (let b = 0; b < B; b++) {
        const f = new Float64Array(m);
        for (let j = 0; j < m; j++) if (chosen.has(b * m + j)) f[j] = Math.max(0, pres[b]![j]!);
        cfg.matryoshka_widths.forEach((width, i) => {
          const prefix = f.map((v, j) => (j < width ? v : 0));
          const xHat = decode(p.get("W_dec")!, prefix, d, bias(b));
          loss += cfg.level_weights[i]! * sq(yRow(b), xHat);
          if (width === m) xHats.push(xHat);
        });
      }
      return loss / B + auxLoss(cfg, p, s, pres, xHats, false);
    }
    case "relu":
    case "panneal": {
      // relu: l1 * sum_j f_j n_j. panneal: alpha * sum_j (f_j n_j)^p ("Lp^p", or its 1/p-th power),
      // with the exponent and coefficient in force: the config's starting ones unless the step says.
      const anneal = cfg.architecture === "panneal";
      const { p: exponent, coefficient } = !anneal ? { p: 1, coefficient: cfg.l1_coefficient }
        : s.annealing ?? { p: cfg.p_start, coefficient: cfg.l1_coefficient };
      const alpha = coefficient * warmup(s.step, cfg.l1_warmup_steps);
      const W = p.get("W_dec")!;
      const norms = Array.from({ length: m }, (_, j) => Math.hypot(...W.subarray(j * d, (j + 1) * d)));
      let total = 0;
      for (let b = 0; b < B; b++) {
        const f = preActs(p, cfg, s.x, b).pre.map((v) => Math.max(0, v));
        total += sq(yRow(b), decode(W, f, d, bias(b)));
        let sum = 0;
        for (let j = 0; j < m; j++) if (f[j]! > 0) sum += (f[j]! * norms[j]!) ** exponent;
        total += alpha * (anneal && cfg.sparsity_function === "Lp" ? sum ** (1 / exponent) : sum);
      }
      return total / B;
    }
    case "gated":
    case "gated_anneal": {
      // gated: l1 * sum_j ReLU(pi_gate_j) n_j. gated_anneal: alpha * sum_j (ReLU(pi_gate_j) n_j)^p
      // ("Lp^p", or its 1/p-th power), as panneal's penalty on the gate.
      const anneal = cfg.architecture === "gated_anneal";
      const { p: exponent, coefficient } = !anneal ? { p: 1, coefficient: cfg.l1_coefficient }
        : s.annealing ?? { p: cfg.p_start, coefficient: cfg.l1_coefficient };
      const l1 = coefficient * warmup(s.step, cfg.l1_warmup_steps);
      const W = p.get("W_dec")!;
      const norms = Array.from({ length: m }, (_, j) => Math.hypot(...W.subarray(j * d, (j + 1) * d)));
      s.frozenDecoder ??= { W: Float64Array.from(W), b: Float64Array.from(p.get("b_dec")!), skip: p.has("W_skip") ? Float64Array.from(p.get("W_skip")!) : undefined };
      const rMag = p.get("r_mag")!, bMag = p.get("b_mag")!, bGate = p.get("b_enc")!;
      let total = 0;
      for (let b = 0; b < B; b++) {
        // preActs adds b_enc (the gate bias); the magnitude path wants the bare W_enc (x - b_dec).
        const piGate = preActs(p, cfg, s.x, b).pre;
        const gate = piGate.map((v) => Math.max(0, v));
        const f = piGate.map((v, j) => (v > 0 ? Math.max(0, Math.exp(rMag[j]!) * (v - bGate[j]!) + bMag[j]!) : 0));
        total += sq(yRow(b), decode(W, f, d, bias(b)));
        let sum = 0;
        for (let j = 0; j < m; j++) if (gate[j]! > 0) sum += (gate[j]! * norms[j]!) ** exponent;
        total += l1 * (anneal && cfg.sparsity_function === "Lp" ? sum ** (1 / exponent) : sum);
        total += sq(yRow(b), decode(s.frozenDecoder.W, gate, d, outputBias(s.frozenDecoder.b, s.frozenDecoder.skip, s.x, b, d)));
      }
      return total / B;
    }
    case "jumprelu": {
      const l0 = cfg.l0_coefficient * warmup(s.step, cfg.l0_warmup_steps);
      const theta = Array.from(p.get("log_threshold")!, Math.exp);
      const W = p.get("W_dec")!;
      const norms = Array.from({ length: m }, (_, j) => Math.hypot(...W.subarray(j * d, (j + 1) * d)));
      let total = 0;
      let count = 0;
      for (let b = 0; b < B; b++) {
        const pre = preActs(p, cfg, s.x, b).pre;
        const f = pre.map((v, j) => (v > theta[j]! ? v : 0));
        total += sq(yRow(b), decode(W, f, d, bias(b)));
        for (let j = 0; j < m; j++) {
          if (cfg.sparsity_loss_mode === "tanh") total += l0 * Math.tanh(cfg.tanh_scale * f[j]! * norms[j]!);
          else if (pre[j]! > theta[j]!) count++;
          if (s.dead?.[j]) total += cfg.pre_act_loss_coefficient * Math.max(0, theta[j]! - pre[j]!) * norms[j]!;
        }
      }
      const sparsity = cfg.target_l0 > 0 ? l0 * (count / B / cfg.target_l0 - 1) ** 2 : (l0 * count) / B;
      return total / B + sparsity;
    }
    case "vsae": {
      const a = cfg.beta * warmup(s.step, cfg.kl_warmup_steps);
      const abs = cfg.topk_mode === "abs";
      let mse = 0;
      let kl = 0;
      const pres: Float64Array[] = [];
      const xHats: Float64Array[] = [];
      for (let b = 0; b < B; b++) {
        const { xc, pre } = preActs(p, cfg, s.x, b);
        const mu = pre.map((v) => (cfg.relu_mu ? Math.max(0, v) : v));
        const logvar = cfg.variance === "learned"
          ? affine(p.get("W_logvar")!, p.get("b_logvar")!, xc, m, d).map((v) => Math.min(2, Math.max(-6, v)))
          : new Float64Array(m);
        const z = mu.map((v, j) => v + Math.exp(0.5 * logvar[j]!) * counterNormal(s.seed, s.step, b * m + j));
        const sel = topIndices(Array.from(z, (v) => (abs ? Math.abs(v) : v)), cfg.k);
        const f = new Float64Array(m);
        for (const j of sel) f[j] = abs ? z[j]! : Math.max(0, z[j]!);
        const xHat = decode(p.get("W_dec")!, f, d, bias(b));
        mse += sq(yRow(b), xHat);
        const scope = cfg.kl_scope === "all" ? Array.from({ length: m }, (_, j) => j) : sel;
        for (const j of scope) kl += 0.5 * (mu[j]! ** 2 + Math.exp(logvar[j]!) - 1 - logvar[j]!);
        pres.push(pre);
        xHats.push(xHat);
      }
      // AuxK selects on the noise-free pre-activations, like inference.
      return mse / B + (a * kl) / B + auxLoss(cfg, p, s, pres, xHats, abs && !cfg.relu_mu);
    }
    case "vaease": {
      const gammaLog = p.get("log_gamma")![0]!;
      let total = 0;
      for (let b = 0; b < B; b++) {
        let h: ArrayLike<number> = xRow(b);
        let width = d;
        cfg.hidden.forEach((out, i) => {
          const a = affine(p.get(`W_h${i}`)!, p.get(`b_h${i}`)!, h, out, width);
          h = a.map((v) => v / (1 + Math.exp(-v)));
          width = out;
        });
        const mu = affine(p.get("W_mu")!, p.get("b_mu")!, h, m, width);
        const sPre = affine(p.get("W_s")!, p.get("b_s")!, h, m, width);
        const e = new Float64Array(m);
        for (let j = 0; j < m; j++) {
          const logvar = -Math.log1p(Math.exp(sPre[j]!));
          const sigma = Math.exp(0.5 * logvar);
          const z = mu[j]! + sigma * counterNormal(s.seed, s.step, b * m + j);
          e[j] = cfg.gate ? (1 - sigma) * z : z;
          total += Math.exp(logvar) + mu[j]! ** 2 - logvar - 1;
        }
        total += sq(yRow(b), decode(p.get("W_dec")!, e, d, p.get("b_dec")!)) / Math.exp(gammaLog) + d * gammaLog;
      }
      return total / B;
    }
    case "mp": {
      // The pursuit as SAELens writes it, in float64: pick the row most correlated with the
      // residual, add ReLU of that correlation, subtract; stop when the support stops
      // growing, the residual is small, or after max_iterations steps.
      const W = p.get("W_dec")!;
      let mse = 0;
      for (let b = 0; b < B; b++) {
        const r = Float64Array.from(xRow(b), (v, c) => (cfg.apply_b_dec_to_input ? v - p.get("b_dec")![c]! : v));
        const f = new Float64Array(m);
        for (let t = 0; t < cfg.max_iterations; t++) {
          const corr = Array.from({ length: m }, (_, j) => { let s2 = 0; for (let c = 0; c < d; c++) s2 += r[c]! * W[j * d + c]!; return s2; });
          const j = topIndices(corr, 1)[0]!;
          const a = Math.max(0, corr[j]!);
          const grew = a > 0 && f[j] === 0;
          f[j]! += a;
          for (let c = 0; c < d; c++) r[c]! -= a * W[j * d + c]!;
          if (!grew || Math.hypot(...r) < cfg.residual_threshold) break;
        }
        mse += sq(yRow(b), decode(W, f, d, cfg.apply_b_dec_to_input ? p.get("b_dec")! : null));
      }
      return mse / B;
    }
  }
}

/**
 * JumpReLU's straight-through pseudo-gradient for log_threshold, written from its
 * definition: for entries with |z - theta| < eps/2,
 *   dL/dlog theta_j = theta_j * sum_b [ (dL/df_bj) (-theta_j / eps) + (l0 / B) (-1 / eps) ],
 * with dL/df_bj = (2/B) (x_hat_b - x_b) . W_dec_j.
 */
export function jumpReluThresholdGrad(cfg: SaeConfig & { architecture: "jumprelu" }, p: Params64, s: RefStep): Float64Array {
  const { d_in: d, d_sae: m } = cfg;
  const B = s.batch;
  const eps = cfg.bandwidth;
  const l0 = cfg.l0_coefficient * warmup(s.step, cfg.l0_warmup_steps);
  const theta = Array.from(p.get("log_threshold")!, Math.exp);
  const W = p.get("W_dec")!;
  const norms = Array.from({ length: m }, (_, j) => Math.hypot(...W.subarray(j * d, (j + 1) * d)));
  const tanhMode = cfg.sparsity_loss_mode === "tanh";
  // The count's derivative per entry: l0 / B, or for the target penalty 2 l0 (L0/t - 1) / (t B).
  let count = 0;
  for (let b = 0; b < B; b++) preActs(p, cfg, s.x, b).pre.forEach((v, j) => { if (v > theta[j]!) count++; });
  const perEntry = cfg.target_l0 > 0 ? (2 * l0 * (count / B / cfg.target_l0 - 1)) / (cfg.target_l0 * B) : l0 / B;
  const g = new Float64Array(m);
  for (let b = 0; b < B; b++) {
    const pre = preActs(p, cfg, s.x, b).pre;
    const f = pre.map((v, j) => (v > theta[j]! ? v : 0));
    const xHat = decode(W, f, d, outputBias(p.get("b_dec")!, p.get("W_skip"), s.x, b, d));
    for (let j = 0; j < m; j++) {
      // The pre-activation loss is smooth in theta: its plain derivative (times theta).
      if (s.dead?.[j] && pre[j]! < theta[j]!) g[j]! += (cfg.pre_act_loss_coefficient * norms[j]! * theta[j]!) / B;
      if (Math.abs(pre[j]! - theta[j]!) >= eps / 2) continue;
      // dL/df: reconstruction, plus the tanh count's derivative (at f, even f = 0).
      let gf = 0;
      for (let c = 0; c < d; c++) gf += (2 / B) * (xHat[c]! - (s.target ?? s.x)[b * d + c]!) * W[j * d + c]!;
      if (tanhMode) gf += (l0 / B) * cfg.tanh_scale * norms[j]! * (1 - Math.tanh(cfg.tanh_scale * f[j]! * norms[j]!) ** 2);
      g[j]! += theta[j]! * (gf * (-theta[j]! / eps) + (tanhMode ? 0 : perEntry * (-1 / eps)));
    }
  }
  return g;
}
