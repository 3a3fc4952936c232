/**
 * The gradient of a language model's loss with respect to an activation spliced in at a
 * hook: what end-to-end SAE training backpropagates into the SAE (sparsify's loss_fn "ce"
 * and "kl"; Braun et al.'s e2e SAEs). The model's weights are frozen, so only input
 * gradients flow, from the loss through the unembedding, the final norm and each block
 * after the hook, down to the residual stream where the SAE's output enters.
 *
 * The spliced forward pass is the model's own (model.ts), resumed at the hook's layer, with
 * hooks keeping what the backward needs: each block's input, its normed inputs and (in a
 * sequential block) the stream between attention and MLP. The backward recomputes the
 * rest — q, k, v after the rotary, the attention pattern, the MLP's pre-activations — from
 * those, one block at a time, on the same GEMM:
 *
 *   parallel (GPT-NeoX):  post = pre + attn(ln1(pre)) + mlp(ln2(pre))
 *       dpre = dpost + ln1'(attn'(dpost)) + ln2'(mlp'(dpost))
 *   sequential (GPT-2, Llama):  mid = pre + attn(ln1(pre)),  post = mid + mlp(ln2(mid))
 *       dmid = dpost + ln2'(mlp'(dpost)),  dpre = dmid + ln1'(attn'(dmid))
 *
 * Losses, per the peers: "ce", the next-token cross-entropy averaged over the positions
 * that predict one (sparsify's ce); "kl", KL(clean || spliced) of the next-token
 * distributions averaged over every position (sparsify's kl). A downstream coefficient
 * adds Braun et al.'s "e2e+ds" term: coefficient / (blocks after the splice) times the sum
 * over those blocks of the mean over tokens of ||spliced - clean||^2 of each block's output
 * stream, which keeps the later activations on the model's own path.
 *
 * Hooks: a block's residual stream (hook_resid_pre / hook_resid_post), where the spliced
 * activation is the stream itself, and the block outputs that are added straight into it
 * (hook_mlp_out; hook_attn_out where the residual is parallel), where the stream after the
 * block is the clean one with the activation swapped. In a sequential block hook_attn_out
 * feeds the block's own MLP: the spliced pass reruns that block from its clean input with
 * the activation swapped in by the forward's hook, and the backward stops halfway through
 * it, at mid = pre + attn_out, whose gradient is the activation's.
 *
 * OLMo's clamp on q, k and v passes gradient only where it did not bite. Norms after
 * attention and MLP (Gemma 2, 3, OLMo 2) are undone on each output, recomputed
 * before its norm; q/k norms (per head: Gemma 3, Qwen 3; per projection: OLMo 2) between the
 * projection and the rotary; and
 * Gemma 2's soft caps, cap * tanh(s / cap), on the attention logits (in the kernel) and the
 * output logits, multiply their gradients by 1 - tanh^2. A mixture of experts (Mixtral,
 * Qwen-MoE, OLMoE, GraniteMoE) routes each token as the forward did and carries the gradient
 * through the chosen experts and, by their weights, through the router (moeBackward).
 */
import { kernels } from "../core/kernels.js";
import { attentionScale, type LmConfig } from "./config.js";
import { convWidth, deltaNetBackward, type DeltaNetWeights } from "./gated-deltanet.js";
import { innerWidth, mambaBackward, mambaConvWidth, type MambaWeights } from "./mamba2.js";
import { shortConvBackward, type ShortConvWeights } from "./short-conv.js";
import {
  ACTIVATIONS, type BlockWeights, type HookFn, type LanguageModel, type MoeWeights, type Norm, type SwigluWeights, type WeightMatrix, addInPlace, clampInPlace,
  gatherHeads, nextTokenTargets, routeTokens, scatterHeads, sharedExpertGates,
} from "./model.js";

export type SpliceLossKind = "ce" | "kl";

/** What the clean pass left for the spliced one (clean() below). */
export interface CleanPass {
  /** The hook's clean activations [batch * seq, d]: the SAE's input. */
  x: Float32Array;
  /**
   * For a block-output hook, the clean stream after the block less the clean activation
   * [N, d]; mid-block, the clean stream entering the block; null otherwise.
   */
  base: Float32Array | null;
  /** For "kl": the clean final normed states [N, d], whose logits are the reference. */
  cleanFinal: Float32Array | null;
  /** With a downstream coefficient: the clean output stream [N, d] of each block after the splice. */
  downstream: Float32Array[] | null;
}

/** The loss with the activation spliced in, its parts, and its gradient in the activation. */
export interface SpliceLoss {
  loss: number;
  /** "ce_loss" or "kl_loss", and "downstream_mse" with a downstream coefficient. */
  terms: Record<string, number>;
  grad: Float32Array;
}

/** What the backward keeps of one block of the spliced pass. */
interface BlockTape {
  pre: Float32Array;
  h1: Float32Array;
  /** The MLP's input stream: `mid` in a sequential block, `pre` in a parallel one. */
  mlpIn: Float32Array;
  h2: Float32Array;
}

