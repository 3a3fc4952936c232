/**
 * Dead-latent resampling (Anthropic, "Towards Monosemanticity", 2023; dictionary_learning's
 * StandardTrainer): latents that have stopped firing get a fresh start aimed at what the SAE
 * reconstructs worst. For each dead latent (at most one per row of the batch), a row x_b of
 * the batch is drawn without replacement with probability proportional to its squared
 * reconstruction error, and with u = x_b / ||x_b||:
 *
 *   W_dec_j = u * (mean decoder row norm of the live latents)
 *   W_enc_j = u * 0.2 * (mean encoder row norm of the live latents)
 *   b_enc_j = 0, and the optimizer restarts every per-latent parameter row j (Adam's
 *   moments and Muon's momentum zeroed; Schedule-Free's iterate and average set to the new row)
 *
 * (for a transcoder the decoder takes the direction of the row's target instead).
 *
 * The draw uses a generator seeded by (seed, step), so a resumed run resamples exactly as
 * an uninterrupted one.
 */
import { kernels } from "../core/kernels.js";
import { Rng } from "../core/rng.js";
import type { Sae } from "../sae/sae.js";
import type { Optimizer } from "./optimizer.js";

/**
 * Resamples the dead latents from batch x [batch, d_in] (and, for a transcoder, its targets:
 * errors and decoder directions then live in the target space, encoder directions stay in
 * x's); returns the latents resampled.
 */
export function resampleDeadLatents(sae: Sae, optimizer: Optimizer, x: Float32Array, batch: number, dead: Uint8Array,
  seed: number, step: number, target: Float32Array = x): number[] {
  const { d_in: d, d_sae: m } = sae.cfg;
  const W_enc = sae.params.get("W_enc");
  const W_dec = sae.params.get("W_dec");
  const b_enc = sae.params.get("b_enc");
  if (!W_enc || !W_dec || !b_enc || W_enc.shape[0] !== m || W_dec.shape[0] !== m) {
    throw new Error(`resampling needs an SAE with a linear encoder and decoder; a ${sae.cfg.architecture} SAE has none`);
  }
  const deadIdx: number[] = [];
  for (let j = 0; j < m; j++) if (dead[j]) deadIdx.push(j);
  if (deadIdx.length === 0 || deadIdx.length === m) return [];

  // Squared reconstruction error per row.
  const xHat = sae.decode(sae.encode(x, batch), x);
  const weights = new Float64Array(batch);
  let total = 0;
  for (let b = 0; b < batch; b++) {
    let e = 0;
    for (let c = 0; c < d; c++) e += (target[b * d + c]! - xHat[b * d + c]!) ** 2;
    weights[b] = e;
    total += e;
  }
  if (!(total > 0)) return [];

  const k = kernels();
  const encNorms = new Float32Array(m);
  const decNorms = new Float32Array(m);
  k.rowNorms(W_enc.data, m, d, encNorms);
  k.rowNorms(W_dec.data, m, d, decNorms);
  let encAlive = 0;
  let decAlive = 0;
  for (let j = 0; j < m; j++) {
    if (dead[j]) continue;
    encAlive += encNorms[j]!;
    decAlive += decNorms[j]!;
  }
  const alive = m - deadIdx.length;
  encAlive /= alive;
  decAlive /= alive;

  const rng = new Rng(seed * 1_000_003 + step);
  const n = Math.min(deadIdx.length, batch);
  for (let i = 0; i < n; i++) {
    const b = drawWeighted(weights, total, rng);
    total -= weights[b]!;
    weights[b] = 0;
    const j = deadIdx[i]!;
    const unit = (v: Float32Array) => {
      const row = v.subarray(b * d, (b + 1) * d);
      const norm = Math.sqrt(row.reduce((a, u) => a + u * u, 0)) || 1;
      return Float32Array.from(row, (u) => u / norm);
    };
    const out = unit(target);
    const inp = target === x ? out : unit(x);
    for (let c = 0; c < d; c++) {
      W_dec.data[j * d + c] = out[c]! * decAlive;
      W_enc.data[j * d + c] = inp[c]! * 0.2 * encAlive;
    }
    b_enc.data[j] = 0;
    optimizer.restartRows(sae.params, j, m);
    if (!(total > 0)) return deadIdx.slice(0, i + 1);
  }
  return deadIdx.slice(0, n);
}

/** An index drawn with probability weights[i] / total. */
function drawWeighted(weights: Float64Array, total: number, rng: Rng): number {
  let r = rng.uniform() * total;
  let last = 0;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i]! <= 0) continue;
    last = i;
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return last;
}
