/**
 * The numeric kernels every hot path in saekit runs on, behind one interface with two
 * implementations: the native addon (C++, vectorized, threaded; src/core/native.ts) and
 * plain TypeScript reference twins (src/core/reference.ts) that the tests use as the oracle
 * and that saekit falls back to when the addon is not built. src/core/kernels.ts picks one.
 *
 * Conventions: matrices are row-major Float32Arrays; kernels read and write the caller's
 * arrays in place (pass `subarray` views for offsets). Sparse latent codes are CSR: row b
 * holds entries e in [rowPtr[b], rowPtr[b+1]) with latent idx[e] and value val[e]; a
 * fixed-k TopK code is CSR with rowPtr[b] = b * k.
 */
/** Elementwise activations of the transformer kernels. */
export enum Activation {
  /** Exact GELU, x * Phi(x) (GPT-NeoX "gelu"). */
  GeluErf = 0,
  /** GPT-2's tanh approximation ("gelu_new"). */
  GeluTanh = 1,
  Silu = 2,
  Relu = 3,
}

/** Rotary pairing: GPT-NeoX / Hugging Face "rotate half", or llama2.c's adjacent pairs. */
export enum RotaryStyle {
  RotateHalf = 0,
  Interleaved = 1,
}

/** How top-k ranks entries: by value (output clamped at 0), by |value| (sign kept), or by value. */
export enum SelectMode {
  Relu = 0,
  Abs = 1,
  Value = 2,
}

export interface Kernels {
  readonly kind: "native" | "reference";

