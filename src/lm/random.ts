/**
 * Models with random weights of any configuration: for benchmarks at real models' shapes
 * (`saekit bench lm --preset pythia-70m`) and for tests.
 */
import { kernels } from "../core/kernels.js";
import { hasAttention, type LmConfig } from "./config.js";
import { innerWidth, mambaConvWidth } from "./mamba2.js";
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
  const blocks: BlockWeights[] = Array.from({ length: cfg.nLayers }, (_, i) => {
    const attends = hasAttention(cfg, i);
    const b: BlockWeights = {
      ln1: { w: ones(d), b: layerNorm ? normal(d, 0.01) : null },
      ln2: { w: ones(d), b: layerNorm ? normal(d, 0.01) : null },
      ...(cfg.postNorms ? { ln1Post: { w: ones(d), b: null }, ln2Post: { w: ones(d), b: null } } : {}),
      wqkv: attends ? normal((H + 2 * Hkv) * dh * d) : new Float32Array(0),
      bqkv: attends ? bias((H + 2 * Hkv) * dh, cfg.attentionBias) : null,
      wo: attends ? normal(d * H * dh) : new Float32Array(0),
      bo: attends ? bias(d, cfg.attentionBias) : null,
    };
    const s = cfg.mamba;
    if (s?.layers[i]) {
      // Mamba-2 (Granite 4.0-H in attention's place, Falcon-H1 beside it), initialised as transformers does:
      // A = -(1..heads), D = 1.
      const inner = innerWidth(s), C = mambaConvWidth(s);
      b.mamba = {
        win: normal((inner + C + s.heads) * d), conv: normal(C * s.convKernel, 0.2), convBias: normal(C, scale / 2), dtBias: ones(s.heads),
        A: Float32Array.from({ length: s.heads }, (_, h) => -(h + 1)), D: ones(s.heads),
        norm: s.gate === "gate" ? new Float32Array(0) : ones(inner), wout: normal(d * inner),
      };
    }
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
