/**
 * GPT-Neo checkpoints in Hugging Face layout (GPTNeoForCausalLM: EleutherAI's GPT-Neo and the
 * TinyStories-1M..33M models) -> LmWeights. The block is GPT-2's with nn.Linear layers
 * ([out, in], no transposes): q_proj, k_proj and v_proj (no biases) stack into the canonical
 * [Q | K | V] projection, out_proj has a bias, and the unembedding is the token embedding.
 */
import type { LmConfig } from "./config.js";
import { allParts, type BlockWeights, concatMatrices, type LmWeights, type ModelParts, type WeightDtype } from "./model.js";
import type { WeightReader } from "./weight-reader.js";

export function loadGptNeoWeights(c: LmConfig, r: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(c)): LmWeights {
  const { dModel: d, dMlp: m, vocabSize: V } = c;
  const prefix = r.has("transformer.wte.weight") ? "transformer." : "";
  const g = (name: string, shape: number[]) => r.get(prefix + name, shape).data;
  // Weight matrices go straight to their dtype.
  const gm = (name: string, shape: number[]) => r.getMatrix(prefix + name, shape, dtype);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < parts.blocks; i++) {
    const p = `h.${i}.`;
    const wqkv = concatMatrices(["q", "k", "v"].map((x) => gm(`${p}attn.attention.${x}_proj.weight`, [d, d])));
    blocks.push({
      ln1: { w: g(`${p}ln_1.weight`, [d]), b: g(`${p}ln_1.bias`, [d]) },
      ln2: { w: g(`${p}ln_2.weight`, [d]), b: g(`${p}ln_2.bias`, [d]) },
      wqkv,
      bqkv: null,
      wo: gm(`${p}attn.attention.out_proj.weight`, [d, d]),
      bo: g(`${p}attn.attention.out_proj.bias`, [d]),
      win: gm(`${p}mlp.c_fc.weight`, [m, d]),
      bin: g(`${p}mlp.c_fc.bias`, [m]),
      wout: gm(`${p}mlp.c_proj.weight`, [d, m]),
      bout: g(`${p}mlp.c_proj.bias`, [d]),
    });
  }
  const embed = gm("wte.weight", [V, d]);
  // The position table has max_position_embeddings rows; with local attention saekit runs
  // only the first window_size of them (config.ts), so it keeps those.
  const rows = Math.max(c.maxPositions, r.shapeOf(`${prefix}wpe.weight`)?.[0] ?? 0);
  return {
    embed,
    posEmbed: g("wpe.weight", [rows, d]).subarray(0, c.maxPositions * d),
    blocks,
    lnFinal: parts.finalNorm ? { w: g("ln_f.weight", [d]), b: g("ln_f.bias", [d]) } : null,
    unembed: parts.unembed ? (c.tiedEmbeddings ? embed : r.getMatrix("lm_head.weight", [V, d], dtype)) : null,
  };
}
