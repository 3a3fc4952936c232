/**
 * A Hugging Face causal LM from its parsed config.json and a reader of its tensors —
 * GPT-NeoX, GPT-2, GPT-Neo, the Llama family and Gemma — wherever the files come from
 * (a folder on disk: load.ts; bytes in the browser: model-files.ts).
 */
import { type LmConfig, configFromHf } from "./config.js";
import { falconH1Reader } from "./falcon-h1.js";
import { loadGpt2Weights } from "./gpt2.js";
import { loadGptJWeights } from "./gpt-j.js";
import { loadGptNeoWeights } from "./gpt-neo.js";
import { loadNeoxWeights } from "./gpt-neox.js";
import { loadLlamaWeights } from "./llama.js";
import { loadPhiWeights } from "./phi.js";
import { allParts, LanguageModel, type LmWeights, type ModelParts, partsForHooks, type WeightDtype } from "./model.js";
import type { TextTokenizer } from "./tokenizer.js";
import type { WeightReader } from "./weight-reader.js";

export interface HfModelOptions {
  /** How the weight matrices are held (LanguageModel.storeWeightsAs); they are read straight into it. */
  dtype?: WeightDtype;
  /** Only what running to these hooks needs (partsForHooks); default: the whole model. */
  hooks?: readonly string[];
  /** Told the weight values read so far and the values to read in all, after each tensor. */
  progress?: (done: number, total: number) => void;
}

/** The model a config.json (read from `cfgSource`) describes, with its weights from `reader`. */
export function hfLanguageModel(json: Record<string, unknown>, cfgSource: string, reader: WeightReader, fallbackName: string,
  o: HfModelOptions = {}): LanguageModel {
  const cfg = configFromHf(json, cfgSource);
  const parts = o.hooks ? partsForHooks(cfg, o.hooks) : allParts(cfg);
  const weights = hfWeights(cfg, o.progress ? reportingReads(reader, parts, o.progress) : reader, o.dtype, parts);
  return new LanguageModel(cfg, weights, String(json._name_or_path ?? fallbackName));
}

/**
 * Which checkpoint tensors (by name) loading `parts` reads: every one but the buffers, the
 * vision tower's and others not run (NOT_RUN), those of later blocks (named *.layers.N.* or h.N.* in every architecture
 * here) and, left out, the final norm's and the unembedding. What a partial download
 * fetches (hub.ts) and a progress bar counts.
 */
export function readsTensor(parts: ModelParts): (name: string) => boolean {
  const later = (name: string) => Number(/(?:^|\.)(?:layers|h)\.(\d+)\./.exec(name)?.[1] ?? -1) >= parts.blocks;
  const finalNorm = (name: string) => /(^|\.)(final_layer_norm|final_layernorm|ln_f|norm|embedding_norm)\.(weight|bias)$/.test(name);
  const unembedding = (name: string) => /(^|\.)(lm_head|embed_out)\.(weight|bias)$/.test(name);
  return (name) => !later(name) && !NOT_RUN.test(name) && !BUFFERS.test(name)
    && (parts.finalNorm || !finalNorm(name)) && (parts.unembed || !unembedding(name));
}

/**
 * `reader`, telling `progress` after each tensor it reads how many values it has read of
 * those `parts` needs (readsTensor).
 */
function reportingReads(reader: WeightReader, parts: ModelParts, progress: (done: number, total: number) => void): WeightReader {
  const size = (name: string) => (reader.shapeOf(name) ?? []).reduce((a, b) => a * b, 1);
  const total = reader.names().filter(readsTensor(parts)).reduce((a, n) => a + size(n), 0);
  let done = 0;
  return throughReader(reader, undefined, (shape, value) => {
    done += shape.reduce((a, b) => a * b, 1);
    progress(Math.min(done, total), total);
    return value;
  });
}

/** Throws unless the tokenizer's ids all fit the model's vocabulary. */
export function checkTokenizerFits(tokenizer: TextTokenizer, cfg: LmConfig, source: string): void {
  if (tokenizer.vocabSize > cfg.vocabSize) {
    throw new Error(`${source}: the tokenizer has ${tokenizer.vocabSize} tokens, more than the model's vocab_size ${cfg.vocabSize}`);
  }
}

/**
 * The architecture's weights (the `parts` asked for) from a checkpoint; every missing,
 * mis-shaped or (loading every part) unused tensor named at once.
 */
