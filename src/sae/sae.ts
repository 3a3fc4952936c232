/**
 * The interface every SAE architecture implements, and the shared linear encoder/decoder
 * machinery of the sparse ones (relu, topk, batchtopk, jumprelu, abstopk, vsae).
 *
 * Each architecture supplies its activation and its loss with a hand-written backward;
 * `lossAndGrad` fills gradient tensors the trainer feeds to Adam. The sparse path never
 * forms a dense [batch, d_sae] matrix beyond the encoder pre-activations: the code is CSR
 * (sparse-code.ts) and decode/backward run on the sparse native kernels, touching only
 * the selected latents — unless the code is so dense (a ReLU SAE starting out) that
 * GEMMs on it, a block of rows at a time, are faster (dense-code.ts).
 */
import { kernels, type Kernels } from "../core/kernels.js";
import { Tensor } from "../core/tensor.js";
import type { SaeConfig } from "./config.js";
import { denormalizeRows, normalizeRows, rowStats } from "./input-norm.js";
import { codeIsDense, denseDecode, denseReconstruct, denseRowDots, denseScatterRows } from "./dense-code.js";
import { nnz, type SparseCode } from "./sparse-code.js";
import { Workspace } from "../core/workspace.js";

/** Named tensors: parameters, their gradients, optimizer moments, buffers. */
export type ParamSet = Map<string, Tensor>;

export function zerosLike(params: ParamSet): ParamSet {
  return new Map([...params].map(([name, t]) => [name, Tensor.zeros(t.shape)]));
}

/** A copy of every tensor, under the same names. */
export function cloneParams(params: ParamSet): ParamSet {
  return new Map([...params].map(([name, t]) => [name, t.clone()]));
}

/**
 * The input an SAE encodes: x - b_dec in the workspace buffer "xc", or x itself (a view of
 * its first batch rows) when b_dec is not subtracted (apply_b_dec_to_input off).
 */
export function centeredInput(k: Kernels, ws: Workspace, x: Float32Array, batch: number, b_dec: Float32Array,
  subtract: boolean): Float32Array {
  const d = b_dec.length;
  if (x.length < batch * d) throw new RangeError(`input holds ${x.length} values, a batch of ${batch} x ${d} needs ${batch * d}`);
  if (!subtract) return x.subarray(0, batch * d);
  const xc = ws.float("xc", batch * d);
  xc.set(x.subarray(0, batch * d));
  const neg = ws.float("neg_b_dec", d);
  for (let c = 0; c < d; c++) neg[c] = -b_dec[c]!;
  k.addRowVector(xc, batch, d, neg);
  return xc;
}

/** One training step's inputs. */
export interface TrainStep {
  /** Activations [batch, d_in]. */
  x: Float32Array;
  batch: number;
  /** 0-based optimizer step (drives warm-ups and annealing). */
  step: number;
  /** Seed of the noise stream (variational SAEs draw noise number step of it). */
  seed: number;
  /** Latents counted dead by the trainer (AuxK trains them), or null. */
  dead: Uint8Array | null;
  /**
   * What to reconstruct [batch, d_in], when it is not x itself: a transcoder's target,
   * the activation at its output hook (an MLP's output for an MLP's input).
   */
  target?: Float32Array;
  /** TopK and AbsTopK: the k this step selects instead of the config's (sparsify's k decay). */
  k?: number;
  /**
   * What AuxK measures the code's residual against, when `target` is not the activations
   * themselves but end-to-end training's stand-in carrying the model's loss gradient
   * (core.ts): AuxK still learns to explain the true residual, as sparsify's does.
   */
  auxTarget?: Float32Array;
  /**
   * End-to-end training (core.ts): the target is a stand-in made from this step's own
   * reconstruction, so the step calls this once with x_hat [batch, d_in] (a workspace
   * buffer, valid only during the call) as soon as its code is decoded, and reconstructs
   * what it returns instead of `target`. The architectures end-to-end training takes call it.
   */
  targetFromReconstruction?: (xHat: Float32Array) => Float32Array;
}

