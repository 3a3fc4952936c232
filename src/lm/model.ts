/**
 * A decoder-only transformer forward pass on saekit's kernels, with TransformerLens-style
 * hook points. One implementation serves GPT-NeoX, GPT-2 and Llama: the families differ
 * only in configuration (config.ts) and in how their checkpoints lay out weights, which
 * the loaders convert to the canonical layout below.
 *
 * Shapes: tokens [B, T] (row-major), activations [B*T, width]; row r is batch r / T,
 * position r % T. Weights are [out, in] (nn.Linear), so y = x W^T.
 *
 * Hook points, in the order they run:
 *   hook_embed                 token embeddings
 *   hook_pos_embed             learned position embeddings (GPT-2)
 *   blocks.{i}.hook_resid_pre  residual stream entering block i
 *   blocks.{i}.ln1.hook_normalized  the attention's input: the first norm's output
 *   blocks.{i}.attn.hook_z     each head's attention-weighted values, before the output
 *                              projection: [B*T, nHeads * dHead], head after head (what
 *                              attention-output SAEs read, TransformerLens' hook_z flattened)
 *   blocks.{i}.hook_attn_out   attention output (after the output projection)
 *   blocks.{i}.ln2.hook_normalized  the MLP's input: the second norm's output (the
 *                              input side of an MLP transcoder, with hook_mlp_out its output)
 *   blocks.{i}.hook_mlp_out    MLP output
 *   blocks.{i}.hook_resid_post residual stream leaving block i
 *   ln_final.hook_normalized   final norm output
 * OLMo 2's blocks have no norm before attention and MLP: their ln1 / ln2 hooks are the
 * stream those read, as it is.
 * Norm outputs here carry the norm's weight (and bias), as the next layer reads them;
 * TransformerLens with fold_ln (its default) folds the weight into that layer instead, so
 * its hook_normalized values of RMS-normed models differ from these by the weight.
 * A hook receives the activation (valid only during the call: copy it to keep it) and may
 * modify it in place or return a same-sized replacement; later computation sees the result.
 */
import { bf16ToFloat32, float32ToBf16 } from "../core/bf16.js";
import { Activation, type Kernels, kernels } from "../core/kernels.js";
import { Workspace } from "../core/workspace.js";
import { attentionScale, hasAttention, type LmConfig, type MoeConfig } from "./config.js";
import { convWidth, deltaNetHeads, type DeltaNetState, type DeltaNetWeights, newDeltaNetState } from "./gated-deltanet.js";
import { rotaryAmplitude, rotaryInverseFrequencies } from "./rope.js";
import { innerWidth, mambaConvWidth, mambaMix, type MambaState, type MambaWeights, newMambaState } from "./mamba2.js";
import { shortConvMix, type ShortConvWeights } from "./short-conv.js";

export interface Norm {
  w: Float32Array;
  b: Float32Array | null;
}

/**
 * A weight matrix: float32, or bfloat16 bits (half the memory; storeWeightsAs), which the
 * GEMM widens as it reads them.
 */
export type WeightMatrix = Float32Array | Uint16Array;

/** Hooks whose rows are not the residual stream but project to it: attn.hook_z, mlp.hook_post. */
export const PROJECTED_HOOK = /^blocks\.(\d+)\.(attn\.hook_z|mlp\.hook_post)$/;

/** How weight matrices are held: float32, or bfloat16 bits. */
export type WeightDtype = "f32" | "bf16";

/** A weight matrix in `dtype`: itself when it is already, else rounded (bf16) or widened (f32). */
export function matrixAs(W: WeightMatrix, dtype: WeightDtype): WeightMatrix {
  if (dtype === "bf16") return W instanceof Uint16Array ? W : float32ToBf16(W);
  return W instanceof Float32Array ? W : bf16ToFloat32(W);
}

/** The matrices one after another, in their (shared) dtype: a fused projection from its parts. */
export function concatMatrices(parts: WeightMatrix[]): WeightMatrix {
  const length = parts.reduce((a, p) => a + p.length, 0);
  const out = parts[0] instanceof Uint16Array ? new Uint16Array(length) : new Float32Array(length);
  let at = 0;
  for (const p of parts) {
    if (p.constructor !== out.constructor) throw new TypeError("concatMatrices: parts of different dtypes");
    (out as Float32Array).set(p as Float32Array, at);
    at += p.length;
  }
  return out;
}

/** A [rows, cols] matrix transposed to [cols, rows], in its dtype (GPT-2's Conv1D weights). */
export function transposeMatrix(src: WeightMatrix, rows: number, cols: number): WeightMatrix {
  const out = src instanceof Uint16Array ? new Uint16Array(src.length) : new Float32Array(src.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]!;
  return out;
}

/** A block's weight matrices in `dtype`, in place (norms and biases stay float32). */
export function blockWeightsAs(b: BlockWeights, dtype: WeightDtype): BlockWeights {
  b.wqkv = matrixAs(b.wqkv, dtype);
  b.wo = matrixAs(b.wo, dtype);
  for (const name of ["win", "wout", "wgate", "wup", "wdown"] as const) {
    const W = b[name];
    if (W) b[name] = matrixAs(W, dtype);
  }
  if (b.wAttnGate) b.wAttnGate = matrixAs(b.wAttnGate, dtype);
  if (b.deltaNet) {
    for (const name of ["wqkv", "wz", "wb", "wa", "wout"] as const) b.deltaNet[name] = matrixAs(b.deltaNet[name], dtype);
  }
  if (b.shortConv) b.shortConv = { ...b.shortConv, win: matrixAs(b.shortConv.win, dtype), wout: matrixAs(b.shortConv.wout, dtype) };
  if (b.mamba) b.mamba = { ...b.mamba, win: matrixAs(b.mamba.win, dtype), wout: matrixAs(b.mamba.wout, dtype) };
  if (b.moe) {
    const as = (e: SwigluWeights): SwigluWeights => ({ wgate: matrixAs(e.wgate, dtype), wup: matrixAs(e.wup, dtype), wdown: matrixAs(e.wdown, dtype) });
    b.moe = { ...b.moe, experts: b.moe.experts.map(as), ...(b.moe.shared ? { shared: as(b.moe.shared) } : {}) };
  }
  return b;
}

export interface BlockWeights {
  /** The norms before attention and MLP; null where the block has none (OLMo 2, config preNorms). */
  ln1: Norm | null;
  ln2: Norm | null;
  /** Gemma 2's and OLMo 2's norms on the attention and MLP outputs (config postNorms). */
  ln1Post?: Norm;
  ln2Post?: Norm;
  /** [(nHeads + 2 nKvHeads) * dHead, dModel]: all query heads, then key heads, then value heads. */
  wqkv: WeightMatrix;
  bqkv: Float32Array | null;
  /**
   * The query and key norm weights (config qkNorm): [dHead] each for Qwen 3's and Gemma 3's
   * per-head norms, [nHeads * dHead] and [nKvHeads * dHead] for OLMo 2's over the projections
   * and for StableLM's and Cohere's LayerNorms of each head with its own weights.
   */
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  /** [dModel, nHeads * dHead] */
  wo: WeightMatrix;
  bo: Float32Array | null;
  /** standard MLP: win [dMlp, dModel], wout [dModel, dMlp]; swiglu: wgate, wup [dMlp, dModel], wdown [dModel, dMlp]. */
  win?: WeightMatrix;
  bin?: Float32Array | null;
  wout?: WeightMatrix;
  bout?: Float32Array | null;
  wgate?: WeightMatrix;
  wup?: WeightMatrix;
  wdown?: WeightMatrix;
  /** SwiGLU biases (Llama's mlp_bias). */
  bgate?: Float32Array | null;
  bup?: Float32Array | null;
  bdown?: Float32Array | null;
  /** A mixture-of-experts MLP in place of the dense one (config moe). */
  moe?: MoeWeights;
  /** Qwen3.5's linear-attention layers (config linearAttention): a Gated DeltaNet in place of attention; wqkv and wo are then empty. */
  deltaNet?: DeltaNetWeights;
  /** Granite 4.0-H's Mamba-2 layers (config mamba): in place of attention; wqkv and wo are then empty. */
  mamba?: MambaWeights;
  /** LFM2's convolution layers (config shortConv): a short convolution in place of attention; wqkv and wo are then empty. */
  shortConv?: ShortConvWeights;
  /** Qwen3.5's attention layers (config attnOutputGate): [nHeads * dHead, dModel], each head's output gate. */
  wAttnGate?: WeightMatrix;
}

