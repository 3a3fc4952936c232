/**
 * llama2.c checkpoints (Karpathy's run.c format), e.g. the stories260K/15M/42M/110M
 * TinyStories models. Two layouts exist:
 *  - legacy (version 0): a header of 7 int32 (dim, hidden_dim, n_layers, n_heads,
 *    n_kv_heads, vocab_size, seq_len; a negative vocab_size means the classifier is not
 *    shared with the token embedding), then float32 weights: token_embedding, rms_att,
 *    wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag, [wcls].
 *  - version 1: magic "ak42" (0x616b3432), int32 version 1, the same 7 ints, a shared-
 *    classifier byte, zero padding to 256 bytes, then rms_att, rms_ffn, rms_final,
 *    token_embedding, wq, wk, wv, wo, w1, w2, w3, [wcls].
 * Matrices are [out, in]. The model: RMSNorm (eps 1e-5), rotary embeddings on adjacent
 * pairs within each head (theta 10000), grouped-query attention, SwiGLU FFN
 * w2(silu(w1 x) * w3 x), BOS = 1.
 */
import { RotaryStyle } from "../core/kernels.js";
import { type LmConfig, validateLmConfig } from "./config.js";
import { type BlockWeights, LanguageModel } from "./model.js";

const MAGIC = 0x616b3432;

/** A llama2.c checkpoint's bytes (`path` names it in errors) as a model. */
export function llama2cFromBytes(bytes: Uint8Array, path: string): LanguageModel {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const int32 = (at: number) => view.getInt32(at, true);
  const fail = (why: string): never => { throw new Error(`${path}: not a usable llama2.c checkpoint: ${why}`); };
  if (bytes.length < 28) fail(`file is ${bytes.length} bytes, too short for a header`);
  const version1 = view.getUint32(0, true) === MAGIC;
  if (version1 && int32(4) !== 1) fail(`unsupported version ${int32(4)} (only 0 and 1 are float32 formats)`);
  const h = version1 ? 8 : 0;
  const [dim, hidden, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = Array.from({ length: 7 }, (_, i) => int32(h + 4 * i)) as [number, number, number, number, number, number, number];
  const shared = version1 ? bytes[36] === 1 : vocabRaw > 0;
  const vocab = Math.abs(vocabRaw);
  for (const [name, v] of [["dim", dim], ["hidden_dim", hidden], ["n_layers", nLayers], ["n_heads", nHeads], ["n_kv_heads", nKvHeads], ["vocab_size", vocab], ["seq_len", seqLen]] as const) {
    if (!(v > 0 && v < 1 << 20)) fail(`header field ${name} = ${v} is not a plausible size`);
  }
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0) fail(`dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads} are inconsistent`);
  const hs = dim / nHeads;
  const kvDim = nKvHeads * hs;

  const start = version1 ? 256 : 28;
  const floats = Math.floor((bytes.length - start) / 4);
  const data = new Float32Array(floats);
  for (let i = 0; i < floats; i++) data[i] = view.getFloat32(start + 4 * i, true);
  let at = 0;
  const take = (n: number, what: string): Float32Array => {
    if (at + n > floats) fail(`file ends inside ${what} (needs ${(start + 4 * (at + n))} bytes, has ${bytes.length})`);
    const out = data.subarray(at, at + n);
    at += n;
    return out;
  };
  const perLayer = (n: number, what: string) => {
    const all = take(nLayers * n, what);
    return Array.from({ length: nLayers }, (_, l) => all.subarray(l * n, (l + 1) * n));
  };
  let embed: Float32Array, rmsAtt: Float32Array[], rmsFfn: Float32Array[], rmsFinal: Float32Array;
  let wq: Float32Array[], wk: Float32Array[], wv: Float32Array[], wo: Float32Array[];
  let w1: Float32Array[], w2: Float32Array[], w3: Float32Array[];
  if (version1) {
    rmsAtt = perLayer(dim, "rms_att_weight");
    rmsFfn = perLayer(dim, "rms_ffn_weight");
    rmsFinal = take(dim, "rms_final_weight");
    embed = take(vocab * dim, "token_embedding_table");
    wq = perLayer(dim * dim, "wq"); wk = perLayer(kvDim * dim, "wk"); wv = perLayer(kvDim * dim, "wv"); wo = perLayer(dim * dim, "wo");
    w1 = perLayer(hidden * dim, "w1"); w2 = perLayer(dim * hidden, "w2"); w3 = perLayer(hidden * dim, "w3");
  } else {
    embed = take(vocab * dim, "token_embedding_table");
    rmsAtt = perLayer(dim, "rms_att_weight");
    wq = perLayer(dim * dim, "wq"); wk = perLayer(kvDim * dim, "wk"); wv = perLayer(kvDim * dim, "wv"); wo = perLayer(dim * dim, "wo");
    rmsFfn = perLayer(dim, "rms_ffn_weight");
    w1 = perLayer(hidden * dim, "w1"); w2 = perLayer(dim * hidden, "w2"); w3 = perLayer(hidden * dim, "w3");
    rmsFinal = take(dim, "rms_final_weight");
    take(seqLen * (hs / 2) * 2, "freq_cis_real/imag"); // unused: run.c recomputes RoPE
  }
  const unembed = shared ? embed : take(vocab * dim, "wcls");
  if (at !== floats) fail(`${(floats - at) * 4} unexpected trailing bytes`);

  const cfg: LmConfig = {
    architecture: "llama", vocabSize: vocab, dModel: dim, nLayers, nHeads, nKvHeads, dHead: hs, dMlp: hidden,
    maxPositions: seqLen, norm: "rmsnorm", normEps: 1e-5, mlp: "swiglu", activation: "silu", positional: "rotary",
    // run.c: freq = 1 / powf(10000, i / head_size) for even i, turning adjacent pairs.
    rope: { theta: 10000, partialFactor: 1, scaling: { type: "default" } }, rotaryDims: hs,
    rotaryStyle: RotaryStyle.Interleaved, scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: false,
    tiedEmbeddings: shared, attentionBias: false, mlpBias: false, bosTokenId: 1, eosTokenId: 2,
  };
  validateLmConfig(cfg, path);
  const blocks: BlockWeights[] = Array.from({ length: nLayers }, (_, l) => {
    const wqkv = new Float32Array((dim + 2 * kvDim) * dim);
    wqkv.set(wq[l]!);
    wqkv.set(wk[l]!, dim * dim);
    wqkv.set(wv[l]!, (dim + kvDim) * dim);
    return {
      ln1: { w: rmsAtt[l]!, b: null }, ln2: { w: rmsFfn[l]!, b: null }, wqkv, bqkv: null, wo: wo[l]!, bo: null,
      wgate: w1[l]!, wup: w3[l]!, wdown: w2[l]!,
    };
  });
  return new LanguageModel(cfg, { embed, posEmbed: null, blocks, lnFinal: { w: rmsFinal, b: null }, unembed }, path);
}