/** The reconstruction target of a step: its target, or x for a plain SAE. */
export function targetOf(s: TrainStep): Float32Array {
  return s.target ?? s.x;
}

/** What a step computed (losses are per token: summed over d_in, averaged over the batch). */
export interface StepStats {
  loss: number;
  /** Named loss terms (mse, l1, l0, kl, aux, ...), already weighted as in `loss`. */
  terms: Record<string, number>;
  /** sum ||x - x_hat||^2 over the batch. */
  sumSquaredError: number;
  /** Reconstruction [batch, d_in] (a workspace view, valid until the next call). */
  xHat: Float32Array;
  /** The training code (a workspace view) for L0 and dead-latent tracking. */
  code: SparseCode;
  /** Settings the SAE's own schedule had in force this step (p-annealing's p), logged beside the metrics. */
  schedule?: Record<string, number>;
}

export interface Sae {
  readonly cfg: SaeConfig;
  /** Trainable parameters, in a fixed order. */
  readonly params: ParamSet;
  /** Non-trainable state saved with the SAE (e.g. BatchTopK's inference threshold). */
  readonly buffers: ParamSet;
  /** Forward and hand-written backward for one batch; overwrites every tensor in `grads`. */
  lossAndGrad(step: TrainStep, grads: ParamSet): StepStats;
  /** The inference code of x [batch, d_in] (no noise). */
  encode(x: Float32Array, batch: number): SparseCode;
  /**
   * x_hat [batch, d_in] from a code. `x`, the input the code came from, is required by
   * SAEs with a skip connection (cfg.skip_connection), whose output adds W_skip x.
   */
  decode(code: SparseCode, x?: Float32Array): Float32Array;
  /** Trainer hook after each optimizer step (threshold EMAs and similar). */
  afterStep?(stats: StepStats): void;
  /** Trainer hook before a run of `steps` steps (p-annealing fixes its schedule). */
  startRun?(steps: number): void;
}

/**
 * About the memory an SAE takes while it encodes batches of `rows` rows: its tensors and
 * the dense [rows, d_sae] pre-activations its encoder writes, once for each of `copies`
 * SAEs sharing its weights (the same SAE run at several k). An estimate for choosing how
 * many SAEs to hold at once, not an account of every buffer.
 */
export function workingBytes(sae: Sae, rows: number, copies = 1): number {
  let bytes = 0;
  for (const t of [...sae.params.values(), ...sae.buffers.values()]) bytes += t.data.byteLength;
  return bytes + copies * rows * sae.cfg.d_sae * Float32Array.BYTES_PER_ELEMENT;
}

/**
 * W_dec [d_sae, d_in], for evals that read latents' directions or ablate them through the
 * decoder; `purpose` names the eval in the error for SAEs without a linear decoder.
 */
export function decoderMatrix(sae: Sae, purpose: string): Float32Array {
  const W_dec = sae.params.get("W_dec");
  if (!W_dec) throw new Error(`${purpose} needs an SAE with a linear decoder (W_dec); a ${sae.cfg.architecture} SAE has none`);
  return W_dec.data;
}

/**
 * W_dec for evals that remove f_j W_dec_j from activations pooled over tokens (TPP, SCR):
 * refused for an SAE that normalises each token, whose latents decode at each token's own
 * scale, which pooling loses.
 */
export function pooledDecoderMatrix(sae: Sae, purpose: string): Float32Array {
  if (sae.cfg.input_normalization !== "none") {
    throw new Error(`${purpose} removes latents from activations pooled over tokens; this SAE normalises each token (${sae.cfg.input_normalization}), so its latents' parts depend on each token's scale`);
  }
  return decoderMatrix(sae, purpose);
}

/** The transposed (per-latent) view of a code that the scatter kernels need. */
interface Transposed {
  colPtr: Int32Array;
  entries: Int32Array;
  entryRow: Int32Array;
}