/** One SwiGLU MLP's matrices: gate and up [width, dModel], down [dModel, width]. */
export interface SwigluWeights {
  wgate: WeightMatrix;
  wup: WeightMatrix;
  wdown: WeightMatrix;
}

export interface MoeWeights {
  /** [experts, dModel]: each expert's router row (kept float32: small, and it decides the routing). */
  router: Float32Array;
  experts: SwigluWeights[];
  /** LFM2-MoE: [experts], added to the scores to choose experts (not to weight them). */
  expertBias?: Float32Array;
  /** Qwen2-MoE's shared expert and its gate row [dModel] (Granite 4.0's shared MLP has no gate). */
  shared?: SwigluWeights;
  sharedGate?: Float32Array;
}

export interface LmWeights {
  /** [vocab, dModel] */
  embed: WeightMatrix;
  /** [maxPositions, dModel] for learned positions. */
  posEmbed: Float32Array | null;
  /** The first blocks.length blocks: all of them, or those a hooks-only load needs (ModelParts). */
  blocks: BlockWeights[];
  /** Null when a hooks-only load left it out. */
  lnFinal: Norm | null;
  /** [vocab, dModel]; the same array as embed when tied; null when a hooks-only load left it out. */
  unembed: WeightMatrix | null;
  /** [vocab]: the unembedding's bias, where it has one (GPT-J's and Phi's lm_head). */
  unembedBias?: Float32Array | null;
}

/**
 * What of a model's weights to load: its first `blocks` blocks, the final norm and the
 * unembedding. A harvest of an early layer needs a fraction of a big model: Gemma 2 2B's
 * blocks.5.hook_resid_post needs 6 of its 26 blocks and no unembedding.
 */
export interface ModelParts {
  blocks: number;
  finalNorm: boolean;
  unembed: boolean;
}

/** Every part: a model that computes logits. */
export function allParts(cfg: LmConfig): ModelParts {
  return { blocks: cfg.nLayers, finalNorm: true, unembed: true };
}

/**
 * The parts a model needs to run as far as the last of `hooks` (names or patterns, as
 * expandHooks takes them): the blocks up to that hook's, the final norm for
 * ln_final.hook_normalized, never the unembedding. A name the config has no hook for asks
 * for every part (the model then names the problem when it checks the hook).
 */
export function partsForHooks(cfg: LmConfig, hooks: readonly string[]): ModelParts {
  const names = hookNamesOf(cfg);
  let blocks = 0;
  for (const spec of hooks) {
    for (const hook of spec.includes("*") ? expandHookPattern(spec, names) : [spec]) {
      if (!names.includes(hook)) return allParts(cfg);
      const block = /^blocks\.(\d+)\./.exec(hook);
      if (block) blocks = Math.max(blocks, Number(block[1]) + 1);
      else if (hook === "ln_final.hook_normalized") return { blocks: cfg.nLayers, finalNorm: true, unembed: false };
    }
  }
  return { blocks, finalNorm: false, unembed: false };
}

/** Every hook point a model of this config has, in execution order. */
export function hookNamesOf(cfg: LmConfig): string[] {
  const names = ["hook_embed"];
  if (cfg.positional === "learned") names.push("hook_pos_embed");
  for (let i = 0; i < cfg.nLayers; i++) {
    // hook_resid_mid (resid_pre + attn_out) exists where the MLP reads it: not with a parallel residual.
    const mid = cfg.parallelResidual ? [] : ["hook_resid_mid"];
    // A mixture of experts has no one hidden layer: no mlp.hook_post in its layers.
    const post = cfg.moe?.layers[i] ? [] : ["mlp.hook_post"];
    // A layer that mixes tokens without attention (hasAttention) has no heads' mix of values: no attn.hook_z there.
    const z = hasAttention(cfg, i) ? ["attn.hook_z"] : [];
    for (const h of ["hook_resid_pre", "ln1.hook_normalized", ...z, "hook_attn_out", ...mid, "ln2.hook_normalized",
      ...post, "hook_mlp_out", "hook_resid_post"]) {
      names.push(`blocks.${i}.${h}`);
    }
  }
  names.push("ln_final.hook_normalized");
  return names;
}

export interface HookContext {
  name: string;
  batch: number;
  seq: number;
  /** Width of each row. */
  width: number;
}

/** Reads (and may modify, or return a replacement for) an activation [batch*seq, width]. */
export type HookFn = (act: Float32Array, ctx: HookContext) => Float32Array | void;

/**
 * Keys and values of past positions, per layer [batch, capacity, nKvHeads * dHead], for
 * incremental decoding: each forward with a cache reads its tokens as the positions
 * after `length` and appends their keys and values.
 */
export interface KvCache {
  batch: number;
  capacity: number;
  length: number;
  keys: Float32Array[];
  values: Float32Array[];
  /** Qwen3.5: each Gated DeltaNet layer's state (null in its attention layers). */
  deltaNet?: Array<DeltaNetState | null>;
  /** Granite 4.0-H: each Mamba-2 layer's state (null in its attention layers). */
  mamba?: Array<MambaState | null>;
  /** LFM2: each convolution layer's last kernel - 1 inputs [batch, kernel - 1, dModel] (null in its attention layers). */
  shortConv?: Array<Float32Array | null>;
}

export interface ForwardOptions {
  hooks?: Record<string, HookFn>;
  /** Stop right after this hook point has run (for harvesting an early layer). */
  stopAt?: string;
  /** What to return: the final normalised hidden states, logits, or nothing. */
  output?: "final" | "logits" | "none";
  /** Continue sequences held in this cache (from newCache) instead of starting at 0. */
  cache?: KvCache;
  /**
   * Start at block `layer` with this residual stream [B*T, dModel] entering it (as
   * blocks.{layer}.hook_resid_pre saw it; layer = nLayers: the stream after the last
   * block): the rest of a pass whose first part is already known, to the bit. Hooks
   * before that point do not run.
   */
  resume?: { layer: number; resid: Float32Array };
}

export interface ForwardResult {
  /** Final normalised hidden states [B*T, dModel] (output "final" or "logits"). */
  final?: Float32Array;
  /** Logits [B*T, vocab] (output "logits"). */
  logits?: Float32Array;
  /** True when stopAt ended the pass early. */
  stopped: boolean;
}

/** The frequencies of a layer without rotary positions (SmolLM3's NoPE layers): none. */
const NO_ROTARY = new Float32Array(0);

export class LanguageModel {
  private readonly ws = new Workspace();
  private readonly k = kernels();
  /** Rotary frequency of each rotated pair (empty without rotary positions). */
  private readonly invFreq: Float32Array;
  /** The local (sliding-window) layers' frequencies, where they differ (Gemma 3). */
  private readonly invFreqLocal: Float32Array;
  /** What the rotary scales q's and k's rotated dimensions by (LongRoPE's, YaRN's attention factor; else 1), and the local layers'. */
  private readonly rotaryScale: number;
  private readonly rotaryScaleLocal: number;

  constructor(readonly cfg: LmConfig, readonly weights: LmWeights, readonly name: string = cfg.architecture) {
    checkWeights(cfg, weights);
    this.invFreq = cfg.rope ? rotaryInverseFrequencies(cfg.rope, cfg.rotaryDims) : new Float32Array(0);
    this.invFreqLocal = cfg.localRope ? rotaryInverseFrequencies(cfg.localRope, cfg.rotaryDims) : this.invFreq;
    this.rotaryScale = rotaryAmplitude(cfg.rope);
    this.rotaryScaleLocal = cfg.localRope ? rotaryAmplitude(cfg.localRope) : this.rotaryScale;
  }

