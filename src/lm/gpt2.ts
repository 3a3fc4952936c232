/**
 * GPT-2 checkpoints in Hugging Face layout (GPT2LMHeadModel) -> LmWeights. GPT-2 uses
 * Conv1D layers whose weights are [in, out] (y = x W + b), so every projection is
 * transposed to [out, in]; c_attn's columns are already [Q | K | V]. The unembedding is
 * the token embedding. Names may carry a "transformer." prefix or not.
 */
import type { LmConfig } from "./config.js";
import { allParts, type BlockWeights, type LmWeights, type ModelParts, transposeMatrix, type WeightDtype } from "./model.js";
import type { WeightReader } from "./weight-reader.js";

export function loadGpt2Weights(c: LmConfig, r: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(c)): LmWeights {
  const { dModel: d, dMlp: m, vocabSize: V } = c;
  const prefix = r.has("transformer.wte.weight") ? "transformer." : "";
  const g = (name: string, shape: number[]) => r.get(prefix + name, shape).data;
  // Weight matrices go straight to their dtype; Conv1D's [in, out] is transposed in it.
  const conv = (name: string, inp: number, out: number) => transposeMatrix(r.getMatrix(prefix + name, [inp, out], dtype), inp, out);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < parts.blocks; i++) {
    const p = `h.${i}.`;
    blocks.push({
      ln1: { w: g(`${p}ln_1.weight`, [d]), b: g(`${p}ln_1.bias`, [d]) },
      ln2: { w: g(`${p}ln_2.weight`, [d]), b: g(`${p}ln_2.bias`, [d]) },
      wqkv: conv(`${p}attn.c_attn.weight`, d, 3 * d),
      bqkv: g(`${p}attn.c_attn.bias`, [3 * d]),
      wo: conv(`${p}attn.c_proj.weight`, d, d),
      bo: g(`${p}attn.c_proj.bias`, [d]),
      win: conv(`${p}mlp.c_fc.weight`, d, m),
      bin: g(`${p}mlp.c_fc.bias`, [m]),
      wout: conv(`${p}mlp.c_proj.weight`, m, d),
      bout: g(`${p}mlp.c_proj.bias`, [d]),
    });
  }
  const embed = r.getMatrix(`${prefix}wte.weight`, [V, d], dtype);
  return {
    embed,
    posEmbed: g("wpe.weight", [c.maxPositions, d]),
    blocks,
    lnFinal: parts.finalNorm ? { w: g("ln_f.weight", [d]), b: g("ln_f.bias", [d]) } : null,
    unembed: parts.unembed ? embed : null,
  };
}
