/**
 * Llama-family checkpoints in Hugging Face layout (LlamaForCausalLM and compatible:
 * Mistral, Qwen2, Qwen3 with its per-head q/k norms, SmolLM, TinyLlama, OLMo 2, Phi-3 with its
 * fused qkv_proj and gate_up_proj) -> LmWeights. q_proj, k_proj and v_proj stack into
 * the canonical [Q heads | K heads | V heads] projection; whichever bias tensors the
 * checkpoint has are used (Qwen2 has q/k/v biases; attention_bias and mlp_bias add the
 * rest). Hugging Face stores q and k rows
 * permuted for its rotate-half rotary convention, which the config's rotaryStyle matches.
 *
 * OLMo (the first) shares it with LayerNorms that have no weights, so none are read;
 * StableLM with LayerNorms that have weights and biases, and, with use_parallel_residual,
 * attention and MLP reading the one input_layernorm. OLMo 2
 * shares it too, with no norm before attention or MLP: post_attention_layernorm and
 * post_feedforward_layernorm norm their outputs (ln1Post, ln2Post), and q_norm / k_norm
 * span the whole query and key projections.
 *
 * Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE and GraniteMoE share it with mixtures of experts for MLPs (loadMoe).
 *
 * Cohere and Cohere 2 share it with StableLM's parallel block (LayerNorms without biases).
 *
 * LFM2 shares it, under its own names (hf-model.ts reads them as Llama's), with short
 * convolutions (conv.*) in place of attention in most layers.
 *
 * Falcon-H1 shares it, under its own names and with its multipliers folded in (falcon-h1.ts),
 * with a Mamba-2 layer (mamba.*) beside the attention in every layer.
 *
 * Qwen3.5 shares it with Gated DeltaNets (linear_attn.*, loadDeltaNet) in place of attention in
 * most layers, and in the others q_proj's rows per head split into the query's and the output
 * gate's (splitHeadPairs); its RMSNorms, Gemma's way, multiply by 1 + w.
 *
 * GLM and GLM-4 share it too (Phi-3's fused gate_up_proj, q/k/v biases; GLM-4's norms after
 * attention and MLP: post_self_attn_layernorm -> ln1Post, post_mlp_layernorm -> ln2Post).
 *
 * Gemma, Gemma 2 and Gemma 3 (text) checkpoints share the layout. Their RMSNorms multiply by (1 + w), so
 * 1 is added to every norm weight here; Gemma 2's four norms per block map as
 * input_layernorm -> ln1, post_attention_layernorm -> ln1Post (on the attention output),
 * pre_feedforward_layernorm -> ln2, post_feedforward_layernorm -> ln2Post. VaultGemma has
 * only input_layernorm and pre_feedforward_layernorm: ln1 and ln2.
 */
import { hasAttention, type LmConfig } from "./config.js";
import { allParts, type BlockWeights, concatMatrices, type LmWeights, type ModelParts, type MoeWeights, type SwigluWeights, type WeightDtype,
  type WeightMatrix } from "./model.js";
import { convWidth, type DeltaNetWeights } from "./gated-deltanet.js";
import { innerWidth, mambaConvWidth, type MambaWeights } from "./mamba2.js";
import type { WeightReader } from "./weight-reader.js";

