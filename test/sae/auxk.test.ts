/**
 * AuxK at sizes the gradient checks cannot reach: thousands of dead latents, whose
 * pre-activations are gathered and selected a block of rows at a time, and both of its
 * backward paths (dense products, sparse kernels). Its loss must be what a plain float64
 * computation of the definition gives, and its gradients must agree between the paths.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { type Sae, zerosLike } from "../../src/sae/sae.js";

const D = 8;
const M = 2048;
const B = 4096; // with all 2048 latents dead, two blocks of rows

function randomTopK(auxK: number): Sae {
  const sae = createSae(defaultConfig({ architecture: "topk", d_in: D, d_sae: M, k: 4, aux_k: auxK, aux_alpha: 0.5 }));
  const rng = new Rng(11);
  for (const [name, t] of sae.params) {
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * (name.startsWith("b_") ? 0.1 : 0.5);
  }
  return sae;
}

/**
 * AuxK's loss by its definition, in float64: each token's top kAux dead latents by
 * pre + b_enc (ReLU'd; ties to the lower latent) reconstruct e = x - x_hat without b_dec;
 * aux_alpha * mean ||e - e_hat||^2 / mean ||e - mean(e)||^2.
 */
function auxLoss(sae: Sae, x: Float32Array, xHat: Float32Array, kAux: number): number {
  const p = (n: string) => sae.params.get(n)!.data;
  const [W_enc, b_enc, W_dec, b_dec] = [p("W_enc"), p("b_enc"), p("W_dec"), p("b_dec")];
  const e = Float64Array.from(x, (v, i) => v - xHat[i]!);
  const mean = new Float64Array(D);
  for (let i = 0; i < B * D; i++) mean[i % D]! += e[i]! / B;
  let num = 0;
  let den = 0;
  const key = new Float64Array(M);
  const order = Array.from({ length: M }, (_, j) => j);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < M; j++) {
      let s = b_enc[j]!;
      for (let c = 0; c < D; c++) s += (x[b * D + c]! - b_dec[c]!) * W_enc[j * D + c]!;
      key[j] = s;
    }
    order.sort((i, j) => key[j]! - key[i]! || i - j);
    const eHat = new Float64Array(D);
    for (const j of order.slice(0, kAux)) {
      const v = Math.max(key[j]!, 0);
      for (let c = 0; c < D; c++) eHat[c]! += v * W_dec[j * D + c]!;
    }
    for (let c = 0; c < D; c++) {
      num += (e[b * D + c]! - eHat[c]!) ** 2;
      den += (e[b * D + c]! - mean[c]!) ** 2;
    }
  }
  return (0.5 * num) / den;
}

describe("AuxK among thousands of dead latents", () => {
  const x = new Rng(12).fillNormal(new Float32Array(B * D));
  const allDead = new Uint8Array(M).fill(1);

  it.each([
    ["the sparse kernels (aux_k = 64 of 2048 dead)", 64],
    ["dense products, every dead latent selected (aux_k = 2048)", 2048],
  ])("%s: the loss of its definition", (_label, auxK) => {
    const sae = randomTopK(auxK);
    const stats = sae.lossAndGrad({ x, batch: B, step: 0, seed: 0, dead: allDead }, zerosLike(sae.params));
    const want = auxLoss(sae, x, stats.xHat, auxK);
    expect(Math.abs(stats.terms.aux! - want) / want).toBeLessThan(1e-4);
  });

  it("dense products and the sparse kernels give the same gradients", () => {
    // 400 dead, aux_k = 100: dense (100 x 5 >= 400); the same selection among 400 dead
    // plus 1700 more that no token can pick (pre-activations far below) takes the sparse
    // path (100 x 5 < 2100) and must train the 400 alike.
    const dead = Uint8Array.from({ length: M }, (_, j) => (j % 5 === 0 && j < 2000 ? 1 : 0));
    const many = dead.slice();
    const sae = randomTopK(100);
    const b_enc = sae.params.get("b_enc")!.data;
    for (let j = 0, extra = 0; j < M && extra < 1700; j++) {
      if (many[j]) continue;
      many[j] = 1;
      extra++;
      b_enc[j] = -1e3; // dead and never in any token's top 100
    }
    const dense = zerosLike(sae.params);
    sae.lossAndGrad({ x, batch: B, step: 0, seed: 0, dead }, dense);
    const sparse = zerosLike(sae.params);
    const s2 = sae.lossAndGrad({ x, batch: B, step: 0, seed: 0, dead: many }, sparse);
    expect(s2.terms.aux).toBeGreaterThan(0);
    for (const name of ["W_dec", "W_enc", "b_enc"]) {
      const a = dense.get(name)!.data;
      const b = sparse.get(name)!.data;
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
        norm = Math.max(norm, Math.abs(a[i]!));
      }
      expect(diff, name).toBeLessThan(1e-5 * norm);
    }
  });
});
