/**
 * Phi checkpoints in Hugging Face layout (PhiForCausalLM: microsoft/phi-1, phi-1_5, phi-2)
 * -> LmWeights. GPT-J's parallel block: one input_layernorm feeds both the attention and the
 * MLP. q_proj, k_proj and v_proj (with biases) stack into the canonical [Q | K | V]
 * projection, the output projection is `dense`, the MLP fc1 / fc2, and the unembedding
 * lm_head has a bias.
 */
import type { LmConfig } from "./config.js";
import { allParts, type BlockWeights, concatMatrices, type LmWeights, type ModelParts, type WeightDtype } from "./model.js";
import type { WeightReader } from "./weight-reader.js";

export function loadPhiWeights(c: LmConfig, r: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(c)): LmWeights {
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H, nKvHeads: Hkv, dHead: dh } = c;
  const g = (name: string, shape: number[]) => r.get(name, shape).data;
  // Weight matrices go straight to their dtype (a bf16 checkpoint's are read as they are).
  const gm = (name: string, shape: number[]) => r.getMatrix(name, shape, dtype);
  const layerNorm = (name: string) => ({ w: g(`${name}.weight`, [d]), b: g(`${name}.bias`, [d]) });
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < parts.blocks; i++) {
    const p = `model.layers.${i}.`;
    const ln = layerNorm(`${p}input_layernorm`);
    const widths = { q: H * dh, k: Hkv * dh, v: Hkv * dh };
    const bqkv = new Float32Array((H + 2 * Hkv) * dh);
    let at = 0;
    for (const [x, n] of Object.entries(widths)) {
      bqkv.set(g(`${p}self_attn.${x}_proj.bias`, [n]), at);
      at += n;
    }
    blocks.push({
      ln1: ln,
      ln2: ln,
      wqkv: concatMatrices(Object.entries(widths).map(([x, n]) => gm(`${p}self_attn.${x}_proj.weight`, [n, d]))),
      bqkv,
      wo: gm(`${p}self_attn.dense.weight`, [d, H * dh]),
      bo: g(`${p}self_attn.dense.bias`, [d]),
      win: gm(`${p}mlp.fc1.weight`, [m, d]),
      bin: g(`${p}mlp.fc1.bias`, [m]),
      wout: gm(`${p}mlp.fc2.weight`, [d, m]),
      bout: g(`${p}mlp.fc2.bias`, [d]),
    });
  }
  const embed = gm("model.embed_tokens.weight", [V, d]);
  return {
    embed,
    posEmbed: null,
    blocks,
    lnFinal: parts.finalNorm ? layerNorm("model.final_layernorm") : null,
    unembed: parts.unembed ? (c.tiedEmbeddings && !r.has("lm_head.weight") ? embed : gm("lm_head.weight", [V, d])) : null,
    unembedBias: parts.unembed ? g("lm_head.bias", [V]) : null,
  };
}