export function loadLlamaWeights(c: LmConfig, r: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(c)): LmWeights {
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H, nKvHeads: Hkv, dHead: dh } = c;
  const g = (name: string, shape: number[]) => r.get(name, shape).data;
  // Weight matrices go straight to their dtype (a bf16 checkpoint's are read as they are).
  const gm = (name: string, shape: number[]) => r.getMatrix(name, shape, dtype);
  const optional = (name: string, shape: number[]) => (r.has(name) ? g(name, shape) : null);
  // Gemma's and Qwen3.5's RMSNorms multiply by 1 + w: the 1 is added here, once.
  const offset = c.architecture === "gemma" || c.offsetNorms === true;
  // OLMo's LayerNorms have no weights: the checkpoint holds none, and a weight of ones is the same norm.
  const norm = (name: string) => {
    if (c.unweightedNorms) return { w: new Float32Array(d).fill(1), b: null };
    const w = g(name, [d]);
    // StableLM's LayerNorms have biases beside their weights (Cohere's have none).
    const b = c.norm === "layernorm" && c.normBias !== false ? g(name.replace(/weight$/, "bias"), [d]) : null;
    return { w: offset ? w.map((v) => v + 1) : w, b };
  };
  // Qwen3's and Gemma 3's per-head q/k norms (Gemma's also scale by 1 + w), or OLMo 2's over
  // the whole projection of `heads` heads, or StableLM's and Cohere's LayerNorm weights for each
  // of the heads (StableLM's in a norm of its own per head: q_layernorm.norms.h).
  const qkNorm = (name: string, heads: number) => {
    const perHead = name.replace(/_norm\.weight$/, "_layernorm.norms.0.weight");
    if (c.qkNorm === "head-layernorm" && r.has(perHead)) {
      const w = new Float32Array(heads * dh);
      for (let h = 0; h < heads; h++) w.set(g(perHead.replace(".0.weight", `.${h}.weight`), [dh]), h * dh);
      return w;
    }
    const w = g(name, c.qkNorm === "head-layernorm" ? [heads, dh] : [c.qkNorm === "projection" ? heads * dh : dh]);
    return offset ? w.map((v) => v + 1) : w;
  };
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < parts.blocks; i++) {
    const p = `model.layers.${i}.`;
    // Phi-3 fuses the projections: qkv_proj holds q, k and v rows in that order already, and
    // gate_up_proj the gate's rows, then the up projection's.
    const fusedQkv = `${p}self_attn.qkv_proj.weight`;
    const attends = hasAttention(c, i);
    // Qwen3.5's q_proj holds each head's query rows, then its output gate's.
    const [wq, wAttnGate] = c.attnOutputGate && attends
      ? splitHeadPairs(gm(`${p}self_attn.q_proj.weight`, [2 * H * dh, d]), H, dh * d)
      : [!attends || r.has(fusedQkv) ? null : gm(`${p}self_attn.q_proj.weight`, [H * dh, d]), null];
    const wqkv = !attends ? NO_WEIGHTS : r.has(fusedQkv) ? gm(fusedQkv, [(H + 2 * Hkv) * dh, d]) : concatMatrices([
      wq!, gm(`${p}self_attn.k_proj.weight`, [Hkv * dh, d]), gm(`${p}self_attn.v_proj.weight`, [Hkv * dh, d]),
    ]);
    // Phi-3's and GLM's fused gate_up_proj, or Granite 4.0's shared_mlp.input_linear: the gate's rows, then the up projection's.
    const fusedGateUp = [`${p}mlp.gate_up_proj.weight`, `${p}shared_mlp.input_linear.weight`].find((n) => r.has(n));
    const gateUp = fusedGateUp ? gm(fusedGateUp, [2 * m, d]) : null;
    const down = r.has(`${p}shared_mlp.output_linear.weight`) ? `${p}shared_mlp.output_linear.weight` : `${p}mlp.down_proj.weight`;
    const bq = optional(`${p}self_attn.q_proj.bias`, [H * dh]);
    const bk = optional(`${p}self_attn.k_proj.bias`, [Hkv * dh]);
    const bv = optional(`${p}self_attn.v_proj.bias`, [Hkv * dh]);
    let bqkv: Float32Array | null = null;
    if (bq || bk || bv) {
      bqkv = new Float32Array((H + 2 * Hkv) * dh);
      if (bq) bqkv.set(bq);
      if (bk) bqkv.set(bk, H * dh);
      if (bv) bqkv.set(bv, (H + Hkv) * dh);
    }
    const norms = c.preNorms === false
      ? { ln1: null, ln1Post: norm(`${p}post_attention_layernorm.weight`), ln2: null, ln2Post: norm(`${p}post_feedforward_layernorm.weight`) }
      : c.postNorms && r.has(`${p}post_self_attn_layernorm.weight`)
      // GLM-4's names: post_attention_layernorm is the MLP's input norm, as Llama's.
      ? {
        ln1: norm(`${p}input_layernorm.weight`), ln1Post: norm(`${p}post_self_attn_layernorm.weight`),
        ln2: norm(`${p}post_attention_layernorm.weight`), ln2Post: norm(`${p}post_mlp_layernorm.weight`),
      }
      : c.postNorms
      ? {
        ln1: norm(`${p}input_layernorm.weight`), ln1Post: norm(`${p}post_attention_layernorm.weight`),
        ln2: norm(`${p}pre_feedforward_layernorm.weight`), ln2Post: norm(`${p}post_feedforward_layernorm.weight`),
      }
      : r.has(`${p}pre_feedforward_layernorm.weight`)
      // VaultGemma: Gemma 2's names for the two input norms, without the norms after attention and MLP.
      ? { ln1: norm(`${p}input_layernorm.weight`), ln2: norm(`${p}pre_feedforward_layernorm.weight`) }
      : c.parallelResidual
      // StableLM's parallel blocks: attention and MLP read the one input norm.
      ? (() => { const ln = norm(`${p}input_layernorm.weight`); return { ln1: ln, ln2: ln }; })()
      : { ln1: norm(`${p}input_layernorm.weight`), ln2: norm(`${p}post_attention_layernorm.weight`) };
    const attention: BlockWeights = !attends
      // Qwen3.5's, LFM2's and Granite 4.0-H's other token mixers where attention would be.
      ? { ...norms, wqkv, bqkv: null, wo: NO_WEIGHTS, bo: null, ...loadMixer(c, r, p, i, gm) }
      : {
        ...norms,
        wqkv,
        bqkv,
        ...(c.qkNorm ? { qNorm: qkNorm(`${p}self_attn.q_norm.weight`, H), kNorm: qkNorm(`${p}self_attn.k_norm.weight`, Hkv) } : {}),
        ...(wAttnGate ? { wAttnGate } : {}),
        wo: gm(`${p}self_attn.o_proj.weight`, [d, H * dh]),
        bo: optional(`${p}self_attn.o_proj.bias`, [d]),
        // Falcon-H1: Mamba-2 beside the attention.
        ...(c.mamba?.parallel ? loadMixer(c, r, p, i, gm) : {}),
      };
    if (c.moe?.layers[i]) {
      blocks.push({ ...attention, moe: loadMoe(c, r, p, gm) });
      continue;
    }
    blocks.push({
      ...attention,
      wgate: gateUp ? gateUp.slice(0, m * d) : gm(`${p}mlp.gate_proj.weight`, [m, d]),
      wup: gateUp ? gateUp.slice(m * d) : gm(`${p}mlp.up_proj.weight`, [m, d]),
      wdown: gm(down, [d, m]),
      bgate: optional(`${p}mlp.gate_proj.bias`, [m]),
      bup: optional(`${p}mlp.up_proj.bias`, [m]),
      bdown: optional(`${p}mlp.down_proj.bias`, [d]),
    });
  }
  const embed = gm("model.embed_tokens.weight", [V, d]);
  return {
    embed,
    posEmbed: null,
    blocks,
    lnFinal: parts.finalNorm ? norm("model.norm.weight") : null,
    unembed: parts.unembed ? (r.has("lm_head.weight") ? gm("lm_head.weight", [V, d]) : embed) : null,
  };
}

