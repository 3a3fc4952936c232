// Transformer building blocks for running language models in-process: normalisation,
// activations, causal attention, rotary embeddings and per-token losses. All threaded over
// rows (or batch x heads) and vectorized; every one has a TypeScript twin in
// src/core/reference.ts.
#pragma once

#include <cstdint>

namespace saekit {

// out[r] = (x[r] - mean) / sqrt(var + eps) * w + b   (b may be null); out may alias x.
void layer_norm(const float* x, long rows, long d, const float* w, const float* b, float eps, float* out);

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w; out may alias x.
void rms_norm(const float* x, long rows, long d, const float* w, float eps, float* out);

enum class Activation { GeluErf = 0, GeluTanh = 1, Silu = 2, Relu = 3 };

// x = act(x) in place.
void activation(float* x, long n, Activation act);

// grad *= act'(x): back through the activation, given its input x.
void activation_backward(const float* x, float* grad, long n, Activation act);

// gate = silu(gate) * up (SwiGLU), in place in gate.
void silu_mul(float* gate, const float* up, long n);

// Rotary position embedding in place on `heads` heads of width head_dim in each row of x
// (row r is position pos0 + r % seq), rotating the first 2 * half dims of every head.
// Style 0 (GPT-NeoX / Hugging Face Llama): pairs (i, i + half), "rotate half".
// Style 1 (llama2.c / Meta): adjacent pairs (2i, 2i + 1).
// The angle of pair i at position p is p * inv_freq[i] (the model's frequencies, scaled
// or not, computed by the caller).
void rotary(float* x, long rows, long seq, long pos0, long row_stride, long offset, long heads,
            long head_dim, const float* inv_freq, long half, int style);

// Causal multi-head attention over qkv rows (row = b * seq + t, row_stride floats), with
// q heads at q_off, k heads at k_off, v heads at v_off (head_dim floats each); q head h
// reads kv head h / (n_heads / n_kv_heads). Logits are scale * q.k, capped at +-softcap as
// softcap * tanh(s / softcap) when softcap > 0. out [rows, n_heads * head_dim].
void causal_attention(const float* qkv, long batch, long seq, long row_stride, long q_off,
                      long k_off, long v_off, long n_heads, long n_kv_heads, long head_dim,
                      float scale, float softcap, float* out);

// Attention of n new query positions per sequence against a key/value cache: query row
// (b * n + i) (q_stride floats, heads at q_off) sits at position pos0 + i and attends to
// cached positions 0 .. pos0 + i of sequence b. Caches are [batch, cache_len, n_kv_heads *
// head_dim]. out [batch * n, n_heads * head_dim]. Incremental decoding uses it.
void cached_attention(const float* q, long q_stride, long q_off, long batch, long n, long pos0,
                      const float* k_cache, const float* v_cache, long cache_len, long n_heads,
                      long n_kv_heads, long head_dim, float scale, float softcap, float* out);

// A causal depthwise convolution (Qwen3.5's Gated DeltaNet's conv1d, then SiLU; LFM2's short
// convolution): per sequence of `seq` rows of x [batch * seq, channels], out[t, c] =
// sum_j w[c, j] in[t - (kernel - 1) + j, c] (then silu, if asked), where the inputs before the
// first row are the kernel - 1 rows of history [batch, kernel - 1, channels] (oldest first),
// which then becomes the last kernel - 1 inputs. Threaded over sequences.
void causal_conv(const float* x, long batch, long seq, long channels, long kernel, const float* w, float* history,
                 bool silu, float* out);

// Mamba-2's selective scan (Granite 4.0-H): per sequence and head h (reading B and C of group
// h / (heads / groups)), a state S [d_state, head_dim] in state [batch, heads, d_state, head_dim],
// advanced in place token by token:  S <- decay S + B u^T;  out = S^T C.
// u, out [batch * seq, heads * head_dim]; B, C [batch * seq, groups * d_state]; decay [batch * seq, heads].
void ssm_scan(const float* u, const float* B, const float* C, const float* decay, long batch, long seq, long heads,
              long head_dim, long groups, long d_state, float* state, float* out);

// ssm_scan's backward from a zero state (end-to-end training through Mamba-2): from its inputs
// and d_out = d loss / d out, each head's states recomputed, then back through time
//   dS += C d_out^T;  dC = S_t d_out;  dB = dS u;  du = dS^T B;  d_decay = <dS, S_{t-1}>;  dS <- decay dS,
// written to du (like u), d_decay (like decay), and dB, dC [batch * seq, heads * d_state] per head
// (the caller sums a group's heads). Threaded over sequences x heads.
void ssm_scan_backward(const float* u, const float* B, const float* C, const float* decay, const float* d_out, long batch,
                       long seq, long heads, long head_dim, long groups, long d_state, float* du, float* dB, float* dC,
                       float* d_decay);

// The gated delta rule (Qwen3.5's Gated DeltaNet) over `seq` tokens of `batch` sequences: value
// head h reads key head h / (v_heads / k_heads) and carries S [dk, dv] in state [batch, v_heads,
// dk, dv], advanced in place token by token:
//   S <- decay S;  S <- S + k (beta (v - S^T k))^T;  out = S^T q.
// q, k [batch * seq, k_heads * dk] (normalised and scaled by the caller); v, out [batch * seq,
// v_heads * dv]; decay, beta [batch * seq, v_heads]. Threaded over sequences x value heads.
// gated_delta_rule's backward from a zero state (end-to-end training through a Gated DeltaNet):
// from its inputs and d_out = d loss / d out, each value head's states recomputed, then back
// through time, with P = decay S_{t-1}, kv = P^T k, delta = beta (v - kv), S_t = P + k delta^T:
//   dS += q d_out^T;  dq = S_t d_out;  d_delta = dS^T k;  dk = dS delta + P dkv (dkv = -beta d_delta);
//   dv = beta d_delta;  d_beta = <d_delta, v - kv>;  d_decay = <dP, S_{t-1}> (dP = dS + k dkv^T);  dS <- decay dP,
// written to dv (like v), d_decay and d_beta (like decay), and dq, dk [batch * seq, v_heads * dk]
// per value head (the caller sums those sharing a key head). Threaded over sequences x value heads.
void gated_delta_rule_backward(const float* q, const float* k, const float* v, const float* decay, const float* beta,
                               const float* d_out, long batch, long seq, long k_heads, long v_heads, long dk, long dv,
                               float* dq, float* dk_out, float* dv_out, float* d_decay, float* d_beta);

void gated_delta_rule(const float* q, const float* k, const float* v, const float* decay, const float* beta,
                      long batch, long seq, long k_heads, long v_heads, long dk, long dv, float* state,
                      float* out);

// Per row of logits [rows, V]: loss[r] = logsumexp(logits[r]) - logits[r, target[r]]
// (targets < 0 give 0). Returns nothing; writes loss.
void cross_entropy_rows(const float* logits, long rows, long V, const int32_t* targets, float* loss);

// Per row: KL(softmax(p[r]) || softmax(q[r])).
void kl_rows(const float* p, const float* q, long rows, long V, float* kl);

// The input gradient of causal_attention (with its soft cap when softcap > 0): from dout
// [rows, n_heads * head_dim] = d loss / d out, writes d loss / d q, k, v into dqkv at the
// q/k/v offsets of qkv's layout (other columns untouched); the probabilities are
// recomputed from qkv, and a capped logit's gradient carries 1 - tanh^2(s / softcap).
void causal_attention_backward(const float* qkv, long batch, long seq, long row_stride, long q_off,
                               long k_off, long v_off, long n_heads, long n_kv_heads, long head_dim,
                               float scale, float softcap, const float* dout, float* dqkv);

// In place, per row: logits[r] becomes (softmax(logits[r]) - onehot(targets[r])) * scale and
// loss[r] the row's cross-entropy; rows with targets[r] < 0 become 0, their loss 0.
void cross_entropy_grad_rows(float* logits, long rows, long V, const int32_t* targets, float scale, float* loss);

// Per row: kl[r] = KL(softmax(p[r]) || softmax(q[r])), and q[r] becomes
// (softmax(q[r]) - softmax(p[r])) * scale, the KL's gradient in q's logits (times scale).
void kl_grad_rows(const float* p, float* q, long rows, long V, float scale, float* kl);

}  // namespace saekit
