/**
 * GPT-NeoX (Pythia) checkpoints in Hugging Face layout (GPTNeoXForCausalLM) -> LmWeights.
 * The fused query_key_value projection stores, per head, [q; k; v] rows (head_size each);
 * saekit's canonical layout wants all query heads, then all key heads, then all value
 * heads, so the rows are regrouped at load.
 */
import type { LmConfig } from "./config.js";
import { allParts, type BlockWeights, type LmWeights, type ModelParts, type WeightDtype } from "./model.js";
import type { WeightReader } from "./weight-reader.js";

/** Per-head [q, k, v] blocks of rows (each `width` values) -> [Q heads | K heads | V heads]. */
export function regroupQkv<T extends Float32Array | Uint16Array>(src: T, heads: number, dHead: number, width: number): T {
  const out = (src instanceof Uint16Array ? new Uint16Array(src.length) : new Float32Array(src.length)) as T;
  for (let h = 0; h < heads; h++) {
    for (let part = 0; part < 3; part++) {
      for (let r = 0; r < dHead; r++) {
        const from = ((h * 3 + part) * dHead + r) * width;
        const to = ((part * heads + h) * dHead + r) * width;
        (out as Float32Array).set((src as Float32Array).subarray(from, from + width), to);
      }
    }
  }
  return out;
}

export function loadNeoxWeights(c: LmConfig, r: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(c)): LmWeights {
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H, dHead: dh } = c;
  const g = (name: string, shape: number[]) => r.get(name, shape).data;
  // Weight matrices go straight to their dtype (a bf16 checkpoint's are read as they are).
  const gm = (name: string, shape: number[]) => r.getMatrix(name, shape, dtype);
  const bias = (name: string, shape: number[]) => (c.attentionBias ? g(name, shape) : null);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < parts.blocks; i++) {
    const p = `gpt_neox.layers.${i}.`;
    blocks.push({
      ln1: { w: g(`${p}input_layernorm.weight`, [d]), b: g(`${p}input_layernorm.bias`, [d]) },
      ln2: { w: g(`${p}post_attention_layernorm.weight`, [d]), b: g(`${p}post_attention_layernorm.bias`, [d]) },
      wqkv: regroupQkv(gm(`${p}attention.query_key_value.weight`, [3 * d, d]), H, dh, d),
      bqkv: c.attentionBias ? regroupQkv(g(`${p}attention.query_key_value.bias`, [3 * d]), H, dh, 1) : null,
      wo: gm(`${p}attention.dense.weight`, [d, d]),
      bo: bias(`${p}attention.dense.bias`, [d]),
      win: gm(`${p}mlp.dense_h_to_4h.weight`, [m, d]),
      bin: g(`${p}mlp.dense_h_to_4h.bias`, [m]),
      wout: gm(`${p}mlp.dense_4h_to_h.weight`, [d, m]),
      bout: g(`${p}mlp.dense_4h_to_h.bias`, [d]),
    });
  }
  const embed = gm("gpt_neox.embed_in.weight", [V, d]);
  return {
    embed,
    posEmbed: null,
    blocks,
    lnFinal: parts.finalNorm ? { w: g("gpt_neox.final_layer_norm.weight", [d]), b: g("gpt_neox.final_layer_norm.bias", [d]) } : null,
    unembed: parts.unembed ? (c.tiedEmbeddings && !r.has("embed_out.weight") ? embed : gm("embed_out.weight", [V, d])) : null,
  };
}