  /** The rotary frequency of each rotated pair in `layer` (empty without rotary positions). */
  private rotaryFrequencies(layer: number): Float32Array {
    if (this.cfg.noRope?.[layer]) return NO_ROTARY;
    return this.cfg.localLayers?.[layer] ? this.invFreqLocal : this.invFreq;
  }

  /**
   * Layer `layer`'s rotary positions on the query and key heads of qkv [rows, stride]: each
   * sequence of `seq` rows at positions pos0.., LongRoPE's or YaRN's attention factor on the
   * rotated dimensions, nothing where the layer has no rotary. `transpose`: the backward's, the same
   * scale and the rotation the other way (a rotation per pair of dimensions, which the scale
   * commutes with).
   */
  rotateQueriesAndKeys(qkv: Float32Array, rows: number, seq: number, pos0: number, stride: number, layer: number, transpose = false): void {
    const inv = this.rotaryFrequencies(layer);
    if (inv.length === 0) return;
    const { nHeads: H, nKvHeads: Hkv, dHead: dh, rotaryStyle } = this.cfg;
    const freqs = transpose ? inv.map((f) => -f) : inv;
    this.k.rotary(qkv, rows, seq, pos0, stride, 0, H, dh, freqs, rotaryStyle);
    this.k.rotary(qkv, rows, seq, pos0, stride, H * dh, Hkv, dh, freqs, rotaryStyle);
    const scale = this.cfg.localLayers?.[layer] ? this.rotaryScaleLocal : this.rotaryScale;
    if (scale !== 1) scaleRotatedDims(qkv, rows, stride, H + Hkv, dh, this.cfg.rotaryDims, scale);
  }

  /** Every hook point this model has, in execution order. */
  hookNames(): string[] {
    return hookNamesOf(this.cfg);
  }

  /**
   * Hook names for a list of names and patterns (`blocks.*.hook_resid_post`, see
   * expandHookPattern), in the order given; throws on a name this model lacks or one named twice.
   */
  expandHooks(specs: readonly string[]): string[] {
    const names = this.hookNames();
    const hooks = specs.flatMap((h) => expandHookPattern(h, names));
    if (hooks.length === 0) throw new Error("no hook point named");
    for (const h of hooks) this.checkHook(h);
    if (new Set(hooks).size !== hooks.length) throw new Error(`a hook is named twice: ${hooks.join(", ")}`);
    return hooks;
  }

  /**
   * Hooks (names or patterns) with their width, each paired in order with a target hook when
   * targets are given (transcoders: one each, later in the forward pass and as wide).
   */
  hookPairs(hooks: readonly string[], targets?: readonly string[]): Array<{ hook: string; target?: string; d: number }> {
    const inputs = this.expandHooks(hooks);
    const outputs = targets ? this.expandHooks(targets) : undefined;
    if (outputs && outputs.length !== inputs.length) {
      throw new Error(`${inputs.length} hook(s) (${inputs.join(", ")}) but ${outputs.length} target hook(s) (${outputs.join(", ")}); each hook needs one target`);
    }
    return inputs.map((hook, i) => (outputs
      ? { hook, target: outputs[i]!, d: this.transcoderWidth(hook, outputs[i]!) }
      : { hook, d: this.hookWidth(hook) }));
  }

  /** Of several hooks, the one the forward pass reaches last (where it may stop). */
  lastHook(hooks: readonly string[]): string {
    const names = this.hookNames();
    return hooks.reduce((a, h) => (names.indexOf(h) > names.indexOf(a) ? h : a));
  }

  /** The width of a hook's activation rows: nHeads * dHead for attn.hook_z, dMlp for mlp.hook_post, else dModel. */
  hookWidth(name: string): number {
    this.checkHook(name);
    if (name.endsWith(".attn.hook_z")) return this.cfg.nHeads * this.cfg.dHead;
    return name.endsWith(".mlp.hook_post") ? this.cfg.dMlp : this.cfg.dModel;
  }

  /**
   * The width shared by a transcoder's input hook and its target hook; throws unless both
   * exist, the target runs after the input, and they are as wide.
   */
  transcoderWidth(hook: string, target: string): number {
    const d = this.hookWidth(hook);
    const dTarget = this.hookWidth(target);
    const names = this.hookNames();
    if (names.indexOf(target) <= names.indexOf(hook)) throw new Error(`the target hook ${target} must come after ${hook} in the forward pass`);
    if (dTarget !== d) throw new Error(`${hook} is ${d}-dim but ${target} is ${dTarget}-dim; a transcoder's input and target must be as wide`);
    return d;
  }

  /**
   * Rows of layer `layer`'s hook_z [rows, nHeads * dHead] through its output projection
   * (no bias; times Granite's residual multiplier): where a direction there lands in the
   * residual stream.
   */
  projectHookZ(layer: number, z: Float32Array, rows: number): Float32Array {
    const { nHeads: H, dHead: dh } = this.cfg;
    return this.scaledAsAdded(this.project(this.block(layer).wo, H * dh, z, rows));
  }

  /**
   * Directions [rows, width] at a hook, in the residual stream: through the attention
   * output projection for attn.hook_z, the MLP's output projection for mlp.hook_post (no
   * biases; times Granite's residual multiplier), unchanged where the hook is the residual
   * stream's width already.
   */
  projectToResidual(hook: string, v: Float32Array, rows: number): Float32Array {
    const site = PROJECTED_HOOK.exec(hook);
    if (!site) {
      if (this.hookWidth(hook) !== this.cfg.dModel) throw new Error(`${hook}: no projection to the residual stream`);
      return v;
    }
    const layer = Number(site[1]);
    if (site[2] === "attn.hook_z") return this.projectHookZ(layer, v, rows);
    const w = this.block(layer);
    return this.scaledAsAdded(this.project(w.wout ?? w.wdown!, this.cfg.dMlp, v, rows));
  }

  /** A block output as the residual stream receives it: times Granite's residual multiplier (in place). */
  private scaledAsAdded(out: Float32Array): Float32Array {
    if (this.cfg.residualScale !== undefined) this.k.scale(out, this.cfg.residualScale);
    return out;
  }

  private block(layer: number): BlockWeights {
    const w = this.weights.blocks[layer];
    if (w) return w;
    if (Number.isInteger(layer) && layer >= 0 && layer < this.cfg.nLayers) throw new Error(this.partsMissing(`block ${layer}`));
    throw new RangeError(`layer ${layer} is outside 0..${this.cfg.nLayers - 1}`);
  }

  /** What of the weights this model holds: all of them, or what a hooks-only load read. */
  get parts(): ModelParts {
    const w = this.weights;
    return { blocks: w.blocks.length, finalNorm: w.lnFinal !== null, unembed: w.unembed !== null };
  }

  /**
   * Throws unless this model holds the parts a pass needs: as far as `stopAt`, or through
   * every block and the final norm (and the unembedding, for logits) without one.
   */
  private checkParts(stopAt: string | undefined, output: ForwardOptions["output"]): void {
    const need = stopAt ? partsForHooks(this.cfg, [stopAt]) : { ...allParts(this.cfg), unembed: output === "logits" };
    const has = this.parts;
    if (need.blocks > has.blocks) throw new Error(this.partsMissing(`block ${has.blocks}`));
    if (need.finalNorm && !has.finalNorm) throw new Error(this.partsMissing("the final norm"));
    if (need.unembed && !has.unembed) throw new Error(this.partsMissing("the unembedding (logits)"));
  }

  private partsMissing(what: string): string {
    const { blocks } = this.parts;
    const held = blocks === this.cfg.nLayers ? "every block" : `blocks 0..${blocks - 1} of ${this.cfg.nLayers}`;
    return `${this.name} was loaded for hooks only (${held}, no unembedding): ${what} was not read; load the model without the hooks option to run it further`;
  }

  /** v [rows, width] W^T for W [dModel, width]. */
  private project(W: WeightMatrix, width: number, v: Float32Array, rows: number): Float32Array {
    const out = new Float32Array(rows * this.cfg.dModel);
    this.matmul(v, rows, W, this.cfg.dModel, width, out);
    return out;
  }