  /** C[M,N] = alpha * op(A) * op(B) + beta * C (beta = 0 overwrites C). */
  sgemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number,
    C: Float32Array, ldc: number,
  ): void;

  /**
   * sgemm with B held as bfloat16 bits (bf16.ts), as language-model weights can be kept at
   * half the memory: the result is sgemm's on B widened to float32, to the bit; with
   * bf16Precision, sgemmBf16's on it (A rounded to bfloat16 too). kernels() passes
   * bf16Precision under setMatmulPrecision("medium").
   */
  sgemmBf16B(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Uint16Array, ldb: number, beta: number,
    C: Float32Array, ldc: number, bf16Precision?: boolean,
  ): void;

  /**
   * sgemm at bfloat16 precision (PyTorch's "medium" float32 matmul precision): op(A) and
   * op(B) rounded to bfloat16 (bf16.ts roundToBf16), each product exact in float32, the
   * sums in float32. On CPUs with AVX-512 BF16 the native one runs on the dot-product
   * instructions at about twice sgemm's speed; elsewhere it computes the same, no faster.
   * kernels() routes sgemm here under setMatmulPrecision("medium").
   */
  sgemmBf16(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number,
    C: Float32Array, ldc: number,
  ): void;

  // The selection kernels rank v = x[b, j] + bias[j] when a column bias is given: the SAE
  // encoder bias folds into selection instead of costing a pass over [batch, m], and a
  // NaN bias masks a column out in every mode, since NaN ranks last (AuxK picks among
  // dead latents that way).

  /**
   * Per row of x[batch, m], the top k entries sorted best-first into vals/idx [batch, k].
   * Ranking: key descending (key = v, or |v| in Abs mode), ties by lower index, NaN last.
   * Output values are v clamped at 0 in Relu mode, signed v otherwise.
   */
  topkRows(x: Float32Array, batch: number, m: number, k: number, mode: SelectMode,
    bias: Float32Array | null, vals: Float32Array, idx: Int32Array): void;

  /**
   * GroupMax (sparsify's "groupmax"): the m columns split into `groups` equal runs (m must
   * be divisible by groups); per row, each run's best entry (ranked as topkRows ranks, ties
   * by lower index) in run order into vals/idx [batch, groups], values as topkRows outputs.
   */
  groupMaxRows(x: Float32Array, batch: number, m: number, groups: number, mode: SelectMode,
    bias: Float32Array | null, vals: Float32Array, idx: Int32Array): void;

  /**
   * BatchTopK: the top kTotal entries of the whole x[batch, m] (ties by flat index), as CSR
   * with columns ascending; entries whose output value is 0 are dropped. Returns nnz.
   */
  batchTopk(x: Float32Array, batch: number, m: number, kTotal: number, mode: SelectMode,
    bias: Float32Array | null, rowPtr: Int32Array, idx: Int32Array, vals: Float32Array): number;

  /**
   * Every entry with v > threshold[j] (threshold null: v > 0) as CSR with value v: the
   * support of a ReLU or JumpReLU code. Returns the entry count; entries are written only
   * when it fits in idx/vals (otherwise call again with room for that many).
   */
  thresholdSelect(x: Float32Array, batch: number, m: number, bias: Float32Array | null,
    threshold: Float32Array | null, rowPtr: Int32Array, idx: Int32Array, vals: Float32Array): number;

  /** out[i] = counterNormal(seed, stream, offset + i) (see rng.ts); offset even. */
  fillNormal(out: Float32Array, seed: number, stream: number, offset: number): void;

  /**
   * vSAE sampling over pre[batch, m], flat index i = b*m + j: mu = act(pre + bias[j])
   * (act = ReLU or identity), z = mu + noiseScale * sigma_i * counterNormal(seed, stream, i)
   * with sigma_i = exp(logvar[i] / 2) or 1. Writes z (may alias pre); returns sum mu^2.
   */
  sampleLatents(pre: Float32Array, batch: number, m: number, bias: Float32Array | null,
    relu: boolean, logvar: Float32Array | null, noiseScale: number, seed: number,
    stream: number, z: Float32Array): number;

  /** out[b, j] = scale * act(x[b, j] + bias[j]), act = ReLU or identity. */
  biasAct(x: Float32Array, batch: number, m: number, bias: Float32Array | null, relu: boolean,
    scale: number, out: Float32Array): void;

  /** out[b] = bias + sum_e val[e] * W[idx[e]]  (W [m, d], bias [d] or null). */
  sparseDecode(batch: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array,
    W: Float32Array, d: number, bias: Float32Array | null, out: Float32Array): void;

  /** out[e] = dot(G[b(e)], W[idx[e]]). */
  sparseRowDots(batch: number, rowPtr: Int32Array, idx: Int32Array, G: Float32Array,
    W: Float32Array, d: number, out: Float32Array): void;

  /**
   * An SAE's reconstruction step and the decoder's backward (W [m, d]):
   * xHat[b] = bias + sum_e val[e] W[idx[e]], g[b] = scale * (xHat[b] - x[b]),
   * dval[e] = g[b] . W[idx[e]], and when gW is given W's gradient
   * gW[r] (+)= sum over latent r's entries of val[e] g[b(e)] (every row overwritten, zero
   * where nothing selects it, unless accumulate). Returns sum ||xHat - x||^2.
   */
  sparseReconstruct(batch: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array,
    W: Float32Array, d: number, bias: Float32Array | null, x: Float32Array, scale: number,
    xHat: Float32Array, g: Float32Array, dval: Float32Array,
    gW?: Float32Array | null, accumulate?: boolean): number;

  /** Per-latent entry lists of a CSR code: colPtr[m+1], entries (ascending), entryRow[e] = b(e). */
  sparseTranspose(batch: number, rowPtr: Int32Array, idx: Int32Array, m: number,
    colPtr: Int32Array, entries: Int32Array, entryRow: Int32Array): void;

  /**
   * out[r] = sum over entries e of latent r of coef[e] * X[b(e)]  (X [batch, d], out [m, d]);
   * coefSum[r] = sum of coef[e]. Overwrites every row, or adds when accumulate.
   */
  sparseScatterRows(m: number, colPtr: Int32Array, entries: Int32Array, entryRow: Int32Array,
    coef: Float32Array, X: Float32Array, d: number, accumulate: boolean, out: Float32Array,
    coefSum: Float32Array | null): void;

  /** PyTorch Adam step in place; bias1/bias2 = 1 - beta^step; weightDecay is decoupled (AdamW). */
  adamUpdate(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array,
    lr: number, beta1: number, beta2: number, eps: number, bias1: number, bias2: number,
    weightDecay: number): void;

  /**
   * One Schedule-Free SignSGD step in place (sparsify's "signum" optimizer: the schedulefree
   * wrapper, momentum 0.95, around SignSGD). param holds y, where grad was taken; z is the
   * base iterate and x the running average:
   *   z -= lr * weightDecay * y + lr * sign(grad);  x += averageWeight * (z - x);
   *   param = x + (1 - momentum) * (z - x).
   */
  scheduleFreeSignUpdate(param: Float32Array, grad: Float32Array, z: Float32Array, x: Float32Array,
    lr: number, weightDecay: number, averageWeight: number, momentum: number): void;

  sumSquares(x: Float32Array): number;
  dot(a: Float32Array, b: Float32Array): number;
  scale(x: Float32Array, s: number): void;
  /** out = s * (a - b); returns sum (a - b)^2. */
  diffScaled(a: Float32Array, b: Float32Array, out: Float32Array, s: number): number;
  rowNorms(X: Float32Array, rows: number, cols: number, out: Float32Array): void;
  /**
   * Barnes-Hut t-SNE's gradient of KL(exaggeration P || Q) at Y [n, 2] into grad [n, 2]:
   * grad_i = 4 (exaggeration sum_j p_ij w_ij (y_i - y_j) - sum_{j != i} w_ij^2 (y_i - y_j) / Z),
   * w_ij = 1 / (1 + |y_i - y_j|^2), Z = sum_{i != j} w_ij, P as CSR (rowPtr, col, val), the
   * repulsive sums from a quadtree (quadtree.ts) where a cell stands in for its points when
   * its side < angle x its distance (0 <= angle <= 0.7). Returns Z.
   */
  tsneGradient(Y: Float64Array, n: number, rowPtr: Int32Array, col: Int32Array, val: Float64Array,
    exaggeration: number, angle: number, grad: Float64Array): number;
  scaleRows(X: Float32Array, rows: number, cols: number, scales: Float32Array): void;
  /** G[r] += s[r] * W[r]. */
  addScaledRows(G: Float32Array, W: Float32Array, rows: number, cols: number, scales: Float32Array): void;
  /** G[r] -= (G[r].W[r] / |W[r]|^2) W[r]. */
  removeParallelComponent(W: Float32Array, G: Float32Array, rows: number, cols: number): void;
  /** out[c] (+)= sum_r X[r, c]. */
  colSums(X: Float32Array, rows: number, cols: number, out: Float32Array, accumulate: boolean): void;
  /** X[r] += bias. */
  addRowVector(X: Float32Array, rows: number, cols: number, bias: Float32Array): void;
  /** out[r, i] = X[r, pick[i]] for i < n: a block of chosen columns (each in [0, cols)). */
  gatherColumns(X: Float32Array, rows: number, cols: number, pick: Int32Array, n: number, out: Float32Array): void;
  /** out[e] = X[b, idx[e]] for each entry e of row b of a CSR code: X's values where it selected. */
  gatherEntries(X: Float32Array, rows: number, cols: number, rowPtr: Int32Array, idx: Int32Array, out: Float32Array): void;
  /** gatherEntries' inverse: out [rows, cols] zeroed, then out[b, idx[e]] += val[e] for each entry e of row b. */
  scatterEntries(rows: number, cols: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array, out: Float32Array): void;
  /**
   * A trainer's bookkeeping on a code, one pass: for each entry e with val[e] != 0,
   * fired[idx[e]] = 1 and counts[idx[e]] += 1 (counts may be null); returns the number of
   * such entries (L0 times rows). An index outside [0, cols) throws before anything changes.
   */
  codeFirings(rows: number, cols: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array, fired: Uint8Array, counts: Float64Array | null): number;

  // ---- transformer blocks (language models run in-process)

  /** out[r] = (x[r] - mean) / sqrt(var + eps) * w + b (b may be null); out may alias x. */
  layerNorm(x: Float32Array, rows: number, d: number, w: Float32Array, b: Float32Array | null,
    eps: number, out: Float32Array): void;
  /** out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w; out may alias x. */
  rmsNorm(x: Float32Array, rows: number, d: number, w: Float32Array, eps: number, out: Float32Array): void;
  /** x = act(x) in place. */
  activate(x: Float32Array, act: Activation): void;
  /** grad *= act'(x), elementwise: back through `act` given its input x (grad as long as x). */
  activationBackward(x: Float32Array, grad: Float32Array, act: Activation): void;
  /** gate = silu(gate) * up, in place (SwiGLU). */
  siluMul(gate: Float32Array, up: Float32Array): void;
  /**
   * Rotary embedding in place on `heads` heads (headDim wide, starting at `offset`) of each
   * row of x (row r is position pos0 + r % seq), rotating the first 2 * invFreq.length dims
   * of each head; pair i turns by the float32 angle position * invFreq[i].
   */
  rotary(x: Float32Array, rows: number, seq: number, pos0: number, rowStride: number, offset: number,
    heads: number, headDim: number, invFreq: Float32Array, style: RotaryStyle): void;
  /**
   * A causal depthwise convolution (Qwen3.5's Gated DeltaNet's conv1d, followed by SiLU; LFM2's
   * short convolution): per sequence of `seq` rows of x [batch*seq, channels],
   * out[t, c] = sum_j w[c, j] in[t - (kernel - 1) + j, c] (then silu when `silu`), the inputs before
   * the first row being the kernel - 1 rows of `history` [batch, kernel - 1, channels] (oldest
   * first), which then become the last kernel - 1 inputs.
   */
  causalConv(x: Float32Array, batch: number, seq: number, channels: number, kernel: number, w: Float32Array,
    history: Float32Array, silu: boolean, out: Float32Array): void;
  /**
   * Mamba-2's selective scan (Granite 4.0-H): per sequence and head h (reading B and C of group
   * h / (heads / groups)), a state S [dState, headDim] in `state` [batch, heads, dState, headDim],
   * advanced in place token by token:  S <- decay S + B u^T;  out = S^T C.
   * u, out [batch*seq, heads*headDim]; B, C [batch*seq, groups*dState]; decay [batch*seq, heads].
   */
  ssmScan(u: Float32Array, B: Float32Array, C: Float32Array, decay: Float32Array, batch: number, seq: number, heads: number,
    headDim: number, groups: number, dState: number, state: Float32Array, out: Float32Array): void;
  /**
   * ssmScan's backward from a zero state (end-to-end training through Mamba-2): from its inputs
   * and dOut = d loss / d out, each head's states recomputed, then back through time
   *   dS += C dOut^T;  dC = S_t dOut;  dB = dS u;  du = dS^T B;  dDecay = <dS, S_{t-1}>;  dS <- decay dS,
   * written (not added) to du (like u), dDecay (like decay), and dB, dC [batch*seq, heads*dState]
   * per head (the caller sums the heads of a group).
   */
  ssmScanBackward(u: Float32Array, B: Float32Array, C: Float32Array, decay: Float32Array, dOut: Float32Array, batch: number,
    seq: number, heads: number, headDim: number, groups: number, dState: number, du: Float32Array, dB: Float32Array,
    dC: Float32Array, dDecay: Float32Array): void;
  /**
   * The gated delta rule (Qwen3.5's Gated DeltaNet) over `seq` tokens of `batch` sequences:
   * value head h reads key head h / (vHeads / kHeads) and carries a state S [dk, dv] in
   * `state` [batch, vHeads, dk, dv], advanced in place token by token:
   *   S <- decay S;  S <- S + k (beta (v - S^T k))^T;  out = S^T q.
   * q, k [batch*seq, kHeads*dk] (normalised and scaled by the caller); v, out
   * [batch*seq, vHeads*dv]; decay, beta [batch*seq, vHeads].
   */
  gatedDeltaRule(q: Float32Array, k: Float32Array, v: Float32Array, decay: Float32Array, beta: Float32Array, batch: number,
    seq: number, kHeads: number, vHeads: number, dk: number, dv: number, state: Float32Array, out: Float32Array): void;
  /**
   * gatedDeltaRule's backward from a zero state (end-to-end training through a Gated DeltaNet):
   * from its inputs and dOut = d loss / d out, each value head's states recomputed, then back
   * through time, with P = decay S_{t-1}, kv = P^T k, delta = beta (v - kv), S_t = P + k delta^T:
   *   dS += q dOut^T;  dq = S_t dOut;  dDelta = dS^T k;  dk = dS delta + P dkv (dkv = -beta dDelta);
   *   dv = beta dDelta;  dBeta = <dDelta, v - kv>;  dDecay = <dS + k dkv^T, S_{t-1}>;  dS <- decay (dS + k dkv^T),
   * written (not added) to dv (like v), dDecay and dBeta (like decay), and dq, dk [batch*seq, vHeads*dk]
   * per value head (the caller sums those sharing a key head).
   */
  gatedDeltaRuleBackward(q: Float32Array, k: Float32Array, v: Float32Array, decay: Float32Array, beta: Float32Array,
    dOut: Float32Array, batch: number, seq: number, kHeads: number, vHeads: number, dk: number, dv: number, dq: Float32Array,
    dK: Float32Array, dV: Float32Array, dDecay: Float32Array, dBeta: Float32Array): void;
  /**
   * Causal attention over qkv rows (row = b*seq + t) holding q heads at qOffset, k heads at
   * kOffset and v heads at vOffset; q head h reads kv head h / (heads / kvHeads). The
   * logits are scale * q.k, capped at +-softcap as softcap * tanh(s / softcap) when
   * softcap > 0 (Gemma 2; 0: no cap). out [batch*seq, heads*headDim].
   */
  causalAttention(qkv: Float32Array, batch: number, seq: number, rowStride: number, qOffset: number,
    kOffset: number, vOffset: number, heads: number, kvHeads: number, headDim: number, scale: number,
    softcap: number, out: Float32Array): void;
  /**
   * Attention of n new queries per sequence against a key/value cache [batch, cacheLen,
   * kvHeads*headDim]: query row b*n + i (qStride floats, heads at qOffset) is position
   * pos0 + i and attends to cached positions 0..pos0 + i; logits as causalAttention's.
   * out [batch*n, heads*headDim].
   */
  cachedAttention(q: Float32Array, qStride: number, qOffset: number, batch: number, n: number, pos0: number,
    kCache: Float32Array, vCache: Float32Array, cacheLen: number, heads: number, kvHeads: number,
    headDim: number, scale: number, softcap: number, out: Float32Array): void;
  /** loss[r] = logsumexp(logits[r]) - logits[r, targets[r]] (0 where targets[r] < 0). */
  crossEntropyRows(logits: Float32Array, rows: number, vocab: number, targets: Int32Array, loss: Float32Array): void;
  /** kl[r] = KL(softmax(p[r]) || softmax(q[r])). */
  klRows(p: Float32Array, q: Float32Array, rows: number, vocab: number, kl: Float32Array): void;
  /**
   * causalAttention's input gradient, its soft cap included (softcap > 0): from dOut
   * [batch*seq, heads*headDim], d loss / d out, writes d loss / d q, k and v into dqkv, laid
   * out as qkv (its other columns untouched); the attention pattern is recomputed from qkv,
   * and a capped logit's gradient carries 1 - tanh^2(s / softcap). A kv head's gradient sums
   * over the query heads that read it.
   */
  causalAttentionBackward(qkv: Float32Array, batch: number, seq: number, rowStride: number, qOffset: number,
    kOffset: number, vOffset: number, heads: number, kvHeads: number, headDim: number, scale: number,
    softcap: number, dOut: Float32Array, dqkv: Float32Array): void;
  /**
   * In place per row: logits[r] becomes (softmax(logits[r]) - onehot(targets[r])) * scale,
   * loss[r] its cross-entropy; a row whose target is < 0 becomes 0, its loss 0.
   */
  crossEntropyGradRows(logits: Float32Array, rows: number, vocab: number, targets: Int32Array, scale: number, loss: Float32Array): void;
  /** kl[r] = KL(softmax(p[r]) || softmax(q[r])), and q[r] becomes (softmax(q[r]) - softmax(p[r])) * scale. */
  klGradRows(p: Float32Array, q: Float32Array, rows: number, vocab: number, scale: number, kl: Float32Array): void;
}