/**
 * Parameters W_enc [d_sae, d_in], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] (and
 * W_skip [d_in, d_in] with a skip connection) and the operations every linear-encoder SAE
 * shares.
 */
export abstract class LinearSae implements Sae {
  readonly params: ParamSet;
  readonly buffers: ParamSet = new Map();
  protected readonly ws = new Workspace();
  protected readonly k: Kernels = kernels();

  constructor(readonly cfg: SaeConfig, params?: ParamSet) {
    const { d_in: d, d_sae: m } = cfg;
    this.params = params ?? new Map([
      ["W_enc", Tensor.zeros([m, d])],
      ["b_enc", Tensor.zeros([m])],
      ["W_dec", Tensor.zeros([m, d])],
      ["b_dec", Tensor.zeros([d])],
    ]);
    this.param("W_enc").expectShape([m, d], "W_enc");
    this.param("b_enc").expectShape([m], "b_enc");
    this.param("W_dec").expectShape([m, d], "W_dec");
    this.param("b_dec").expectShape([d], "b_dec");
    if (cfg.skip_connection) {
      // Zero at the start, as sparsify and SAELens initialise it: the code begins alone.
      if (!this.params.has("W_skip")) this.params.set("W_skip", Tensor.zeros([d, d]));
      this.param("W_skip").expectShape([d, d], "W_skip");
    } else if (this.params.has("W_skip")) {
      throw new Error(`${cfg.architecture} SAE: a W_skip tensor was given but the config has no skip connection (skip_connection: false)`);
    }
  }

  /**
   * One step of the architecture: the code reconstructs targetOf(s). With a skip connection
   * lossAndGrad has already taken the skip's output out of that target, so the loss (and
   * AuxK's residual) sees only what the code must still explain.
   */
  protected abstract sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats;
  abstract encode(x: Float32Array, batch: number): SparseCode;

  lossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const W_skip = this.W_skip;
    if (!W_skip) return this.sparseLossAndGrad(s, grads);
    if (s.targetFromReconstruction) throw new Error("end-to-end training does not take a skip connection");
    const d = this.cfg.d_in;
    const n = s.batch * d;
    // rest = target - x W_skip^T: what the code reconstructs. W_skip's gradient is added by
    // outputGrads, from the same dL/dx_hat that b_dec gets.
    const rest = this.ws.float("skip_rest", n);
    rest.set(targetOf(s).subarray(0, n));
    this.k.sgemm(false, true, s.batch, d, d, -1, s.x, d, W_skip, d, 1, rest, d);
    const stats = this.sparseLossAndGrad({ ...s, target: rest }, grads);
    this.addSkip(s.x, s.batch, stats.xHat);
    return stats;
  }

  param(name: string): Tensor {
    const t = this.params.get(name) ?? this.buffers.get(name);
    if (!t) throw new Error(`${this.cfg.architecture} SAE has no parameter "${name}"`);
    return t;
  }

  protected get W_enc(): Float32Array { return this.param("W_enc").data; }
  protected get b_enc(): Float32Array { return this.param("b_enc").data; }
  protected get W_dec(): Float32Array { return this.param("W_dec").data; }
  protected get b_dec(): Float32Array { return this.param("b_dec").data; }
  /** W_skip [d_in (out), d_in (in)], or null without a skip connection. */
  protected get W_skip(): Float32Array | null { return this.params.get("W_skip")?.data ?? null; }

  /**
   * xc = x - b_dec (or x itself when apply_b_dec_to_input is off), after the per-token
   * input normalisation when the SAE has one.
   */
  protected centered(x: Float32Array, batch: number): Float32Array {
    const mode = this.cfg.input_normalization;
    if (mode !== "none") {
      const d = this.cfg.d_in;
      if (x.length < batch * d) throw new RangeError(`input holds ${x.length} values, a batch of ${batch} x ${d} needs ${batch * d}`);
      const normalized = this.ws.float("x_normalized", batch * d);
      normalizeRows(mode, x, batch, d, rowStats(mode, x, batch, d), normalized);
      x = normalized;
    }
    return centeredInput(this.k, this.ws, x, batch, this.b_dec, this.cfg.apply_b_dec_to_input);
  }

  /** pre (without b_enc, which selection kernels fold in) = xc W_enc^T, [batch, d_sae]. */
  protected preActivations(xc: Float32Array, batch: number): Float32Array {
    const { d_in: d, d_sae: m } = this.cfg;
    const pre = this.ws.float("pre", batch * m);
    this.k.sgemm(false, true, batch, m, d, 1, xc, d, this.W_enc, d, 0, pre, m);
    return pre;
  }

  /**
   * x_hat = W_dec^T f + b_dec (+ W_skip x with a skip connection), mapped back to each
   * token's scale when the SAE normalises its input.
   */
  decode(code: SparseCode, x?: Float32Array): Float32Array {
    const mode = this.cfg.input_normalization;
    if (!x && (this.W_skip || mode !== "none")) {
      const why = this.W_skip ? "has a skip connection" : `normalises each token (${mode})`;
      throw new Error(`this ${this.cfg.architecture} SAE ${why}: decode needs the input x beside the code`);
    }
    const out = this.decodeCode(code);
    if (this.W_skip) this.addSkip(x!, code.batch, out);
    if (mode !== "none") {
      const d = this.cfg.d_in;
      if (x!.length < code.batch * d) throw new RangeError(`input holds ${x!.length} values, a batch of ${code.batch} x ${d} needs ${code.batch * d}`);
      denormalizeRows(out, code.batch, d, rowStats(mode, x!, code.batch, d));
    }
    return out;
  }

  /**
   * What a training step's code reconstructs: targetOf(s), or in an end-to-end step the
   * stand-in made from this code's own x_hat, decoded here for it.
   */
  protected reconstructionTarget(s: TrainStep, code: SparseCode): Float32Array {
    return s.targetFromReconstruction ? s.targetFromReconstruction(this.decodeCode(code)) : targetOf(s);
  }

  /** W_dec^T f + b_dec: the code's part of x_hat (all of it without a skip connection). */
  protected decodeCode(code: SparseCode): Float32Array {
    const d = this.cfg.d_in;
    const out = this.ws.float("x_hat", code.batch * d);
    if (codeIsDense(code)) denseDecode(this.k, this.ws, code, this.W_dec, d, this.b_dec, out);
    else this.k.sparseDecode(code.batch, code.rowPtr, code.idx, code.val, this.W_dec, d, this.b_dec, out);
    return out;
  }

  /** out += x W_skip^T, the skip connection's term. */
  private addSkip(x: Float32Array, batch: number, out: Float32Array): void {
    const d = this.cfg.d_in;
    if (x.length < batch * d) throw new RangeError(`input holds ${x.length} values, a batch of ${batch} x ${d} needs ${batch * d}`);
    this.k.sgemm(false, true, batch, d, d, 1, x, d, this.W_skip!, d, 1, out, d);
  }

  /** sum ||x - x_hat||^2, and dL/dx_hat = (2/B)(x_hat - x) into the workspace buffer "g_xhat". */
  protected reconstruction(x: Float32Array, xHat: Float32Array, batch: number): {
    sumSq: number; gXhat: Float32Array;
  } {
    const n = batch * this.cfg.d_in;
    const gXhat = this.ws.float("g_xhat", n);
    const sumSq = this.k.diffScaled(xHat, x.subarray(0, n), gXhat, 2 / batch);
    return { sumSq, gXhat };
  }

  /**
   * Decode, the reconstruction loss and the decoder's backward in one fused kernel: x_hat,
   * dL/dx_hat = weight (2/B) (x_hat - x), dL/dval = dL/dx_hat . W_dec rows per entry (into
   * workspace buffers under `name`), and grad(W_dec) rows = sum val * dL/dx_hat, written
   * (or added, when `accumulate`) into `grads` when given. Returns sum ||x - x_hat||^2
   * (unweighted). The encoder's side is left to scatterGrads with a null decoder gradient.
   */
  protected reconstructFused(code: SparseCode, x: Float32Array, batch: number, name = "", weight = 1,
    grads: ParamSet | null = null, accumulate = false): {
    sumSq: number; xHat: Float32Array; gXhat: Float32Array; gVal: Float32Array;
  } {
    const d = this.cfg.d_in;
    const xHat = this.ws.float(`${name}x_hat`, batch * d);
    const gXhat = this.ws.float(`${name}g_xhat`, batch * d);
    const gVal = this.ws.float(`${name}code_g_val`, nnz(code));
    const gW = grads?.get("W_dec")!.data ?? null;
    const scale = (2 * weight) / batch;
    const sumSq = codeIsDense(code)
      ? denseReconstruct(this.k, this.ws, code, this.W_dec, d, this.b_dec, x, scale, xHat, gXhat, gVal, gW, accumulate)
      : this.k.sparseReconstruct(batch, code.rowPtr, code.idx, code.val, this.W_dec, d, this.b_dec,
        x, scale, xHat, gXhat, gVal, gW, accumulate);
    return { sumSq, xHat, gXhat, gVal };
  }

  /** dL/dval[e] = g[b(e)] . W_dec[idx[e]]: the gradient reaching each code entry. */
  protected codeGrad(code: SparseCode, g: Float32Array, name = "g_val"): Float32Array {
    const out = this.ws.float(name, nnz(code));
    if (codeIsDense(code)) denseRowDots(this.k, this.ws, code, g, this.W_dec, this.cfg.d_in, out);
    else this.k.sparseRowDots(code.batch, code.rowPtr, code.idx, g, this.W_dec, this.cfg.d_in, out);
    return out;
  }

  protected transpose(code: SparseCode, name: string): Transposed {
    const n = nnz(code);
    const t = {
      colPtr: this.ws.int(`${name}_col_ptr`, this.cfg.d_sae + 1),
      entries: this.ws.int(`${name}_entries`, n),
      entryRow: this.ws.int(`${name}_entry_row`, n),
    };
    this.k.sparseTranspose(code.batch, code.rowPtr, code.idx, this.cfg.d_sae, t.colPtr, t.entries, t.entryRow);
    return t;
  }

  /**
   * out[r] (+)= sum over latent r's entries of coef[e] X[b(e)], outBias[r] (+)= sum coef[e]
   * (outBias may be null): the sparse scatter on the code's transpose (`transposed`, or made
   * under that name), or its dense twin for a dense code, which needs no transpose.
   */
  protected scatterRows(code: SparseCode, transposed: Transposed | string, coef: Float32Array, X: Float32Array,
    accumulate: boolean, out: Float32Array, outBias: Float32Array | null): void {
    const d = this.cfg.d_in;
    if (codeIsDense(code)) {
      denseScatterRows(this.k, this.ws, code, coef, X, d, accumulate, out, outBias);
      return;
    }
    const t = typeof transposed === "string" ? this.transpose(code, transposed) : transposed;
    this.k.sparseScatterRows(this.cfg.d_sae, t.colPtr, t.entries, t.entryRow, coef, X, d, accumulate, out, outBias);
  }

  /**
   * Gradients of the linear maps for one code: W_dec rows (+)= sum val * gOut (unless gOut
   * is null: reconstructFused has done them), and through the encoder W_enc rows (+)=
   * sum gPre * xc, b_enc (+)= sum gPre. Only selected rows are touched by the sums (others
   * get zero unless accumulating). `transposed` as scatterRows takes it.
   */
  protected scatterGrads(code: SparseCode, transposed: Transposed | string, gOut: Float32Array | null, gPre: Float32Array,
    xc: Float32Array, grads: ParamSet, accumulate: boolean): void {
    const t = typeof transposed === "string" && !codeIsDense(code) ? this.transpose(code, transposed) : transposed;
    if (gOut) this.scatterRows(code, t, code.val, gOut, accumulate, grads.get("W_dec")!.data, null);
    this.scatterRows(code, t, gPre, xc, accumulate, grads.get("W_enc")!.data, grads.get("b_enc")!.data);
  }

  /**
   * Gradients of the output side from dL/dx_hat (every reconstruction term's, summed).
   * b_dec is the decoder bias (sum of dL/dx_hat over the batch) and, when subtracted from
   * the input, reaches every pre-activation through W_enc: minus W_enc^T gPreSum, the
   * per-latent sums of dL/dpre (grad(b_enc), unless given). A skip connection's W_skip gets
   * dL/dx_hat^T x.
   */
  protected outputGrads(gXhat: Float32Array, s: TrainStep, grads: ParamSet,
    gPreSum: Float32Array = grads.get("b_enc")!.data): void {
    const { d_in: d, d_sae: m } = this.cfg;
    const gb = grads.get("b_dec")!.data;
    this.k.colSums(gXhat, s.batch, d, gb, false);
    if (this.cfg.apply_b_dec_to_input) this.k.sgemm(false, false, 1, d, m, -1, gPreSum, m, this.W_enc, d, 1, gb, d);
    const gSkip = grads.get("W_skip");
    if (gSkip) this.k.sgemm(true, false, d, d, s.batch, 1, gXhat, d, s.x, d, 0, gSkip.data, d);
  }

  /**
   * The code of every entry with pre + bias > threshold (threshold null: > 0), growing the
   * workspace buffers until the entries fit: ReLU, JumpReLU and BatchTopK inference.
   */
  protected selectAbove(pre: Float32Array, batch: number, bias: Float32Array | null,
    threshold: Float32Array | null, name: string): SparseCode {
    // Start from what the last call needed, so a steady density costs one pass, not two.
    let capacity = Math.max(batch * 8, 64, this.ws.capacity(`${name}_val`));
    for (;;) {
      const code = this.codeBuffers(name, batch, capacity);
      const count = this.k.thresholdSelect(pre, batch, this.cfg.d_sae, bias, threshold, code.rowPtr, code.idx, code.val);
      if (count <= capacity) return code;
      if (count > 2 ** 31 - 1) throw new RangeError(`${count} active latents in one batch exceed int32 indexing; use a smaller batch`);
      capacity = Math.ceil(count * 1.25);
    }
  }

  /** Views of the code arrays in the workspace, for architectures that build codes. */
  protected codeBuffers(name: string, batch: number, capacity: number): SparseCode {
    return {
      batch,
      m: this.cfg.d_sae,
      rowPtr: this.ws.int(`${name}_row_ptr`, batch + 1),
      idx: this.ws.int(`${name}_idx`, capacity),
      val: this.ws.float(`${name}_val`, capacity),
    };
  }

  /** ||W_dec_j|| per latent, into the workspace buffer "dec_norms": what the penalties weighted by decoder norms read. */
  protected decoderNorms(): Float32Array {
    const { d_in: d, d_sae: m } = this.cfg;
    const norms = this.ws.float("dec_norms", m);
    this.k.rowNorms(this.W_dec, m, d, norms);
    return norms;
  }

  /**
   * grad(W_dec_j) += gNorm_j W_dec_j / ||W_dec_j||: a loss's derivative by each decoder
   * row's norm (gNorm, summed over the batch) carried to the row (skipped when all zero).
   */
  protected addNormGrads(gNorm: Float32Array, norms: Float32Array, grads: ParamSet): void {
    const { d_in: d, d_sae: m } = this.cfg;
    const rowScale = this.ws.float("norm_row_scale", m);
    let any = false;
    for (let j = 0; j < m; j++) {
      rowScale[j] = norms[j]! > 0 ? gNorm[j]! / norms[j]! : 0;
      any ||= rowScale[j] !== 0;
    }
    if (any) this.k.addScaledRows(grads.get("W_dec")!.data, this.W_dec, m, d, rowScale);
  }
}