export class SpliceBackward {
  /**
   * Where the spliced pass resumes: the first block after the splice, whose input stream
   * carries the spliced activation, or the block the activation is inside (midBlock).
   */
  readonly resumeLayer: number;
  /** The hook adds into the residual stream (a block's output) rather than being it. */
  private readonly added: boolean;
  /** The hook is a sequential block's hook_attn_out, which its own MLP reads. */
  private readonly midBlock: boolean;
  /** The first block whose output the downstream term compares: the first one after the hook's. */
  private readonly firstCompared: number;
  private readonly k = kernels();

  /**
   * `downstream`: the weight of the e2e+ds term (0: none), which needs blocks after the
   * splice to compare.
   */
  constructor(readonly model: LanguageModel, readonly hook: string, readonly loss: SpliceLossKind, readonly downstream = 0) {
    const c = model.cfg;
    // (Sliding-window layers need nothing: contexts are held to the window, where they attend as global ones.)
    if (loss !== "ce" && loss !== "kl") throw new Error(`unknown end-to-end loss "${loss}" (ce or kl)`);
    model.checkHook(hook);
    const m = /^blocks\.(\d+)\.hook_(resid_pre|resid_post|mlp_out|attn_out)$/.exec(hook);
    if (!m) {
      throw new Error(`end-to-end training splices into a block's residual stream (hook_resid_pre, hook_resid_post) or its outputs (hook_attn_out, hook_mlp_out), not ${hook}`);
    }
    const layer = Number(m[1]);
    this.midBlock = m[2] === "attn_out" && !c.parallelResidual;
    this.resumeLayer = m[2] === "resid_pre" || this.midBlock ? layer : layer + 1;
    this.firstCompared = m[2] === "resid_pre" ? layer : layer + 1;
    this.added = m[2] === "mlp_out" || (m[2] === "attn_out" && !this.midBlock);
    if (!model.weights.unembed || !model.weights.lnFinal) throw new Error(`end-to-end training needs the whole model (its final norm and unembedding); ${model.name} was loaded for early hooks only`);
    if (!(downstream >= 0 && Number.isFinite(downstream))) throw new RangeError(`the downstream coefficient must be >= 0, not ${downstream}`);
    if (downstream > 0 && this.firstCompared === c.nLayers) throw new Error(`the downstream term compares the blocks after ${hook}, and ${model.name} has none`);
  }

  /** The clean forward of tokens [batch, seq]: the hook's activations, and what lossAndGrad needs besides. */
  clean(tokens: Int32Array, batch: number, seq: number): CleanPass {
    const { dModel: d, nLayers } = this.model.cfg;
    const n = batch * seq * d;
    let x: Float32Array | null = null;
    // The clean stream the base comes from: after the hook's block (a block output), or
    // entering it (mid-block, where the spliced pass reruns the block from there).
    let stream: Float32Array | null = null;
    const hooks: Record<string, HookFn> = { [this.hook]: (a) => { x = a.slice(0, n); } };
    const postHook = `blocks.${this.resumeLayer - 1}.hook_resid_post`;
    if (this.added) hooks[postHook] = (a) => { stream = a.slice(0, n); };
    if (this.midBlock) hooks[`blocks.${this.resumeLayer}.hook_resid_pre`] = (a) => { stream = a.slice(0, n); };
    let stopAt = this.added ? postHook : this.hook;
    const downstream: Float32Array[] | null = this.downstream > 0 ? [] : null;
    if (downstream) {
      for (let l = this.firstCompared; l < nLayers; l++) hooks[`blocks.${l}.hook_resid_post`] = (a) => { downstream.push(a.slice(0, n)); };
      stopAt = `blocks.${nLayers - 1}.hook_resid_post`;
    }
    const r = this.model.forward(tokens, batch, seq, this.loss === "kl" ? { output: "final", hooks } : { output: "none", stopAt, hooks });
    const base: Float32Array | null = stream;
    if (this.added) for (let i = 0; i < base!.length; i++) base![i]! -= x![i]!;
    return { x: x!, base, cleanFinal: this.loss === "kl" ? r.final! : null, downstream };
  }