export function hfWeights(cfg: LmConfig, checkpoint: WeightReader, dtype: WeightDtype = "f32", parts: ModelParts = allParts(cfg)): LmWeights {
  const reader = cfg.shortConv ? throughReader(checkpoint, lfm2Name)
    : cfg.falconH1 ? falconH1Reader(checkpoint, cfg.falconH1, cfg.mamba!) : languageModelWeights(checkpoint);
  const load = {
    gpt_neox: loadNeoxWeights, gpt2: loadGpt2Weights, gpt_neo: loadGptNeoWeights, gptj: loadGptJWeights, phi: loadPhiWeights,
    llama: loadLlamaWeights, gemma: loadLlamaWeights,
  }[cfg.architecture];
  const weights = load(cfg, reader, dtype, parts);
  // Part of a model leaves the rest of the checkpoint unread by design.
  const whole = parts.blocks === cfg.nLayers && parts.finalNorm && parts.unembed;
  reader.finish(whole ? new RegExp(`${BUFFERS.source}|${NOT_RUN.source}`) : /(?:)/);
  return weights;
}

/**
 * What checkpoints hold beside the language model, which saekit does not run: the vision side
 * of multimodal ones (Gemma 3 4b and up, Mistral 3, Qwen-VL's and Qwen3.5's visual) and
 * Qwen3.5's multi-token prediction module (mtp.*, for speculative decoding).
 */
const NOT_RUN = /^(model\.)?(vision_tower|multi_modal_projector|visual)\.|^mtp\./;

/**
 * The language model of a multimodal checkpoint, under the names a text-only one uses:
 * Gemma 3's language_model.model.* (as Google published it) or model.language_model.*
 * (as transformers 4.52+ saves it) read as model.*, and its lm_head likewise.
 */
function languageModelWeights(r: WeightReader): WeightReader {
  const prefix = ["language_model.model.", "model.language_model."].find((p) => r.has(`${p}embed_tokens.weight`));
  if (!prefix || r.has("model.embed_tokens.weight")) return r;
  const head = r.has("language_model.lm_head.weight") ? "language_model.lm_head.weight" : "lm_head.weight";
  return throughReader(r, (name) => (name.startsWith("model.") ? prefix + name.slice("model.".length) : name === "lm_head.weight" ? head : name));
}

/**
 * LFM2's name for a Llama-layout tensor: its norms are operator_norm (before the mixer), ffn_norm
 * and, after the last layer, embedding_norm; its attention's output projection out_proj, its
 * q/k norms q_layernorm and k_layernorm, its MLP feed_forward.w1 (gate), w3 (up) and w2 (down),
 * LFM2-MoE's experts likewise (feed_forward.experts.E.w1, ...) beside feed_forward.gate and expert_bias.
 */
function lfm2Name(name: string): string {
  return name
    .replace(/\.input_layernorm\./, ".operator_norm.").replace(/\.post_attention_layernorm\./, ".ffn_norm.")
    .replace(/^model\.norm\./, "model.embedding_norm.").replace(/\.self_attn\.o_proj\./, ".self_attn.out_proj.")
    .replace(/\.self_attn\.([qk])_norm\./, ".self_attn.$1_layernorm.")
    // The MLP (LFM2-MoE's experts, router and expert_bias too) under feed_forward.
    .replace(/\.mlp\./, ".feed_forward.").replace(/\.gate_proj\.weight$/, ".w1.weight").replace(/\.up_proj\.weight$/, ".w3.weight")
    .replace(/\.down_proj\.weight$/, ".w2.weight");
}

/** A reader passing every call to `r`: tensor names through `rename`, what it reads through `read`. */
function throughReader(r: WeightReader, rename: (name: string) => string = (n) => n,
  read: <T>(shape: number[], value: T) => T = (_, v) => v): WeightReader {
  return {
    source: r.source,
    has: (name) => r.has(rename(name)),
    shapeOf: (name) => r.shapeOf(rename(name)),
    get: (name, shape) => read(shape, r.get(rename(name), shape)),
    getMatrix: (name, shape, dtype) => read(shape, r.getMatrix(rename(name), shape, dtype)),
    names: () => r.names(),
    finish: (ignorable) => r.finish(ignorable),
  };
}

/**
 * Tensors HF checkpoints carry that are not weights: rotary inv_freq caches, causal-mask
 * buffers (GPT-2's attn.bias / attn.masked_bias, GPT-NeoX's attention.bias /
 * attention.masked_bias), Falcon-H1's mup_vector (the config's ssm_multipliers, which
 * transformers computes afresh whatever a checkpoint holds) and GPT-2's lm_head, which HF ties
 * to wte on load.
 */
const BUFFERS = /(^|\.)(rotary_emb\.inv_freq|attn\.bias|attn\.masked_bias|attention\.bias|attention\.masked_bias|mamba\.mup_vector)$|^(language_model\.)?lm_head\.weight$/;