  /** out [rows, n] = x [rows, k] W^T (+ beta out), for a weight W [n, k] (nn.Linear's layout) in either dtype. */
  private matmul(x: Float32Array, rows: number, W: WeightMatrix, n: number, k: number, out: Float32Array, beta = 0): void {
    if (W instanceof Uint16Array) this.k.sgemmBf16B(false, true, rows, n, k, 1, x, k, W, k, beta, out, n);
    else this.k.sgemm(false, true, rows, n, k, 1, x, k, W, k, beta, out, n);
  }

  /**
   * Keeps the weight matrices (embeddings, attention and MLP projections, unembedding) in
   * `dtype`: "bf16" halves their memory, rounding each weight to bfloat16 (exact for
   * checkpoints stored in bf16, as most Llama-family ones are); the forward then computes
   * what float32 weights of those rounded values give, to the bit. Norms and biases stay
   * float32. Going back to "f32" widens without recovering what rounding dropped.
   */
  storeWeightsAs(dtype: WeightDtype): void {
    const w = this.weights;
    const tied = w.unembed === w.embed;
    w.embed = matrixAs(w.embed, dtype);
    // A tied unembedding stays shared.
    w.unembed = tied ? w.embed : w.unembed && matrixAs(w.unembed, dtype);
    for (const b of w.blocks) blockWeightsAs(b, dtype);
  }

  /** How the weight matrices are held (storeWeightsAs). */
  get weightDtype(): WeightDtype {
    return this.weights.embed instanceof Uint16Array ? "bf16" : "f32";
  }

  /** Bytes the weights take in memory (each array once, a tied unembedding once). */
  weightBytes(): number {
    const seen = new Set<ArrayBufferView>();
    const add = (a: ArrayBufferView | null | undefined) => { if (a) seen.add(a); };
    const w = this.weights;
    add(w.embed); add(w.unembed); add(w.unembedBias); add(w.posEmbed);
    add(w.lnFinal?.w); add(w.lnFinal?.b);
    // Each block's matrices and vectors, those of its norms ({w, b}) and of its experts, however nested.
    const addAll = (v: unknown): void => {
      if (ArrayBuffer.isView(v)) add(v);
      else if (v && typeof v === "object") for (const x of Object.values(v)) addAll(x);
    };
    for (const b of w.blocks) addAll(b);
    let bytes = 0;
    for (const a of seen) bytes += a.byteLength;
    return bytes;
  }

  /** An empty key/value cache for `batch` sequences of up to `capacity` positions. */
  newCache(batch: number, capacity = this.cfg.maxPositions): KvCache {
    const size = batch * capacity * this.cfg.nKvHeads * this.cfg.dHead;
    const linear = this.cfg.linearAttention, conv = this.cfg.shortConv, mamba = this.cfg.mamba;
    // A Gated DeltaNet, short-convolution or Mamba-2 layer keeps its own state instead of keys and values.
    const layers = () => Array.from({ length: this.cfg.nLayers }, (_, i) => new Float32Array(hasAttention(this.cfg, i) ? size : 0));
    return {
      batch, capacity, length: 0, keys: layers(), values: layers(),
      ...(linear ? { deltaNet: linear.layers.map((l) => (l ? newDeltaNetState(linear, batch) : null)) } : {}),
      ...(mamba ? { mamba: mamba.layers.map((l) => (l ? newMambaState(mamba, batch) : null)) } : {}),
      ...(conv ? { shortConv: conv.layers.map((l) => (l ? new Float32Array(batch * (conv.kernel - 1) * this.cfg.dModel) : null)) } : {}),
    };
  }

  /**
   * Where a pass that changes `hook` can resume from a clean one (forward's resume): the
   * block the hook belongs to, and the hook whose activation is the stream entering it
   * (its hook_resid_pre; for ln_final, the last block's hook_resid_post). Null for the
   * embedding hooks, which only a full pass reaches.
   */
  resumePoint(hook: string): { layer: number; residHook: string } | null {
    this.checkHook(hook);
    if (hook === "ln_final.hook_normalized") return { layer: this.cfg.nLayers, residHook: `blocks.${this.cfg.nLayers - 1}.hook_resid_post` };
    const block = /^blocks\.(\d+)\./.exec(hook);
    return block ? { layer: Number(block[1]), residHook: `blocks.${block[1]}.hook_resid_pre` } : null;
  }

  /** Throws, listing what exists, unless `name` is a hook point of this model. */
  checkHook(name: string): void {
    if (!this.hookNames().includes(name)) {
      throw new Error(`${this.name} has no hook point "${name}"; it has hook_embed, blocks.{0..${this.cfg.nLayers - 1}}.hook_{resid_pre,attn_out,${this.cfg.parallelResidual ? "" : "resid_mid,"}mlp_out,resid_post}, blocks.{i}.ln{1,2}.hook_normalized, blocks.{i}.attn.hook_z, blocks.{i}.mlp.hook_post${this.cfg.moe ? " (not in mixture-of-experts layers)" : ""} and ln_final.hook_normalized`);
    }
  }