  /**
   * The loss with xHat [batch * seq, d] in place of the hook's activation, and its gradient
   * with respect to xHat.
   */
  lossAndGrad(tokens: Int32Array, batch: number, seq: number, clean: CleanPass, xHat: Float32Array): SpliceLoss {
    const model = this.model;
    const c = model.cfg;
    const d = c.dModel;
    const N = batch * seq;
    // The stream the spliced pass resumes from: the activation itself, or with the rest of
    // the stream added; mid-block, the block's clean input, the activation swapped in by a hook.
    const resid = this.midBlock ? clean.base!.slice(0, N * d) : xHat.slice(0, N * d);
    if (clean.base && !this.midBlock) for (let i = 0; i < resid.length; i++) resid[i]! += clean.base[i]!;

    // The spliced pass, keeping each block's inputs.
    const L = this.resumeLayer;
    const tapes: BlockTape[] = [];
    const outputs: Float32Array[] = [];
    const hooks: Record<string, HookFn> = {};
    const keep = (f: (a: Float32Array) => void): HookFn => (a) => { f(a.slice(0, N * d)); };
    for (let l = L; l < c.nLayers; l++) {
      const p = `blocks.${l}.`;
      hooks[`${p}hook_resid_pre`] = keep((a) => { tapes[l - L] = { pre: a, h1: a, mlpIn: a, h2: a }; });
      hooks[`${p}ln1.hook_normalized`] = keep((a) => { tapes[l - L]!.h1 = a; });
      if (!c.parallelResidual) hooks[`${p}hook_resid_mid`] = keep((a) => { tapes[l - L]!.mlpIn = a; });
      hooks[`${p}ln2.hook_normalized`] = keep((a) => { tapes[l - L]!.h2 = a; });
      hooks[`${p}hook_resid_post`] = keep((a) => { outputs[l - L] = a; });
    }
    if (this.midBlock) hooks[this.hook] = () => xHat.subarray(0, N * d);
    const { final } = model.forward(tokens, batch, seq, { resume: { layer: L, resid }, output: "final", hooks });

    const { loss, dFinal } = this.lossAndFinalGrad(tokens, batch, seq, final!, clean.cleanFinal);
    const terms: Record<string, number> = { [this.loss === "ce" ? "ce_loss" : "kl_loss"]: loss };
    let dResid: Float32Array = new Float32Array(N * d);
    // The final norm reads the last block's output (the spliced stream itself when no block follows).
    normBackward(c, outputs.at(-1) ?? resid, N, model.weights.lnFinal!, dFinal, dResid);
    let downstream = 0;
    // e2e+ds: weight / blocks * sum_l mean_t ||out_l - clean_l||^2; its gradient in out_l is weight / blocks * 2 (out_l - clean_l) / N.
    const blocks = c.nLayers - this.firstCompared;
    const scale = this.downstream / Math.max(1, blocks);
    for (let l = c.nLayers - 1; l >= L; l--) {
      if (this.downstream > 0 && l >= this.firstCompared) {
        const out = outputs[l - L]!;
        const ref = clean.downstream?.[l - this.firstCompared];
        if (!ref) throw new Error("the clean pass kept no downstream streams: it ran without the downstream coefficient");
        let sse = 0;
        for (let i = 0; i < N * d; i++) {
          const diff = out[i]! - ref[i]!;
          sse += diff * diff;
          dResid[i]! += (2 * scale * diff) / N;
        }
        downstream += (scale * sse) / N;
      }
      // Mid-block, the activation's gradient is mid's: the block's MLP half is all it passes through.
      dResid = this.midBlock && l === L ? this.mlpHalfBackward(l, tapes[0]!, N, dResid) : this.blockBackward(l, tapes[l - L]!, batch, seq, dResid);
    }
    if (this.downstream > 0) terms.downstream_mse = downstream;
    return { loss: loss + downstream, terms, grad: dResid };
  }

