/**
 * GPT-J checkpoints in Hugging Face layout (GPTJForCausalLM: EleutherAI's GPT-J-6B) -> LmWeights.
 * One LayerNorm (ln_1) feeds both the attention and the MLP, whose outputs join the residual
 * together; q_proj, k_proj and v_proj (no biases) stack into the canonical [Q | K | V]
 * projection, and the rotary's interleaved pairs (rotate_every_two) need no permutation. The
 * unembedding lm_head has a bias.
 */
import type { LmConfig } from "./config.js";
import { allParts, type BlockWeights, concatMatrices, type LmWeights, type ModelParts, type WeightDtype } from "./model.js";
import type { WeightReader } from "./weight-reader.js";

export function loadGptJWeights(c: LmConfig, r: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(c)): LmWeights {
  const { dModel: d, dMlp: m, vocabSize: V } = c;
  const g = (name: string, shape: number[]) => r.get(name, shape).data;
  // Weight matrices go straight to their dtype (a bf16 checkpoint's are read as they are).
  const gm = (name: string, shape: number[]) => r.getMatrix(name, shape, dtype);
  const layerNorm = (name: string) => ({ w: g(`${name}.weight`, [d]), b: g(`${name}.bias`, [d]) });
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < parts.blocks; i++) {
    const p = `transformer.h.${i}.`;
    const ln = layerNorm(`${p}ln_1`);
    blocks.push({
      ln1: ln,
      ln2: ln,
      wqkv: concatMatrices(["q", "k", "v"].map((x) => gm(`${p}attn.${x}_proj.weight`, [d, d]))),
      bqkv: null,
      wo: gm(`${p}attn.out_proj.weight`, [d, d]),
      bo: null,
      win: gm(`${p}mlp.fc_in.weight`, [m, d]),
      bin: g(`${p}mlp.fc_in.bias`, [m]),
      wout: gm(`${p}mlp.fc_out.weight`, [d, m]),
      bout: g(`${p}mlp.fc_out.bias`, [d]),
    });
  }
  const embed = gm("transformer.wte.weight", [V, d]);
  return {
    embed,
    posEmbed: null,
    blocks,
    lnFinal: parts.finalNorm ? layerNorm("transformer.ln_f") : null,
    unembed: parts.unembed ? (c.tiedEmbeddings && !r.has("lm_head.weight") ? embed : gm("lm_head.weight", [V, d])) : null,
    unembedBias: parts.unembed ? g("lm_head.bias", [V]) : null,
  };
}