  forward(tokens: Int32Array, batch: number, seq: number, opts: ForwardOptions = {}): ForwardResult {
    const c = this.cfg;
    const k = this.k;
    const N = batch * seq;
    if (tokens.length < N) throw new RangeError(`forward: ${tokens.length} tokens for a [${batch}, ${seq}] batch`);
    const cache = opts.cache;
    const pos0 = cache?.length ?? 0;
    if (pos0 + seq > c.maxPositions) throw new RangeError(`forward: position ${pos0 + seq} exceeds the model's ${c.maxPositions} positions`);
    if (cache && (cache.batch !== batch || pos0 + seq > cache.capacity)) {
      throw new RangeError(`forward: the cache holds ${cache.batch} sequences of ${cache.capacity} positions, this needs ${batch} of ${pos0 + seq}`);
    }
    for (const name of Object.keys(opts.hooks ?? {})) this.checkHook(name);
    if (opts.stopAt) this.checkHook(opts.stopAt);
    this.checkParts(opts.stopAt, opts.output ?? "logits");
    const d = c.dModel;
    const hooks = opts.hooks ?? {};
    const run = (name: string, act: Float32Array, width: number): boolean => {
      const fn = hooks[name];
      if (fn) {
        const out = fn(act, { name, batch, seq, width });
        if (out && out !== act) {
          if (out.length !== act.length) throw new RangeError(`hook ${name} returned ${out.length} values, expected ${act.length}`);
          act.set(out);
        }
      }
      return opts.stopAt === name;
    };
    const stopped = { stopped: true };

    const resume = opts.resume;
    if (resume) {
      if (cache) throw new Error("forward: resume does not go with a cache");
      if (!Number.isInteger(resume.layer) || resume.layer < 0 || resume.layer > c.nLayers) throw new RangeError(`forward: cannot resume at layer ${resume.layer} of ${c.nLayers}`);
      if (resume.resid.length < N * d) throw new RangeError(`forward: the residual stream to resume from holds ${resume.resid.length} values, [${batch}, ${seq}] x ${d} needs ${N * d}`);
    }
    const resid = this.ws.float("resid", N * d);
    if (resume) resid.set(resume.resid.subarray(0, N * d));
    else if (this.embed(tokens, N, pos0, seq, resid, run)) return stopped;

    const H = c.nHeads;
    const Hkv = c.nKvHeads;
    const dh = c.dHead;
    const qkvWidth = (H + 2 * Hkv) * dh;
    for (let layer = resume?.layer ?? 0; layer < c.nLayers; layer++) {
      const w = this.weights.blocks[layer]!;
      const p = `blocks.${layer}.`;
      if (run(`${p}hook_resid_pre`, resid, d)) return stopped;

      // Attention.
      const h = this.ws.float("normed", N * d);
      this.norm(resid, N, w.ln1, h);
      if (run(`${p}ln1.hook_normalized`, h, d)) return stopped;
      const attnOut = this.ws.float("attn_out", N * d);
      if (w.mamba && c.mamba!.parallel) {
        // Falcon-H1: Mamba-2 beside the attention (below), both adding into attnOut.
        this.mamba(w.mamba, layer, h, batch, seq, cache, attnOut);
      }
      if (w.deltaNet) {
        // Qwen3.5's linear-attention layers: a Gated DeltaNet (no attn.hook_z).
        this.deltaNet(w.deltaNet, layer, h, batch, seq, cache, attnOut);
      } else if (w.mamba && !c.mamba!.parallel) {
        // Granite 4.0-H's Mamba-2 layers (no attn.hook_z).
        this.mamba(w.mamba, layer, h, batch, seq, cache, attnOut);
      } else if (w.shortConv) {
        // LFM2's convolution layers (no attn.hook_z).
        this.shortConv(w.shortConv, layer, h, batch, seq, cache, attnOut);
      } else {
        const qkv = this.ws.float("qkv", N * qkvWidth);
        this.matmul(h, N, w.wqkv, qkvWidth, d, qkv);
        if (w.bqkv) k.addRowVector(qkv, N, qkvWidth, w.bqkv);
        if (c.clipQkv && !c.clipQkvAfterNorm) clampInPlace(qkv, N * qkvWidth, c.clipQkv);
        if (c.qkNorm) {
          this.headNorm(qkv, N, qkvWidth, 0, H, w.qNorm!);
          this.headNorm(qkv, N, qkvWidth, H * dh, Hkv, w.kNorm!);
        }
        if (c.clipQkv && c.clipQkvAfterNorm) clampInPlace(qkv, N * qkvWidth, c.clipQkv);
        this.rotateQueriesAndKeys(qkv, N, seq, pos0, qkvWidth, layer);
        const scale = attentionScale(c, layer);
        const softcap = c.attnSoftcap ?? 0;
        const heads = this.ws.float("heads", N * H * dh);
        if (cache) {
          // Append this step's keys and values, then attend over everything cached.
          const kvw = Hkv * dh;
          for (let r = 0; r < N; r++) {
            const slot = (Math.floor(r / seq) * cache.capacity + pos0 + (r % seq)) * kvw;
            cache.keys[layer]!.set(qkv.subarray(r * qkvWidth + H * dh, r * qkvWidth + (H + Hkv) * dh), slot);
            cache.values[layer]!.set(qkv.subarray(r * qkvWidth + (H + Hkv) * dh, (r + 1) * qkvWidth), slot);
          }
          k.cachedAttention(qkv, qkvWidth, 0, batch, seq, pos0, cache.keys[layer]!, cache.values[layer]!, cache.capacity,
            H, Hkv, dh, scale, softcap, heads);
        } else {
          k.causalAttention(qkv, batch, seq, qkvWidth, 0, H * dh, (H + Hkv) * dh, H, Hkv, dh, scale, softcap, heads);
        }
        if (w.wAttnGate) this.gateHeads(h, N, w.wAttnGate, heads);
        if (run(`${p}attn.hook_z`, heads, H * dh)) return stopped;
        this.matmul(heads, N, w.wo, d, H * dh, attnOut, w.mamba ? 1 : 0);
      }
      if (w.bo) k.addRowVector(attnOut, N, d, w.bo);
      if (w.ln1Post) this.normInPlace(attnOut, N, w.ln1Post);
      if (c.residualScale !== undefined) k.scale(attnOut.subarray(0, N * d), c.residualScale);
      if (run(`${p}hook_attn_out`, attnOut, d)) return stopped;

      // MLP, reading the block input (parallel residual) or the post-attention stream.
      if (!c.parallelResidual) {
        addInPlace(resid, attnOut);
        if (run(`${p}hook_resid_mid`, resid, d)) return stopped;
      }
      this.norm(resid, N, w.ln2, h);
      if (run(`${p}ln2.hook_normalized`, h, d)) return stopped;
      const mlpOut = this.ws.float("mlp_out", N * d);
      if (w.moe) this.moe(w.moe, h, N, mlpOut);
      else if (this.mlp(w, h, N, mlpOut, (hidden) => run(`${p}mlp.hook_post`, hidden, c.dMlp))) return stopped;
      if (w.ln2Post) this.normInPlace(mlpOut, N, w.ln2Post);
      if (c.residualScale !== undefined) k.scale(mlpOut.subarray(0, N * d), c.residualScale);
      if (run(`${p}hook_mlp_out`, mlpOut, d)) return stopped;
      if (c.parallelResidual) addInPlace(resid, attnOut);
      addInPlace(resid, mlpOut);
      if (run(`${p}hook_resid_post`, resid, d)) return stopped;
    }

    if (cache) cache.length += seq;
    const final = this.ws.float("final", N * d);
    this.norm(resid, N, this.weights.lnFinal!, final);
    if (run("ln_final.hook_normalized", final, d)) return stopped;
    const output = opts.output ?? "logits";
    if (output === "none") return { stopped: false };
    const result: ForwardResult = { final: final.slice(), stopped: false };
    if (output === "logits") result.logits = this.logits(final, N);
    return result;
  }

  /**
   * The activation at `hook` [batch * seq, width], running the model only as far as that
   * hook; a view valid until the next forward pass (copy it to keep it).
   */
  activationAt(tokens: Int32Array, batch: number, seq: number, hook: string): Float32Array {
    let act: Float32Array | null = null;
    this.forward(tokens, batch, seq, { output: "none", stopAt: hook, hooks: { [hook]: (a) => { act = a; } } });
    return act!;
  }

  /** Logits [rows, vocab] = final W_U^T (+ b_U). */
  logits(final: Float32Array, rows: number, out?: Float32Array): Float32Array {
    const { dModel: d, vocabSize: V } = this.cfg;
    const unembed = this.weights.unembed;
    if (!unembed) throw new Error(this.partsMissing("the unembedding (logits)"));
    const logits = out ?? new Float32Array(rows * V);
    this.matmul(final, rows, unembed, V, d, logits);
    if (this.weights.unembedBias) this.k.addRowVector(logits, rows, V, this.weights.unembedBias);
    if (this.cfg.logitScale !== undefined) this.k.scale(logits.subarray(0, rows * V), this.cfg.logitScale);
    const cap = this.cfg.finalSoftcap ?? 0;
    if (cap > 0) for (let i = 0; i < rows * V; i++) logits[i] = cap * Math.tanh(logits[i]! / cap);
    return logits;
  }

  /**
   * Next-token cross-entropy per position from final hidden states: loss[b, t] for t < T-1
   * predicts tokens[b, t+1]; [B, T-1]. The unembedding runs in chunks of rows so the full
   * [B*T, vocab] logits never exist at once; chunks of ~1024 rows keep the GEMM's packing
   * of the unembedding matrix (vocab x d) a small share of its work.
   */
  nextTokenLosses(tokens: Int32Array, batch: number, seq: number, final: Float32Array, chunkRows = 1024): Float32Array {
    const V = this.cfg.vocabSize;
    const d = this.cfg.dModel;
    const N = batch * seq;
    const targets = nextTokenTargets(tokens, N, seq);
    const losses = new Float32Array(N);
    const logits = this.ws.float("chunk_logits", Math.min(chunkRows, N) * V);
    for (let r0 = 0; r0 < N; r0 += chunkRows) {
      const rows = Math.min(chunkRows, N - r0);
      this.logits(final.subarray(r0 * d, (r0 + rows) * d), rows, logits);
      this.k.crossEntropyRows(logits, rows, V, targets.subarray(r0, r0 + rows), losses.subarray(r0, r0 + rows));
    }
    const out = new Float32Array(batch * (seq - 1));
    for (let b = 0; b < batch; b++) out.set(losses.subarray(b * seq, b * seq + seq - 1), b * (seq - 1));
    return out;
  }

  /** out = n(x); a block without the norm (null) passes x on as it is. */
  private norm(x: Float32Array, rows: number, n: Norm | null, out: Float32Array): void {
    const { dModel: d, normEps: eps } = this.cfg;
    if (!n) out.set(x.subarray(0, rows * d));
    else if (this.cfg.norm === "rmsnorm") this.k.rmsNorm(x, rows, d, n.w, eps, out);
    else this.k.layerNorm(x, rows, d, n.w, n.b, eps, out);
  }

