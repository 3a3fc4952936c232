/**
 * Models with random weights of any configuration: for benchmarks at real models' shapes
 * (`saekit bench lm --preset pythia-70m`) and for tests.
 */
import { kernels } from "../core/kernels.js";
import type { LmConfig } from "./config.js";
import { type BlockWeights, LanguageModel } from "./model.js";

export function randomModel(cfg: LmConfig, seed = 0, scale = 0.02): LanguageModel {
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H, nKvHeads: Hkv, dHead: dh } = cfg;
  const k = kernels();
  let stream = 0;
  const normal = (n: number, s = scale) => {
    const a = new Float32Array(n);
    k.fillNormal(a, seed >>> 0, stream++, 0);
    if (s !== 1) k.scale(a, s);
    return a;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const bias = (n: number, on: boolean) => (on ? normal(n, scale / 2) : null);
  const layerNorm = cfg.norm === "layernorm";
  const blocks: BlockWeights[] = Array.from({ length: cfg.nLayers }, () => {
    const b: BlockWeights = {
      ln1: { w: ones(d), b: layerNorm ? normal(d, 0.01) : null },
      ln2: { w: ones(d), b: layerNorm ? normal(d, 0.01) : null },
      ...(cfg.postNorms ? { ln1Post: { w: ones(d), b: null }, ln2Post: { w: ones(d), b: null } } : {}),
      wqkv: normal((H + 2 * Hkv) * dh * d),
      bqkv: bias((H + 2 * Hkv) * dh, cfg.attentionBias),
      wo: normal(d * H * dh),
      bo: bias(d, cfg.attentionBias),
    };
    if (cfg.mlp === "swiglu") {
      b.wgate = normal(m * d);
      b.wup = normal(m * d);
      b.wdown = normal(d * m);
    } else {
      b.win = normal(m * d);
      b.bin = bias(m, cfg.mlpBias);
      b.wout = normal(d * m);
      b.bout = bias(d, cfg.mlpBias);
    }
    return b;
  });
  const embed = normal(V * d);
  return new LanguageModel(cfg, {
    embed,
    posEmbed: cfg.positional === "learned" ? normal(cfg.maxPositions * d) : null,
    blocks,
    lnFinal: { w: ones(d), b: layerNorm ? normal(d, 0.01) : null },
    unembed: cfg.tiedEmbeddings ? embed : normal(V * d),
  }, `random ${cfg.architecture}`);
}
