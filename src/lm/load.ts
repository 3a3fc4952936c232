/**
 * Loading a language model: a Hugging Face model folder (config.json, model.safetensors
 * or a sharded index, tokenizer.json), a llama2.c checkpoint (.bin), or `hf:ORG/NAME[@rev]`
 * fetched into a local cache (hub.ts).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type LmConfig, configFromHf } from "./config.js";
import { loadGpt2Weights } from "./gpt2.js";
import { loadGptNeoWeights } from "./gpt-neo.js";
import { loadNeoxWeights } from "./gpt-neox.js";
import { resolveHubModel } from "./hub.js";
import { loadLlamaWeights } from "./llama.js";
import { loadLlama2c } from "./llama2c.js";
import { loadLlama2cTokenizer } from "./llama2c-tokenizer.js";
import { LanguageModel, type LmWeights } from "./model.js";
import { type TextTokenizer, loadTokenizer } from "./tokenizer.js";
import { type WeightReader, openHfWeights } from "./weights.js";

export interface LoadedModel {
  model: LanguageModel;
  /** null when the model has no tokenizer (pass one with `tokenizer`). */
  tokenizer: TextTokenizer | null;
  /** BOS token id to prepend to contexts (null: none). */
  bosId: number | null;
  /** Where it came from: a folder or file path. */
  source: string;
}

export interface LoadModelOptions {
  /** A tokenizer file or folder overriding the model's own (required for llama2.c .bin files). */
  tokenizer?: string;
  /** Where hf: models are cached (default ~/.cache/saekit/hub or $SAEKIT_CACHE). */
  cacheDir?: string;
  /** Report download progress. */
  progress?: boolean;
  fetch?: typeof fetch;
}

export async function loadModel(spec: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const path = spec.startsWith("hf:") ? await resolveHubModel(spec, opts) : spec;
  if (!existsSync(path)) throw new Error(`${path}: no such model folder or file`);
  if (statSync(path).isFile()) {
    if (!path.endsWith(".bin")) throw new Error(`${path}: a model is a Hugging Face folder or a llama2.c .bin file`);
    const model = loadLlama2c(path);
    const tokenizer = opts.tokenizer ? openTokenizer(opts.tokenizer) : null;
    return { model, tokenizer, bosId: model.cfg.bosTokenId, source: path };
  }
  const cfgPath = join(path, "config.json");
  if (!existsSync(cfgPath)) throw new Error(`${path}: no config.json; expected a Hugging Face model folder`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (err) {
    throw new Error(`${cfgPath}: not valid JSON (${(err as Error).message})`);
  }
  const cfg = configFromHf(json, cfgPath);
  const model = new LanguageModel(cfg, loadHfWeights(cfg, path), String(json._name_or_path ?? path));
  const tokPath = opts.tokenizer ?? path;
  const tokenizer = opts.tokenizer || hasTokenizerFiles(path) ? openTokenizer(tokPath) : null;
  if (tokenizer && tokenizer.vocabSize > cfg.vocabSize) {
    throw new Error(`${tokPath}: the tokenizer has ${tokenizer.vocabSize} tokens, more than the model's vocab_size ${cfg.vocabSize}`);
  }
  return { model, tokenizer, bosId: cfg.bosTokenId, source: path };
}

function hasTokenizerFiles(dir: string): boolean {
  return existsSync(join(dir, "tokenizer.json")) || (existsSync(join(dir, "vocab.json")) && existsSync(join(dir, "merges.txt")));
}

/** A tokenizer.json / folder (Hugging Face) or a llama2.c tokenizer .bin. */
export function openTokenizer(path: string): TextTokenizer {
  return path.endsWith(".bin") ? loadLlama2cTokenizer(path) : loadTokenizer(path);
}

export function loadHfWeights(cfg: LmConfig, dir: string): LmWeights {
  const reader = languageModelWeights(openHfWeights(dir));
  const load = {
    gpt_neox: loadNeoxWeights, gpt2: loadGpt2Weights, gpt_neo: loadGptNeoWeights, llama: loadLlamaWeights, gemma: loadLlamaWeights,
  }[cfg.architecture];
  const weights = load(cfg, reader);
  reader.finish(new RegExp(`${BUFFERS.source}|${VISION.source}`));
  return weights;
}

/** The vision side of multimodal checkpoints (Gemma 3 4b and up), which saekit does not run. */
const VISION = /^(model\.)?(vision_tower|multi_modal_projector)\./;

/**
 * The language model of a multimodal checkpoint, under the names a text-only one uses:
 * Gemma 3's language_model.model.* (as Google published it) or model.language_model.*
 * (as transformers 4.52+ saves it) read as model.*, and its lm_head likewise.
 */
function languageModelWeights(r: WeightReader): WeightReader {
  const prefix = ["language_model.model.", "model.language_model."].find((p) => r.has(`${p}embed_tokens.weight`));
  if (!prefix || r.has("model.embed_tokens.weight")) return r;
  const head = r.has("language_model.lm_head.weight") ? "language_model.lm_head.weight" : "lm_head.weight";
  const rename = (name: string) => (name.startsWith("model.") ? prefix + name.slice("model.".length) : name === "lm_head.weight" ? head : name);
  return {
    source: r.source,
    has: (name) => r.has(rename(name)),
    shapeOf: (name) => r.shapeOf(rename(name)),
    get: (name, shape) => r.get(rename(name), shape),
    names: () => r.names(),
    finish: (ignorable) => r.finish(ignorable),
  };
}

/**
 * Tensors HF checkpoints carry that are not weights: rotary inv_freq caches, causal-mask
 * buffers (GPT-2's attn.bias / attn.masked_bias, GPT-NeoX's attention.bias /
 * attention.masked_bias) and GPT-2's lm_head, which HF ties to wte on load.
 */
const BUFFERS = /(^|\.)(rotary_emb\.inv_freq|attn\.bias|attn\.masked_bias|attention\.bias|attention\.masked_bias)$|^(language_model\.)?lm_head\.weight$/;