  /**
   * Norms the `heads` heads at `offset` in every row of qkv [rows, stride] with weights w
   * (the q/k norms, config qkNorm): RMS-norms each head on its own for w [dHead] (Qwen 3,
   * Gemma 3), all of them as one vector for w [heads * dHead] (OLMo 2); LayerNorms each head
   * on its own, then times its own weights in w [heads * dHead] (StableLM, Cohere). Gathered
   * into one contiguous block, normed in one call, put back.
   */
  headNorm(qkv: Float32Array, rows: number, stride: number, offset: number, heads: number, w: Float32Array): void {
    const { dHead: dh, normEps: eps } = this.cfg;
    const width = heads * dh;
    const block = gatherHeads(qkv, rows, stride, offset, width, this.ws.float("head_norm", rows * width));
    if (this.cfg.qkNorm === "head-layernorm") {
      this.k.layerNorm(block, rows * heads, dh, this.ws.float("head_norm_ones", dh).fill(1), null, eps, block);
      for (let i = 0; i < rows * width; i++) block[i]! *= w[i % width]!;
    } else {
      this.k.rmsNorm(block, (rows * width) / w.length, w.length, w, eps, block);
    }
    scatterHeads(block, qkv, rows, stride, offset, width);
  }

  /** heads [rows, nHeads dHead] times sigmoid(h W_gate^T), elementwise (Qwen3.5's gated attention output). */
  private gateHeads(h: Float32Array, rows: number, wGate: WeightMatrix, heads: Float32Array): void {
    const width = this.cfg.nHeads * this.cfg.dHead;
    const gate = this.ws.float("attn_gate", rows * width);
    this.matmul(h, rows, wGate, width, this.cfg.dModel, gate);
    for (let i = 0; i < rows * width; i++) heads[i]! /= 1 + Math.exp(-gate[i]!);
  }

  /**
   * A Gated DeltaNet layer (gated-deltanet.ts) on the normed stream h [batch * seq, dModel]
   * into out: its projections, the recurrence (from the cache's state, advanced past these
   * tokens; without a cache, from none), the output projection.
   */
  private deltaNet(w: DeltaNetWeights, layer: number, h: Float32Array, batch: number, seq: number, cache: KvCache | undefined,
    out: Float32Array): void {
    const s = this.cfg.linearAttention!;
    const N = batch * seq, d = this.cfg.dModel, C = convWidth(s), V = s.vHeads * s.dv;
    const project = (name: string, W: WeightMatrix, width: number) => {
      const y = this.ws.float(name, N * width);
      this.matmul(h, N, W, width, d, y);
      return y;
    };
    const state = cache ? cache.deltaNet![layer]! : newDeltaNetState(s, batch);
    const heads = deltaNetHeads(this.k, s, w, this.cfg.normEps, batch, seq, project("dn_qkv", w.wqkv, C), project("dn_z", w.wz, V),
      project("dn_b", w.wb, s.vHeads), project("dn_a", w.wa, s.vHeads), state);
    this.matmul(heads, N, w.wout, d, V, out);
  }

  /** A Mamba-2 layer on the normed stream h [batch * seq, dModel] into out (from the cache's state, or none). */
  private mamba(w: MambaWeights, layer: number, h: Float32Array, batch: number, seq: number, cache: KvCache | undefined,
    out: Float32Array): void {
    const s = this.cfg.mamba!, d = this.cfg.dModel, N = batch * seq, inner = innerWidth(s), width = inner + mambaConvWidth(s) + s.heads;
    const proj = this.ws.float("mamba_proj", N * width);
    this.matmul(h, N, w.win, width, d, proj);
    const state = cache ? cache.mamba![layer]! : newMambaState(s, batch);
    this.matmul(mambaMix(this.k, s, w, this.cfg.normEps, batch, seq, proj, state), N, w.wout, d, inner, out);
  }

  /** An LFM2 short convolution on the normed stream h [batch * seq, dModel] into out (from the cache's last inputs, or none). */
  private shortConv(w: ShortConvWeights, layer: number, h: Float32Array, batch: number, seq: number, cache: KvCache | undefined,
    out: Float32Array): void {
    const d = this.cfg.dModel, K = this.cfg.shortConv!.kernel, N = batch * seq;
    const bcx = this.ws.float("conv_bcx", N * 3 * d);
    this.matmul(h, N, w.win, 3 * d, d, bcx);
    const history = cache ? cache.shortConv![layer]! : new Float32Array(batch * (K - 1) * d);
    this.matmul(shortConvMix(this.k, d, K, batch, seq, w.conv, bcx, history), N, w.wout, d, d, out);
  }

  /** x = norm(x), through a scratch buffer. */
  private normInPlace(x: Float32Array, rows: number, n: Norm): void {
    const tmp = this.ws.float("post_norm", rows * this.cfg.dModel);
    this.norm(x, rows, n, tmp);
    x.set(tmp);
  }

  /**
   * The token (and learned position) embeddings of the batch into `resid`, running their
   * hooks; true when stopAt ended the pass there.
   */
  private embed(tokens: Int32Array, N: number, pos0: number, seq: number, resid: Float32Array,
    run: (name: string, act: Float32Array, width: number) => boolean): boolean {
    const c = this.cfg, d = c.dModel;
    const E = this.weights.embed;
    for (let r = 0; r < N; r++) {
      const t = tokens[r]!;
      if (!(t >= 0 && t < c.vocabSize)) throw new RangeError(`token id ${t} at position ${r} is outside the vocabulary (size ${c.vocabSize})`);
      if (E instanceof Uint16Array) bf16ToFloat32(E.subarray(t * d, (t + 1) * d), resid.subarray(r * d, (r + 1) * d));
      else resid.set(E.subarray(t * d, (t + 1) * d), r * d);
    }
    if (c.embedScale !== undefined) this.k.scale(resid.subarray(0, N * d), c.embedScale);
    if (run("hook_embed", resid, d)) return true;
    if (this.weights.posEmbed) {
      const pos = this.ws.float("pos", N * d);
      for (let r = 0; r < N; r++) {
        const p = pos0 + (r % seq);
        pos.set(this.weights.posEmbed.subarray(p * d, (p + 1) * d), r * d);
      }
      if (run("hook_pos_embed", pos, d)) return true;
      for (let i = 0; i < N * d; i++) resid[i]! += pos[i]!;
    }
    return false;
  }

  /**
   * The MLP of h into `out`; `hookPost` sees (and may replace) the hidden activations after
   * the nonlinearity (mlp.hook_post), and returning true stops the forward there.
   */
  private mlp(w: BlockWeights, h: Float32Array, N: number, out: Float32Array, hookPost: (hidden: Float32Array) => boolean): boolean {
    const { dModel: d, dMlp: m } = this.cfg;
    const k = this.k;
    if (this.cfg.mlp === "swiglu") {
      return this.swiglu(w as SwigluWeights & BlockWeights, m, h, N, out, hookPost);
    }
    const hidden = this.ws.float("mlp_hidden", N * m);
    this.matmul(h, N, w.win!, m, d, hidden);
    if (w.bin) k.addRowVector(hidden, N, m, w.bin);
    k.activate(hidden, ACTIVATIONS[this.cfg.activation]);
    if (hookPost(hidden)) return true;
    this.matmul(hidden, N, w.wout!, d, m, out);
    if (w.bout) k.addRowVector(out, N, d, w.bout);
    return false;
  }