/**
 * A layer's mixture of experts (config moe), at prefix `p` (model.layers.N.): GraniteMoE's fused
 * input_linear and output_linear; Mixtral's
 * block_sparse_moe.gate and experts.E.w1 (gate), w3 (up), w2 (down); Qwen2-MoE's, Qwen3-MoE's
 * and OLMoE's mlp.gate and experts.E.gate_proj, up_proj, down_proj, with Qwen2-MoE's
 * shared_expert and shared_expert_gate.
 */
function loadMoe(c: LmConfig, r: WeightReader, p: string, gm: (name: string, shape: number[]) => WeightMatrix): MoeWeights {
  const { dModel: d } = c;
  const { experts, dExpert, dShared } = c.moe!;
  const granite = `${p}block_sparse_moe.input_linear.weight`;
  if (r.has(granite)) {
    // GraniteMoE: every expert's [gate; up] rows in one input_linear [experts, 2 dExpert, d], its down
    // projections in output_linear [experts, d, dExpert], the router in router.layer.
    const gateUp = gm(granite, [experts, 2 * dExpert, d]);
    const down = gm(`${p}block_sparse_moe.output_linear.weight`, [experts, d, dExpert]);
    const n = dExpert * d;
    // Granite 4.0 adds its shared_mlp to the mixture, ungated.
    const shared = dShared > 0 ? gm(`${p}shared_mlp.input_linear.weight`, [2 * dShared, d]) : null;
    return {
      router: r.get(`${p}block_sparse_moe.router.layer.weight`, [experts, d]).data,
      experts: Array.from({ length: experts }, (_, e) => ({
        wgate: gateUp.slice(2 * e * n, (2 * e + 1) * n), wup: gateUp.slice((2 * e + 1) * n, (2 * e + 2) * n), wdown: down.slice(e * n, (e + 1) * n),
      })),
      ...(shared ? {
        shared: { wgate: shared.slice(0, dShared * d), wup: shared.slice(dShared * d), wdown: gm(`${p}shared_mlp.output_linear.weight`, [d, dShared]) },
      } : {}),
    };
  }
  const mixtral = r.has(`${p}block_sparse_moe.gate.weight`);
  const base = mixtral ? `${p}block_sparse_moe.` : `${p}mlp.`;
  const [gate, up, down] = mixtral ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"];
  const swiglu = (at: string, width: number): SwigluWeights => ({
    wgate: gm(`${at}${gate}.weight`, [width, d]), wup: gm(`${at}${up}.weight`, [width, d]), wdown: gm(`${at}${down}.weight`, [d, width]),
  });
  return {
    router: r.get(`${base}gate.weight`, [experts, d]).data,
    ...(c.moe!.expertBias ? { expertBias: r.get(`${base}expert_bias`, [experts]).data } : {}),
    experts: Array.from({ length: experts }, (_, e) => swiglu(`${base}experts.${e}.`, dExpert)),
    ...(dShared > 0 ? {
      shared: swiglu(`${base}shared_expert.`, dShared),
      sharedGate: r.get(`${base}shared_expert_gate.weight`, [1, d]).data,
    } : {}),
  };
}