  /** The loss from the final normed states, and its gradient with respect to them, through the unembedding in chunks of rows. */
  private lossAndFinalGrad(tokens: Int32Array, batch: number, seq: number, final: Float32Array, cleanFinal: Float32Array | null): { loss: number; dFinal: Float32Array } {
    const { dModel: d, vocabSize: V } = this.model.cfg;
    const N = batch * seq;
    const dFinal = new Float32Array(N * d);
    const chunk = Math.max(1, Math.min(N, Math.floor(2 ** 24 / V)));
    const logits = new Float32Array(chunk * V);
    const reference = cleanFinal ? new Float32Array(chunk * V) : null;
    const targets = reference ? null : nextTokenTargets(tokens, N, seq);
    const rowLoss = new Float32Array(chunk);
    // CE averages over the positions that predict a next token; KL over every position.
    const count = this.loss === "ce" ? batch * (seq - 1) : N;
    if (count === 0) throw new Error("contexts of one token predict nothing");
    let total = 0;
    const cap = this.model.cfg.finalSoftcap ?? 0;
    const capped = cap > 0 ? new Float32Array(chunk * V) : null;
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const rows = Math.min(chunk, N - r0);
      this.model.logits(final.subarray(r0 * d, (r0 + rows) * d), rows, logits);
      if (capped) capped.set(logits.subarray(0, rows * V));
      if (reference) this.model.logits(cleanFinal!.subarray(r0 * d, (r0 + rows) * d), rows, reference);
      // Each row of logits becomes d loss / d logits: (softmax - the target distribution) / count.
      if (reference) {
        this.k.klGradRows(reference, logits, rows, V, 1 / count, rowLoss);
      } else {
        this.k.crossEntropyGradRows(logits, rows, V, targets!.subarray(r0, r0 + rows), 1 / count, rowLoss);
      }
      for (let r = 0; r < rows; r++) total += rowLoss[r]!;
      // Through the soft cap y = cap tanh(x / cap): dy/dx = 1 - (y / cap)^2; and Granite's logit scale.
      if (capped) for (let i = 0; i < rows * V; i++) logits[i]! *= 1 - (capped[i]! / cap) ** 2;
      if (this.model.cfg.logitScale !== undefined) this.k.scale(logits.subarray(0, rows * V), this.model.cfg.logitScale);
      // dFinal = dLogits W_U, W_U [V, d].
      matmulNN(this.k, logits, rows, this.model.weights.unembed!, d, V, dFinal.subarray(r0 * d, (r0 + rows) * d));
    }
    return { loss: total / count, dFinal };
  }

  /** d loss / d (block l's input stream), from d loss / d (its output stream). */
  private blockBackward(l: number, t: BlockTape, batch: number, seq: number, dPost: Float32Array): Float32Array {
    const c = this.model.cfg;
    const w = this.model.weights.blocks[l]!;
    const N = batch * seq;
    const dMlpIn = this.mlpHalfBackward(l, t, N, dPost);
    // Attention reads ln1 of the block input; its output adds into `mid` (sequential) or the output (parallel).
    const dAttnOut = c.parallelResidual ? dPost : dMlpIn;
    const dPre = c.parallelResidual ? dMlpIn : dMlpIn.slice();
    const dMix = this.throughResidualScale(dAttnOut);
    const parallelMamba = w.mamba && c.mamba!.parallel ? w.mamba : null;
    const dh1 = w.deltaNet ? this.deltaNetBackward(w.deltaNet, t.h1, batch, seq, dMix)
      : w.shortConv ? this.shortConvBackward(w.shortConv, t.h1, batch, seq, dMix)
      : w.mamba && !parallelMamba ? this.mambaBackward(w.mamba, t.h1, batch, seq, dMix)
      : this.attentionBackward(l, w, t.h1, batch, seq, dMix);
    // Falcon-H1: Mamba-2 beside the attention reads the same normed input.
    if (parallelMamba) addInPlace(dh1, this.mambaBackward(parallelMamba, t.h1, batch, seq, dMix));
    normBackward(c, t.pre, N, w.ln1, dh1, dPre);
    return dPre;
  }

  /**
   * d loss / d (the MLP's input stream) from d loss / d (the block's output stream): the MLP
   * reads ln2 of its input stream, and its output adds into the block's output.
   */
  private mlpHalfBackward(l: number, t: BlockTape, N: number, dPost: Float32Array): Float32Array {
    const w = this.model.weights.blocks[l]!;
    const dMlpIn = dPost.slice();
    const dh2 = this.mlpBackward(w, t.h2, N, this.throughResidualScale(dPost));
    normBackward(this.model.cfg, t.mlpIn, N, w.ln2, dh2, dMlpIn);
    return dMlpIn;
  }

  /** d loss / d (a block output before Granite's residual multiplier) from d loss / d (after it): a scaled copy; else itself. */
  private throughResidualScale(dOut: Float32Array): Float32Array {
    const scale = this.model.cfg.residualScale;
    if (scale === undefined) return dOut;
    const scaled = dOut.slice();
    this.k.scale(scaled, scale);
    return scaled;
  }

  /**
   * d loss / d (a block output before its post norm) from d loss / d (after it): the output
   * recomputed as `input` [N, n] W^T + bias for W [d, n], then the norm's backward on it.
   */
  private postNormBackward(input: Float32Array, N: number, W: WeightMatrix, n: number, bias: Float32Array | null, norm: Norm, dOut: Float32Array): Float32Array {
    const c = this.model.cfg;
    const raw = new Float32Array(N * c.dModel);
    matmulNT(this.k, input, N, W, c.dModel, n, raw, bias);
    const dRaw = new Float32Array(N * c.dModel);
    normBackward(c, raw, N, norm, dOut, dRaw);
    return dRaw;
  }

  /**
   * d loss / d h1 (the normed input) of a Gated DeltaNet layer (Qwen3.5) from d loss / d its
   * output: back through the output projection, the mixer (gated-deltanet.ts) and its four
   * input projections.
   */
  private deltaNetBackward(w: DeltaNetWeights, h: Float32Array, batch: number, seq: number, dOut: Float32Array): Float32Array {
    const c = this.model.cfg, s = c.linearAttention!;
    const N = batch * seq, d = c.dModel, C = convWidth(s), V = s.vHeads * s.dv;
    const project = (W: WeightMatrix, width: number) => {
      const y = new Float32Array(N * width);
      matmulNT(this.k, h, N, W, width, d, y);
      return y;
    };
    const dHeads = new Float32Array(N * V);
    matmulNN(this.k, dOut, N, w.wout, V, d, dHeads);
    const g = deltaNetBackward(this.k, s, w, c.normEps, batch, seq, project(w.wqkv, C), project(w.wz, V), project(w.wb, s.vHeads), project(w.wa, s.vHeads), dHeads);
    const dh = new Float32Array(N * d);
    matmulNN(this.k, g.mixed, N, w.wqkv, d, C, dh);
    matmulNN(this.k, g.z, N, w.wz, d, V, dh, 1);
    matmulNN(this.k, g.b, N, w.wb, d, s.vHeads, dh, 1);
    matmulNN(this.k, g.a, N, w.wa, d, s.vHeads, dh, 1);
    return dh;
  }

  /** d loss / d h1 (the normed input) of a Mamba-2 layer from d loss / d its output. */
  private mambaBackward(w: MambaWeights, h: Float32Array, batch: number, seq: number, dOut: Float32Array): Float32Array {
    const c = this.model.cfg, s = c.mamba!, d = c.dModel, N = batch * seq, inner = innerWidth(s), width = inner + mambaConvWidth(s) + s.heads;
    const proj = new Float32Array(N * width);
    matmulNT(this.k, h, N, w.win, width, d, proj);
    const dHeads = new Float32Array(N * inner);
    matmulNN(this.k, dOut, N, w.wout, inner, d, dHeads);
    const dProj = mambaBackward(this.k, s, w, c.normEps, batch, seq, proj, dHeads);
    const dh = new Float32Array(N * d);
    matmulNN(this.k, dProj, N, w.win, d, width, dh);
    return dh;
  }

  /** d loss / d h1 (the normed input) of an LFM2 short convolution from d loss / d its output. */
  private shortConvBackward(w: ShortConvWeights, h: Float32Array, batch: number, seq: number, dOut: Float32Array): Float32Array {
    const d = this.model.cfg.dModel, N = batch * seq;
    const bcx = new Float32Array(N * 3 * d);
    matmulNT(this.k, h, N, w.win, 3 * d, d, bcx);
    const dy = new Float32Array(N * d);
    matmulNN(this.k, dOut, N, w.wout, d, d, dy);
    const dBcx = shortConvBackward(this.k, d, this.model.cfg.shortConv!.kernel, batch, seq, w.conv, bcx, dy);
    const dh = new Float32Array(N * d);
    matmulNN(this.k, dBcx, N, w.win, d, 3 * d, dh);
    return dh;
  }

  /**
   * dqkv's heads at `offset` (d loss / d their normed values) become d loss / d their values
   * before headNorm (raw): per head, or over all of them, as w's width says.
   */
  private headNormBackward(raw: Float32Array, dqkv: Float32Array, rows: number, stride: number, offset: number, heads: number, w: Float32Array): void {
    const c = this.model.cfg;
    const width = heads * c.dHead;
    const dx = new Float32Array(rows * width);
    if (c.qkNorm === "head-layernorm") {
      // Each head's LayerNorm with its own weights: one head at a time.
      for (let h = 0; h < heads; h++) {
        const at = offset + h * c.dHead;
        const dxHead = new Float32Array(rows * c.dHead);
        normBackward({ ...c, dModel: c.dHead, norm: "layernorm" }, gatherHeads(raw, rows, stride, at, c.dHead), rows,
          { w: w.subarray(h * c.dHead, (h + 1) * c.dHead), b: null }, gatherHeads(dqkv, rows, stride, at, c.dHead), dxHead);
        scatterHeads(dxHead, dx, rows, width, h * c.dHead, c.dHead);
      }
    } else {
      const x = gatherHeads(raw, rows, stride, offset, width);
      normBackward({ ...c, dModel: w.length, norm: "rmsnorm" }, x, (rows * width) / w.length, { w, b: null }, gatherHeads(dqkv, rows, stride, offset, width), dx);
    }
    scatterHeads(dx, dqkv, rows, stride, offset, width);
  }

  /** d loss / d h2 (the MLP's normed input) from d loss / d (MLP output, after its post norm if any). */
  private mlpBackward(w: BlockWeights, h: Float32Array, N: number, dOut: Float32Array): Float32Array {
    const { dModel: d, dMlp: m } = this.model.cfg;
    const act = ACTIVATIONS[this.model.cfg.activation];
    const k = this.k;
    const dh = new Float32Array(N * d);
    if (w.moe) {
      this.moeBackward(w.moe, h, N, dOut, dh);
      return dh;
    }
    if (this.model.cfg.mlp === "swiglu") {
      this.swigluBackward(w as SwigluWeights & BlockWeights, m, h, N, dOut, dh, w.ln2Post);
      return dh;
    }
    const dHidden = new Float32Array(N * m);
    const pre = new Float32Array(N * m);
    matmulNT(k, h, N, w.win!, m, d, pre, w.bin);
    if (w.ln2Post) {
      const hidden = pre.slice();
      k.activate(hidden, act);
      dOut = this.postNormBackward(hidden, N, w.wout!, m, w.bout ?? null, w.ln2Post, dOut);
    }
    matmulNN(k, dOut, N, w.wout!, m, d, dHidden);
    k.activationBackward(pre, dHidden, act);
    matmulNN(k, dHidden, N, w.win!, d, m, dh);
    return dh;
  }

  /**
   * dh += d loss / d h through a gated MLP y = down(act(gate h) * up h) of `width` units
   * (biases where the weights have them, and its post norm when given), from dY = d loss / d y;
   * returns y before any post norm when `wantOutput` (the router's gradient needs each expert's).
   */
  private swigluBackward(w: SwigluWeights & Pick<BlockWeights, "bgate" | "bup" | "bdown">, width: number, h: Float32Array, N: number,
    dY: Float32Array, dh: Float32Array, postNorm?: Norm, wantOutput = false): Float32Array | null {
    const d = this.model.cfg.dModel;
    const act = ACTIVATIONS[this.model.cfg.activation];
    const k = this.k;
    const n = N * width;
    const gate = new Float32Array(n);
    const up = new Float32Array(n);
    matmulNT(k, h, N, w.wgate, width, d, gate, w.bgate);
    matmulNT(k, h, N, w.wup, width, d, up, w.bup);
    let y: Float32Array | null = null;
    if (postNorm || wantOutput) {
      // The output before any norm, from hidden = act(gate) * up.
      const hidden = gate.slice();
      k.activate(hidden, act);
      for (let i = 0; i < n; i++) hidden[i]! *= up[i]!;
      if (postNorm) dY = this.postNormBackward(hidden, N, w.wdown, width, w.bdown ?? null, postNorm, dY);
      if (wantOutput) {
        y = new Float32Array(N * d);
        matmulNT(k, hidden, N, w.wdown, d, width, y, w.bdown);
      }
    }
    const dHidden = new Float32Array(n);
    matmulNN(k, dY, N, w.wdown, width, d, dHidden);
    // hidden = act(gate) * up: d gate = d hidden * up * act'(gate), d up = d hidden * act(gate).
    const dGate = new Float32Array(n);
    for (let i = 0; i < n; i++) dGate[i] = dHidden[i]! * up[i]!;
    k.activationBackward(gate, dGate, act);
    k.activate(gate, act);
    for (let i = 0; i < n; i++) up[i] = dHidden[i]! * gate[i]!;
    matmulNN(k, dGate, N, w.wgate, d, width, dh, 1);
    matmulNN(k, up, N, w.wup, d, width, dh, 1);
    return y;
  }

  /**
   * dh += d loss / d h through a mixture of experts, out_t = sum_{e chosen} w_te y_e(h_t)
   * (+ sigmoid(g . h_t) s(h_t), Qwen2-MoE's shared expert), from dOut. Each expert's
   * backward runs on the tokens routed to it with dY = w_te dOut_t; the weights' own gradient
   * dw_te = dOut_t . y_te reaches the router logits l through the softmax: over every expert,
   * dl_j = p_j (dw_j [j chosen] - sum_{e chosen} dw_e p_e), or renormalised over the chosen
   * ones, a softmax over their logits alone, dl_j = w_j (dw_j - sum_e dw_e w_e) for chosen j;
   * then dh += dl R. The routing itself is piecewise constant: no gradient.
   */
  private moeBackward(m: MoeWeights, h: Float32Array, N: number, dOut: Float32Array, dh: Float32Array): void {
    const { dModel: d, moe } = this.model.cfg;
    const { experts: E, topK, normTopK, dExpert, dShared } = moe!;
    const routes = routeTokens(this.k, h, N, d, m, moe!);
    const dWeight = new Float64Array(N * E);
    for (let e = 0; e < E; e++) {
      const tokens = routes.tokensOf[e]!;
      const n = tokens.length;
      if (n === 0) continue;
      const weights = routes.weightsOf[e]!;
      const rows = new Float32Array(n * d);
      const dY = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        const t = tokens[i]!;
        rows.set(h.subarray(t * d, (t + 1) * d), i * d);
        for (let c = 0; c < d; c++) dY[i * d + c] = weights[i]! * dOut[t * d + c]!;
      }
      const dRows = new Float32Array(n * d);
      const y = this.swigluBackward(m.experts[e]!, dExpert, rows, n, dY, dRows, undefined, true)!;
      for (let i = 0; i < n; i++) {
        const t = tokens[i]!;
        let dot = 0;
        for (let c = 0; c < d; c++) {
          dh[t * d + c]! += dRows[i * d + c]!;
          dot += dOut[t * d + c]! * y[i * d + c]!;
        }
        dWeight[t * E + e] = dot;
      }
    }
    // Through the scores to the router logits, then the router.
    const dLogits = new Float32Array(N * E);
    const scale = moe!.routedScale ?? 1;
    for (let t = 0; t < N; t++) {
      const p = routes.probs.subarray(t * E, (t + 1) * E);
      const chosen = routes.chosen.subarray(t * topK, (t + 1) * topK);
      const dw = dWeight.subarray(t * E, (t + 1) * E);
      const dl = dLogits.subarray(t * E, (t + 1) * E);
      if (moe!.scoring === "sigmoid") {
        // LFM2-MoE: w_e = scale p_e / (S + 1e-6) (S the chosen scores' sum) or scale p_e, p = sigmoid(logit).
        let total = 1e-6;
        for (const e of chosen) total += p[e]!;
        let mean = 0;
        if (normTopK) for (const e of chosen) mean += (dw[e]! * p[e]!) / total;
        for (const e of chosen) {
          const dp = normTopK ? (scale * (dw[e]! - mean)) / total : scale * dw[e]!;
          dl[e] = dp * p[e]! * (1 - p[e]!);
        }
      } else if (normTopK) {
        let total = 0;
        for (const e of chosen) total += p[e]!;
        let mean = 0;
        for (const e of chosen) mean += dw[e]! * (p[e]! / total);
        for (const e of chosen) dl[e] = (p[e]! / total) * (dw[e]! - mean);
      } else {
        let mean = 0;
        for (const e of chosen) mean += dw[e]! * p[e]!;
        for (let j = 0; j < E; j++) dl[j] = p[j]! * (dw[j]! - mean);
      }
    }
    matmulNN(this.k, dLogits, N, m.router, d, E, dh, 1);
    if (m.shared && !m.sharedGate) {
      // Granite 4.0: out += s(h), ungated.
      this.swigluBackward(m.shared, dShared, h, N, dOut.slice(0, N * d), dh, undefined, true);
    } else if (m.shared) {
      // out += sigma(z) s(h), z = g . h: ds = sigma dOut; dz = sigma (1 - sigma) (dOut . s).
      const gates = Float32Array.from(sharedExpertGates(h, N, d, m.sharedGate!));
      const dS = dOut.slice(0, N * d);
      this.k.scaleRows(dS, N, d, gates);
      const s = this.swigluBackward(m.shared, dShared, h, N, dS, dh, undefined, true)!;
      for (let t = 0; t < N; t++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += dOut[t * d + c]! * s[t * d + c]!;
        const dz = gates[t]! * (1 - gates[t]!) * dot;
        for (let c = 0; c < d; c++) dh[t * d + c]! += dz * m.sharedGate![c]!;
      }
    }
  }

  /**
   * d loss / d h1 (the attention's normed input) from d loss / d (attention output): back
   * through the output projection; then per head, with P the causal softmax of scale q.k
   * and z = P v (the kernel's causalAttentionBackward),
   *   dv = P^T dz,  dP = dz v^T,  dS = P * (dP - rowsum(dP * P)),  dq = scale dS k,  dk = scale dS^T q;
   * then the rotary undone on dq and dk, and back through the fused q/k/v projection.
   */
  private attentionBackward(l: number, w: BlockWeights, h: Float32Array, batch: number, seq: number, dOut: Float32Array): Float32Array {
    const c = this.model.cfg;
    const k = this.k;
    const { nHeads: H, nKvHeads: Hkv, dHead: dh, dModel: d } = c;
    const N = batch * seq;
    const W = (H + 2 * Hkv) * dh;
    const qkv = new Float32Array(N * W);
    matmulNT(k, h, N, w.wqkv, W, d, qkv, w.bqkv);
    // The clamp (clip_qkv) passes no gradient where it bit: those entries are marked, at OLMo's
    // clamp of the projections or OLMoE's after the q/k norms.
    let clipped: Uint8Array | null = null;
    const clamp = () => {
      clipped = Uint8Array.from(qkv, (v) => (Math.abs(v) > c.clipQkv! ? 1 : 0));
      clampInPlace(qkv, N * W, c.clipQkv!);
    };
    if (c.clipQkv && !c.clipQkvAfterNorm) clamp();
    // The q/k norms act between the projection and the rotary: kept un-normed for their backward.
    const rawQk = c.qkNorm ? qkv.slice() : null;
    if (c.qkNorm) {
      this.model.headNorm(qkv, N, W, 0, H, w.qNorm!);
      this.model.headNorm(qkv, N, W, H * dh, Hkv, w.kNorm!);
    }
    if (c.clipQkv && c.clipQkvAfterNorm) clamp();
    this.model.rotateQueriesAndKeys(qkv, N, seq, 0, W, l);
    const scale = attentionScale(c, l);
    const softcap = c.attnSoftcap ?? 0;
    // The heads' mix z, where the backward needs it: under a norm on the output, or a gate.
    let z: Float32Array | null = null;
    if (w.ln1Post || w.wAttnGate) {
      z = new Float32Array(N * H * dh);
      k.causalAttention(qkv, batch, seq, W, 0, H * dh, (H + Hkv) * dh, H, Hkv, dh, scale, softcap, z);
    }
    // Qwen3.5 gates each head's output, z sigmoid(G) with G = h1 W_gate^T, before the projection.
    let gate: Float32Array | null = null;
    if (w.wAttnGate) {
      gate = new Float32Array(N * H * dh);
      matmulNT(k, h, N, w.wAttnGate, H * dh, d, gate);
      for (let i = 0; i < N * H * dh; i++) gate[i] = 1 / (1 + Math.exp(-gate[i]!));
    }
    if (w.ln1Post) {
      // The output before its norm: the heads' (gated) mix through the output projection.
      const projected = gate ? z!.map((v, i) => v * gate[i]!) : z!;
      dOut = this.postNormBackward(projected, N, w.wo, H * dh, w.bo, w.ln1Post, dOut);
    }
    const dz = new Float32Array(N * H * dh);
    matmulNN(k, dOut, N, w.wo, H * dh, d, dz);
    let dh1Gate: Float32Array | null = null;
    if (gate) {
      // d G = dz z sigmoid'(G), back to h1 through W_gate; dz itself times the gate.
      const dG = new Float32Array(N * H * dh);
      for (let i = 0; i < N * H * dh; i++) {
        dG[i] = dz[i]! * z![i]! * gate[i]! * (1 - gate[i]!);
        dz[i] = dz[i]! * gate[i]!;
      }
      dh1Gate = new Float32Array(N * d);
      matmulNN(k, dG, N, w.wAttnGate!, d, H * dh, dh1Gate);
    }
    const dqkv = new Float32Array(N * W);
    k.causalAttentionBackward(qkv, batch, seq, W, 0, H * dh, (H + Hkv) * dh, H, Hkv, dh, scale, softcap, dz, dqkv);
    this.model.rotateQueriesAndKeys(dqkv, N, seq, 0, W, l, true);
    const unclamp = (mask: Uint8Array | null) => {
      if (mask) for (let i = 0; i < N * W; i++) if (mask[i]) dqkv[i] = 0;
    };
    if (c.clipQkvAfterNorm) unclamp(clipped);
    if (rawQk) {
      this.headNormBackward(rawQk, dqkv, N, W, 0, H, w.qNorm!);
      this.headNormBackward(rawQk, dqkv, N, W, H * dh, Hkv, w.kNorm!);
    }
    if (!c.clipQkvAfterNorm) unclamp(clipped);
    const dh1 = dh1Gate ?? new Float32Array(N * d);
    matmulNN(k, dqkv, N, w.wqkv, d, W, dh1, dh1Gate ? 1 : 0);
    return dh1;
  }
}