  /**
   * A gated MLP of `width` hidden units, down(act(gate(h)) * up(h)), into out [N, dModel]
   * (biases where the weights have them); `hookPost` as in mlp.
   */
  private swiglu(w: SwigluWeights & Pick<BlockWeights, "bgate" | "bup" | "bdown">, width: number, h: Float32Array, N: number, out: Float32Array,
    hookPost?: (hidden: Float32Array) => boolean): boolean {
    const d = this.cfg.dModel;
    const k = this.k;
    const hidden = this.ws.float("mlp_hidden", N * width);
    const up = this.ws.float("mlp_up", N * width);
    this.matmul(h, N, w.wgate, width, d, hidden);
    if (w.bgate) k.addRowVector(hidden, N, width, w.bgate);
    this.matmul(h, N, w.wup, width, d, up);
    if (w.bup) k.addRowVector(up, N, width, w.bup);
    if (this.cfg.activation === "silu") {
      k.siluMul(hidden.subarray(0, N * width), up.subarray(0, N * width));
    } else {
      k.activate(hidden.subarray(0, N * width), ACTIVATIONS[this.cfg.activation]);
      for (let i = 0; i < N * width; i++) hidden[i]! *= up[i]!;
    }
    if (hookPost?.(hidden)) return true;
    this.matmul(hidden, N, w.wdown, d, width, out);
    if (w.bdown) k.addRowVector(out, N, d, w.bdown);
    return false;
  }

  /**
   * A mixture-of-experts MLP of h [N, dModel] into out (config moe): each token's router
   * probabilities (softmax over the experts), its topK experts (renormalised over them when
   * normTopK), and each expert run once on the tokens routed to it, its outputs added to
   * theirs at their weights; then Qwen2-MoE's shared expert, gated by sigmoid(h . g).
   */
  private moe(m: MoeWeights, h: Float32Array, N: number, out: Float32Array): void {
    const { dModel: d, moe } = this.cfg;
    const { experts: E, dExpert } = moe!;
    const routes = routeTokens(this.k, h, N, d, m, moe!, this.ws);
    out.fill(0, 0, N * d);
    const rows = this.ws.float("moe_rows", N * d);
    const expertOut = this.ws.float("moe_out", N * d);
    for (let e = 0; e < E; e++) {
      const tokens = routes.tokensOf[e]!;
      if (tokens.length === 0) continue;
      for (let i = 0; i < tokens.length; i++) rows.set(h.subarray(tokens[i]! * d, (tokens[i]! + 1) * d), i * d);
      this.swiglu(m.experts[e]!, dExpert, rows, tokens.length, expertOut);
      const weights = routes.weightsOf[e]!;
      for (let i = 0; i < tokens.length; i++) {
        const at = tokens[i]! * d, wt = weights[i]!;
        for (let c = 0; c < d; c++) out[at + c]! += wt * expertOut[i * d + c]!;
      }
    }
    if (m.shared) {
      this.swiglu(m.shared, moe!.dShared, h, N, expertOut);
      const gates = m.sharedGate ? sharedExpertGates(h, N, d, m.sharedGate) : new Float64Array(N).fill(1);
      for (let r = 0; r < N; r++) {
        for (let c = 0; c < d; c++) out[r * d + c]! += gates[r]! * expertOut[r * d + c]!;
      }
    }
  }
}

/**
 * Each token's experts: router logits h R^T [N, experts], their scores (the softmax, or
 * LFM2-MoE's sigmoid of each), the topK highest-scoring (after LFM2-MoE's selection bias; the
 * lower index first among equals), weighted by their scores, renormalised over the topK when
 * normTopK (sigmoid scores over their sum + 1e-6, as Lfm2MoeTopKRouter), times routedScale.
 * Returned per expert, the tokens routed to it, in order, and their weights; per token, every
 * expert's score [N, experts] and its topK choices [N, topK] (what the backward needs).
 */
export function routeTokens(k: Kernels, h: Float32Array, N: number, d: number, m: MoeWeights, moe: MoeConfig,
  ws: Workspace = new Workspace()): Routes {
  const { experts: E, topK, normTopK } = moe;
  const sigmoid = moe.scoring === "sigmoid", scale = moe.routedScale ?? 1, bias = m.expertBias;
  const logits = ws.float("moe_logits", N * E);
  k.sgemm(false, true, N, E, d, 1, h, d, m.router, d, 0, logits, E);
  const tokensOf: number[][] = Array.from({ length: E }, () => []);
  const weightsOf: number[][] = Array.from({ length: E }, () => []);
  const probs = new Float32Array(N * E);
  const chosen = new Int32Array(N * topK);
  const taken = new Uint8Array(E);
  const rank = (p: Float32Array, e: number) => (bias ? p[e]! + bias[e]! : p[e]!);
  for (let r = 0; r < N; r++) {
    const row = logits.subarray(r * E, (r + 1) * E);
    const p = probs.subarray(r * E, (r + 1) * E);
    const mine = chosen.subarray(r * topK, (r + 1) * topK);
    if (sigmoid) {
      for (let e = 0; e < E; e++) p[e] = 1 / (1 + Math.exp(-row[e]!));
    } else {
      let max = -Infinity;
      for (let e = 0; e < E; e++) max = Math.max(max, row[e]!);
      let sum = 0;
      for (let e = 0; e < E; e++) sum += Math.exp(row[e]! - max);
      for (let e = 0; e < E; e++) p[e] = Math.exp(row[e]! - max) / sum;
    }
    taken.fill(0);
    for (let j = 0; j < topK; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (!taken[e] && (best < 0 || rank(p, e) > rank(p, best))) best = e;
      mine[j] = best;
      taken[best] = 1;
    }
    let total = 0;
    for (const e of mine) total += p[e]!;
    const norm = !normTopK ? 1 : sigmoid ? total + 1e-6 : total;
    for (const e of mine) {
      tokensOf[e]!.push(r);
      weightsOf[e]!.push((p[e]! / norm) * scale);
    }
  }
  return { tokensOf, weightsOf, probs, chosen };
}

/** Qwen2-MoE's shared expert's weight for each token of h [N, d]: sigmoid(h . g). */
export function sharedExpertGates(h: Float32Array, N: number, d: number, g: Float32Array): Float64Array {
  const gates = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    let z = 0;
    for (let c = 0; c < d; c++) z += h[r * d + c]! * g[c]!;
    gates[r] = 1 / (1 + Math.exp(-z));
  }
  return gates;
}

export interface Routes {
  tokensOf: number[][];
  weightsOf: number[][];
  /** [N, experts]: each token's router probabilities (float32, as transformers rounds them). */
  probs: Float32Array;
  /** [N, topK]: each token's experts, most probable first. */
  chosen: Int32Array;
}

/** The `width` values at `offset` of each row of x [rows, stride] (some heads of each row), as one [rows, width] block. */
export function gatherHeads(x: Float32Array, rows: number, stride: number, offset: number, width: number,
  out: Float32Array = new Float32Array(rows * width)): Float32Array {
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * stride + offset, r * stride + offset + width), r * width);
  return out;
}

/** gatherHeads' inverse: the block put back into its rows. */
export function scatterHeads(block: Float32Array, x: Float32Array, rows: number, stride: number, offset: number, width: number): void {
  for (let r = 0; r < rows; r++) x.set(block.subarray(r * width, (r + 1) * width), r * stride + offset);
}

/** The kernels' activation for each MLP activation a config names. */
export const ACTIVATIONS: Record<LmConfig["activation"], Activation> = {
  gelu: Activation.GeluErf,
  gelu_new: Activation.GeluTanh,
  silu: Activation.Silu,
  relu: Activation.Relu,
};

/** Each position's next token [N] (row = b * seq + t), -1 at a context's last position, which predicts none. */
export function nextTokenTargets(tokens: Int32Array, N: number, seq: number): Int32Array {
  const targets = new Int32Array(N);
  for (let r = 0; r < N; r++) targets[r] = r % seq === seq - 1 ? -1 : tokens[r + 1]!;
  return targets;
}

/**
 * Scales the first `rotaryDims` dimensions of each of the first `heads` heads of every row
 * (q's heads, then k's) by `factor`: LongRoPE's cos and sin carry its attention factor, so
 * the rotated dimensions come out scaled (the rest pass through as they are).
 */
function scaleRotatedDims(x: Float32Array, rows: number, rowStride: number, heads: number, dh: number, rotaryDims: number, factor: number): void {
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < heads; h++) {
      const at = r * rowStride + h * dh;
      for (let i = 0; i < rotaryDims; i++) x[at + i] = Math.fround(x[at + i]! * factor);
    }
  }
}