/** The place of a matrix a layer does not have (a linear-attention layer's attention projections). */
const NO_WEIGHTS = new Float32Array(0);

/**
 * Rows stored per head as pairs of blocks [a_h; b_h] (`block` values each), as Qwen3.5's
 * q_proj holds each head's query and then its gate: [a_0; a_1; ...] and [b_0; b_1; ...].
 */
function splitHeadPairs(m: WeightMatrix, heads: number, block: number): [WeightMatrix, WeightMatrix] {
  const a = new (m.constructor as new (n: number) => WeightMatrix)(heads * block);
  const b = new (m.constructor as new (n: number) => WeightMatrix)(heads * block);
  for (let h = 0; h < heads; h++) {
    a.set(m.subarray(2 * h * block, (2 * h + 1) * block), h * block);
    b.set(m.subarray((2 * h + 1) * block, (2 * h + 2) * block), h * block);
  }
  return [a, b];
}

/** Layer i's token mixer other than attention, at prefix `p` (model.layers.N.): Mamba-2, LFM2's short convolution or a Gated DeltaNet. */
function loadMixer(c: LmConfig, r: WeightReader, p: string, i: number, gm: (name: string, shape: number[]) => WeightMatrix): Partial<BlockWeights> {
  if (c.mamba?.layers[i]) return { mamba: loadMamba(c, r, `${p}mamba.`, gm) };
  if (c.shortConv?.layers[i]) {
    const d = c.dModel;
    return {
      shortConv: {
        win: gm(`${p}conv.in_proj.weight`, [3 * d, d]), conv: r.get(`${p}conv.conv.weight`, [d, 1, c.shortConv.kernel]).data,
        wout: gm(`${p}conv.out_proj.weight`, [d, d]),
      },
    };
  }
  return { deltaNet: loadDeltaNet(c, r, `${p}linear_attn.`, gm) };
}

/** A Granite 4.0-H or Falcon-H1 Mamba-2 layer at prefix `p` (model.layers.N.mamba.). */
function loadMamba(c: LmConfig, r: WeightReader, p: string, gm: (name: string, shape: number[]) => WeightMatrix): MambaWeights {
  const s = c.mamba!;
  const d = c.dModel, inner = innerWidth(s), C = mambaConvWidth(s);
  return {
    win: gm(`${p}in_proj.weight`, [inner + C + s.heads, d]),
    conv: r.get(`${p}conv1d.weight`, [C, 1, s.convKernel]).data,
    convBias: r.has(`${p}conv1d.bias`) ? r.get(`${p}conv1d.bias`, [C]).data : new Float32Array(C),
    dtBias: r.get(`${p}dt_bias`, [s.heads]).data,
    A: r.get(`${p}A_log`, [s.heads]).data.map((v) => -Math.exp(v)),
    D: r.get(`${p}D`, [s.heads]).data,
    // Falcon-H1 without mamba_rms_norm has no norm.
    norm: s.gate === "gate" ? new Float32Array(0) : r.get(`${p}norm.weight`, [inner]).data,
    wout: gm(`${p}out_proj.weight`, [d, inner]),
  };
}

/** A Qwen3.5 Gated DeltaNet at prefix `p` (model.layers.N.linear_attn.). */
function loadDeltaNet(c: LmConfig, r: WeightReader, p: string, gm: (name: string, shape: number[]) => WeightMatrix): DeltaNetWeights {
  const s = c.linearAttention!;
  const d = c.dModel, C = convWidth(s), V = s.vHeads * s.dv;
  return {
    wqkv: gm(`${p}in_proj_qkv.weight`, [C, d]),
    wz: gm(`${p}in_proj_z.weight`, [V, d]),
    wb: gm(`${p}in_proj_b.weight`, [s.vHeads, d]),
    wa: gm(`${p}in_proj_a.weight`, [s.vHeads, d]),
    conv: r.get(`${p}conv1d.weight`, [C, 1, s.convKernel]).data,
    dtBias: r.get(`${p}dt_bias`, [s.vHeads]).data,
    negA: r.get(`${p}A_log`, [s.vHeads]).data.map((v) => -Math.exp(v)),
    // Its gated RMSNorm multiplies by w itself (not 1 + w).
    norm: r.get(`${p}norm.weight`, [s.dv]).data,
    wout: gm(`${p}out_proj.weight`, [d, V]),
  };
}