type Kernels = ReturnType<typeof kernels>;


/** out [rows, n] (+)= A [rows, k] W^T + bias for W [n, k], as the forward's projections. */
function matmulNT(k: Kernels, A: Float32Array, rows: number, W: WeightMatrix, n: number, kk: number, out: Float32Array, bias?: Float32Array | null): void {
  if (W instanceof Uint16Array) k.sgemmBf16B(false, true, rows, n, kk, 1, A, kk, W, kk, 0, out, n);
  else k.sgemm(false, true, rows, n, kk, 1, A, kk, W, kk, 0, out, n);
  if (bias) k.addRowVector(out, rows, n, bias);
}

/** out [rows, n] = A [rows, k] W (+ out when accumulate) for W [k, n]: a projection's input gradient. */
function matmulNN(k: Kernels, A: Float32Array, rows: number, W: WeightMatrix, n: number, kk: number, out: Float32Array, accumulate: 0 | 1 = 0): void {
  if (W instanceof Uint16Array) k.sgemmBf16B(false, false, rows, n, kk, 1, A, kk, W, n, accumulate, out, n);
  else k.sgemm(false, false, rows, n, kk, 1, A, kk, W, n, accumulate, out, n);
}

/**
 * dx += d loss / d x through y = norm(x) * w (+ b), given dy; x̂ = (x - mean) / std
 * (layernorm) or x / rms (rmsnorm), g = dy * w:
 *   layernorm: dx = (g - mean(g) - x̂ mean(g x̂)) / std;   rmsnorm: dx = (g - x̂ mean(g x̂)) / rms
 * A missing norm (null: OLMo 2's blocks have none before attention and MLP) passes dy on.
 */
export function normBackward(c: LmConfig, x: Float32Array, rows: number, n: Norm | null, dy: Float32Array, dx: Float32Array): void {
  const { dModel: d, normEps: eps } = c;
  if (!n) {
    for (let i = 0; i < rows * d; i++) dx[i]! += dy[i]!;
    return;
  }
  const layer = c.norm === "layernorm";
  const xh = new Float64Array(d);
  const g = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let mean = 0;
    if (layer) {
      for (let i = 0; i < d; i++) mean += x[o + i]!;
      mean /= d;
    }
    let ss = 0;
    for (let i = 0; i < d; i++) ss += (x[o + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(ss / d + eps);
    let gMean = 0;
    let gxMean = 0;
    for (let i = 0; i < d; i++) {
      xh[i] = (x[o + i]! - mean) * inv;
      g[i] = dy[o + i]! * n.w[i]!;
      gMean += g[i]!;
      gxMean += g[i]! * xh[i]!;
    }
    gMean = layer ? gMean / d : 0;
    gxMean /= d;
    for (let i = 0; i < d; i++) dx[o + i]! += inv * (g[i]! - gMean - xh[i]! * gxMean);
  }
}