/** x[i] = min(max(x[i], -limit), limit) for the first n values (OLMo's clip_qkv). */
export function clampInPlace(x: Float32Array, n: number, limit: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (v > limit) x[i] = limit;
    else if (v < -limit) x[i] = -limit;
  }
}

/** a += b, elementwise. */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
}

/** Checks every weight array has the size the config implies. */
function checkWeights(c: LmConfig, w: LmWeights): void {
  const need = (name: string, arr: WeightMatrix | null | undefined, n: number) => {
    if (!arr || arr.length !== n) throw new Error(`model weights: ${name} has ${arr?.length ?? "no"} values, expected ${n}`);
  };
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H, nKvHeads: Hkv, dHead: dh } = c;
  need("embed", w.embed, V * d);
  if (w.unembed) need("unembed", w.unembed, V * d);
  if (w.unembedBias) {
    need("unembedBias", w.unembedBias, V);
    if (!w.unembed) throw new Error("model weights: an unembedding bias without the unembedding");
  }
  if (c.positional === "learned") need("posEmbed", w.posEmbed, c.maxPositions * d);
  // A hooks-only load (ModelParts) holds the first blocks; the final norm needs them all,
  // the unembedding the final norm.
  const complete = w.blocks.length === c.nLayers;
  if (w.blocks.length > c.nLayers || (!complete && w.lnFinal) || (w.unembed && !w.lnFinal)) {
    throw new Error(`model weights: ${w.blocks.length} blocks${w.lnFinal ? ", the final norm" : ""}${w.unembed ? ", the unembedding" : ""}; expected ${c.nLayers} blocks, then the final norm, then the unembedding`);
  }
  w.blocks.forEach((b, i) => {
    const p = `blocks.${i}.`;
    if (c.preNorms !== false) {
      need(`${p}ln1.w`, b.ln1?.w, d);
      need(`${p}ln2.w`, b.ln2?.w, d);
    } else if (b.ln1 || b.ln2) {
      throw new Error(`model weights: ${p}ln1 / ln2 given for a model without norms before attention and MLP`);
    }
    if (c.postNorms) {
      need(`${p}ln1Post.w`, b.ln1Post?.w, d);
      need(`${p}ln2Post.w`, b.ln2Post?.w, d);
    }
    const linear = c.linearAttention;
    // A Mamba-2 layer's weights: Granite 4.0-H's in place of attention, Falcon-H1's beside it.
    if (c.mamba?.layers[i]) {
      const n = b.mamba, s = c.mamba, inner = innerWidth(s), C = mambaConvWidth(s);
      if (!n) throw new Error(`model weights: ${p}mamba missing for a Mamba-2 layer`);
      need(`${p}mamba.win`, n.win, (inner + C + s.heads) * d);
      need(`${p}mamba.conv`, n.conv, C * s.convKernel);
      need(`${p}mamba.convBias`, n.convBias, C);
      for (const name of ["dtBias", "A", "D"] as const) need(`${p}mamba.${name}`, n[name], s.heads);
      need(`${p}mamba.norm`, n.norm, s.gate === "gate" ? 0 : inner);
      need(`${p}mamba.wout`, n.wout, d * inner);
    }
    if (c.mamba?.layers[i] && !c.mamba.parallel) {
      if (b.wqkv.length || b.wo.length) throw new Error(`model weights: ${p}wqkv / wo given for a Mamba-2 layer`);
    } else if (c.shortConv?.layers[i]) {
      const n = b.shortConv;
      if (!n) throw new Error(`model weights: ${p}shortConv missing for a convolution layer`);
      need(`${p}shortConv.win`, n.win, 3 * d * d);
      need(`${p}shortConv.conv`, n.conv, d * c.shortConv.kernel);
      need(`${p}shortConv.wout`, n.wout, d * d);
    } else if (linear?.layers[i]) {
      const n = b.deltaNet, C = convWidth(linear), V = linear.vHeads * linear.dv;
      if (!n) throw new Error(`model weights: ${p}deltaNet missing for a linear-attention layer`);
      need(`${p}deltaNet.wqkv`, n.wqkv, C * d);
      need(`${p}deltaNet.wz`, n.wz, V * d);
      need(`${p}deltaNet.wb`, n.wb, linear.vHeads * d);
      need(`${p}deltaNet.wa`, n.wa, linear.vHeads * d);
      need(`${p}deltaNet.conv`, n.conv, C * linear.convKernel);
      need(`${p}deltaNet.dtBias`, n.dtBias, linear.vHeads);
      need(`${p}deltaNet.negA`, n.negA, linear.vHeads);
      need(`${p}deltaNet.norm`, n.norm, linear.dv);
      need(`${p}deltaNet.wout`, n.wout, d * V);
    } else {
      if (b.deltaNet || b.shortConv || (b.mamba && !c.mamba?.parallel)) throw new Error(`model weights: ${p}${b.deltaNet ? "deltaNet" : b.mamba ? "mamba" : "shortConv"} given for an attention layer`);
      need(`${p}wqkv`, b.wqkv, (H + 2 * Hkv) * dh * d);
      need(`${p}wo`, b.wo, d * H * dh);
      if (c.attnOutputGate) need(`${p}wAttnGate`, b.wAttnGate, H * dh * d);
      if (c.qkNorm) {
        const perHead = c.qkNorm !== "head";
        need(`${p}qNorm`, b.qNorm, perHead ? H * dh : dh);
        need(`${p}kNorm`, b.kNorm, perHead ? Hkv * dh : dh);
      }
    }
    const swiglu = (name: string, e: Partial<SwigluWeights> | undefined, width: number) => {
      need(`${name}wgate`, e?.wgate, width * d);
      need(`${name}wup`, e?.wup, width * d);
      need(`${name}wdown`, e?.wdown, d * width);
    };
    if (c.moe?.layers[i]) {
      const { experts, dExpert, dShared } = c.moe;
      if (!b.moe || b.moe.experts.length !== experts) throw new Error(`model weights: ${p}moe needs ${experts} experts, got ${b.moe?.experts.length ?? "none"}`);
      need(`${p}moe.router`, b.moe.router, experts * d);
      if (c.moe.expertBias) need(`${p}moe.expertBias`, b.moe.expertBias, experts);
      b.moe.experts.forEach((e, j) => swiglu(`${p}moe.experts.${j}.`, e, dExpert));
      if (dShared > 0) {
        swiglu(`${p}moe.shared.`, b.moe.shared, dShared);
        if (!c.moe.ungatedShared) need(`${p}moe.sharedGate`, b.moe.sharedGate, d);
      }
    } else if (b.moe) {
      throw new Error(`model weights: ${p}moe given for a layer with a dense MLP`);
    } else if (c.mlp === "swiglu") {
      swiglu(p, b, m);
    } else {
      need(`${p}win`, b.win, m * d);
      need(`${p}wout`, b.wout, d * m);
    }
  });
  if (w.lnFinal) need("lnFinal.w", w.lnFinal.w, d);
}

/**
 * The hook names a pattern stands for, in the forward pass's order: `*` matches one name
 * part (`blocks.*.hook_resid_post`: every block's output); a name without `*` is itself.
 */
export function expandHookPattern(pattern: string, names: readonly string[]): string[] {
  if (!pattern.includes("*")) return [pattern];
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]+")}$`);
  const hits = names.filter((n) => re.test(n));
  if (hits.length === 0) throw new Error(`no hook point matches "${pattern}"`);
  return hits;
}

/**
 * Hooks from (hook, callback) pairs where a hook may appear more than once — one part's
 * input and another's target, say: each hook's callbacks all see its activation, in order.
 */
export function fanOutHooks(entries: ReadonlyArray<readonly [string, (act: Float32Array) => void]>): Record<string, HookFn> {
  const byHook = new Map<string, Array<(act: Float32Array) => void>>();
  for (const [hook, fn] of entries) {
    const fns = byHook.get(hook);
    if (fns) fns.push(fn);
    else byHook.set(hook, [fn]);
  }
  return Object.fromEntries([...byHook].map(([hook, fns]) => [hook, (act: Float32Array) => { for (const f of fns) f(act); }]));
}
