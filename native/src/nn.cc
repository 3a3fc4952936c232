#include "nn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu.h"
#include "fastmath.h"
#include "threadpool.h"

namespace saekit {
namespace {

SAEKIT_BODY void layer_norm_rows_body(const float* x, long r0, long r1, long d, const float* w,
                                      const float* b, float eps, float* out) {
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (long c = 0; c < d; c++) sum += xr[c];
    const float mean = sum / static_cast<float>(d);
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (long c = 0; c < d; c++) var += (xr[c] - mean) * (xr[c] - mean);
    const float inv = 1.0f / std::sqrt(var / static_cast<float>(d) + eps);
#pragma omp simd
    for (long c = 0; c < d; c++) o[c] = (xr[c] - mean) * inv * w[c] + (b ? b[c] : 0.0f);
  }
}
SAEKIT_MULTIVERSION(void, layer_norm_rows,
                    (const float* x, long r0, long r1, long d, const float* w, const float* b,
                     float eps, float* out),
                    (x, r0, r1, d, w, b, eps, out))

SAEKIT_BODY void rms_norm_rows_body(const float* x, long r0, long r1, long d, const float* w,
                                    float eps, float* out) {
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (long c = 0; c < d; c++) ss += xr[c] * xr[c];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
#pragma omp simd
    for (long c = 0; c < d; c++) o[c] = xr[c] * inv * w[c];
  }
}
SAEKIT_MULTIVERSION(void, rms_norm_rows,
                    (const float* x, long r0, long r1, long d, const float* w, float eps, float* out),
                    (x, r0, r1, d, w, eps, out))

SAEKIT_BODY void activation_range_body(float* x, long n, int act) {
  if (act == static_cast<int>(Activation::GeluErf)) {
    // GELU(x) = x Phi(x) = 0.5 x erfc(-x / sqrt 2), accurate in both tails.
#pragma omp simd
    for (long i = 0; i < n; i++) x[i] = 0.5f * x[i] * fast_erfc(-0.70710678118654752f * x[i]);
  } else if (act == static_cast<int>(Activation::GeluTanh)) {
#pragma omp simd
    for (long i = 0; i < n; i++) {
      float v = x[i];
      x[i] = 0.5f * v * (1.0f + fast_tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    }
  } else if (act == static_cast<int>(Activation::Silu)) {
#pragma omp simd
    for (long i = 0; i < n; i++) x[i] = x[i] / (1.0f + fast_exp(-x[i]));
  } else {
#pragma omp simd
    for (long i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
  }
}
SAEKIT_MULTIVERSION(void, activation_range, (float* x, long n, int act), (x, n, act))

// grad *= act'(x): the activations' derivatives, as written out in activation_range's terms.
SAEKIT_BODY void activation_backward_range_body(const float* x, float* grad, long n, int act) {
  if (act == static_cast<int>(Activation::GeluErf)) {
    // d/dx x Phi(x) = Phi(x) + x phi(x).
#pragma omp simd
    for (long i = 0; i < n; i++) {
      const float v = x[i];
      grad[i] *= 0.5f * fast_erfc(-0.70710678118654752f * v) + v * 0.39894228040143268f * fast_exp(-0.5f * v * v);
    }
  } else if (act == static_cast<int>(Activation::GeluTanh)) {
#pragma omp simd
    for (long i = 0; i < n; i++) {
      const float v = x[i];
      const float t = fast_tanh(0.79788456080286536f * (v + 0.044715f * v * v * v));
      grad[i] *= 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * 0.79788456080286536f * (1.0f + 0.134145f * v * v);
    }
  } else if (act == static_cast<int>(Activation::Silu)) {
#pragma omp simd
    for (long i = 0; i < n; i++) {
      const float sg = 1.0f / (1.0f + fast_exp(-x[i]));
      grad[i] *= sg * (1.0f + x[i] * (1.0f - sg));
    }
  } else {
#pragma omp simd
    for (long i = 0; i < n; i++) grad[i] = x[i] > 0.0f ? grad[i] : 0.0f;
  }
}
SAEKIT_MULTIVERSION(void, activation_backward_range, (const float* x, float* grad, long n, int act), (x, grad, n, act))

SAEKIT_BODY void silu_mul_range_body(float* gate, const float* up, long n) {
#pragma omp simd
  for (long i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + fast_exp(-gate[i])) * up[i];
}
SAEKIT_MULTIVERSION(void, silu_mul_range, (float* gate, const float* up, long n), (gate, up, n))

// One query head of one sequence, in tiles of kQ queries: queries i = 0..n-1 (rows
// q + i * q_stride) at positions pos0 + i attend to keys/values j = 0..pos0 + i (rows
// k + j * kv_stride, v + j * kv_stride). Output row i goes to out + i * out_stride.
// softcap > 0 caps the logits at +-softcap as softcap * tanh(s / softcap) (Gemma 2); 0
// leaves them.
//
// The two products are small GEMMs with register tiles the compiler keeps in vector
// registers: scores [kQ, kT] = Q K^T from K packed transposed (each key a column, so a
// tile row is kT consecutive floats), and out [kQ, kT] = P V. Each (query, key) score and
// each output sums in the same order whichever tile holds the query, so a query's result
// does not depend on how the queries were split (cached attention equals full attention).
constexpr long kQ = 4;   // queries per tile
constexpr long kT = 32;  // keys per score tile, output channels per P V tile

long round_up(long v, long m) { return (v + m - 1) / m * m; }

// acc[r][t] += a[r * a_stride] * b[t]: one rank-1 update of a kQ x kT register tile.
SAEKIT_BODY void tile_update(float (&acc)[kQ][kT], const float* a, long a_stride, const float* b) {
  for (long r = 0; r < kQ; r++) {
    const float av = a[r * a_stride];
#pragma omp simd
    for (long t = 0; t < kT; t++) acc[r][t] += av * b[t];
  }
}

// Floats of scratch attention_head needs for `total` keys of head_dim.
long attention_scratch(long total, long head_dim) {
  const long L = round_up(total, kT);
  return head_dim * L + kQ * L + kQ * head_dim;
}

SAEKIT_BODY void attention_head_body(const float* q0, long q_stride, long n, long pos0,
                                     const float* k0, const float* v0, long kv_stride,
                                     long head_dim, float scale, float softcap, float* out0,
                                     long out_stride, float* scratch) {
  const long total = pos0 + n;
  const long L = round_up(total, kT);
  float* kt = scratch;                 // [head_dim, L]: K transposed, zero past `total`
  float* p = kt + head_dim * L;        // [kQ, L]: scores, then unnormalised probabilities
  float* q = p + kQ * L;               // [kQ, head_dim]: the tile's queries (zero rows past n)
  for (long c = 0; c < head_dim; c++) {
    for (long j = 0; j < total; j++) kt[c * L + j] = k0[j * kv_stride + c];
    for (long j = total; j < L; j++) kt[c * L + j] = 0.0f;
  }
  for (long i0 = 0; i0 < n; i0 += kQ) {
    const long nq = std::min(kQ, n - i0);
    for (long r = 0; r < kQ; r++)
      for (long c = 0; c < head_dim; c++) q[r * head_dim + c] = r < nq ? q0[(i0 + r) * q_stride + c] : 0.0f;
    const long keys = pos0 + i0 + nq;  // keys the tile's last query sees
    // Scores, kT keys at a time.
    for (long j0 = 0; j0 < keys; j0 += kT) {
      float acc[kQ][kT] = {};
      for (long c = 0; c < head_dim; c++) tile_update(acc, q + c, head_dim, kt + c * L + j0);
      for (long r = 0; r < kQ; r++)
        for (long t = 0; t < kT; t++) p[r * L + j0 + t] = acc[r][t];
    }
    // Softmax per query over its own keys; the rest of the row becomes 0.
    float inv[kQ];
    for (long r = 0; r < kQ; r++) {
      float* row = p + r * L;
      const long last = r < nq ? pos0 + i0 + r : -1;
      float mx = -3.0e38f;
      for (long j = 0; j <= last; j++) {
        float s = row[j] * scale;
        if (softcap > 0.0f) s = softcap * std::tanh(s / softcap);
        row[j] = s;
        mx = s > mx ? s : mx;
      }
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (long j = 0; j <= last; j++) {
        float e = fast_exp(row[j] - mx);
        row[j] = e;
        sum += e;
      }
      for (long j = last + 1; j < keys; j++) row[j] = 0.0f;
      inv[r] = r < nq ? 1.0f / sum : 0.0f;
    }
    // out = P V, kT channels at a time (a narrower tail where head_dim is not a multiple).
    for (long c0 = 0; c0 < head_dim; c0 += kT) {
      const long cw = std::min(kT, head_dim - c0);
      float acc[kQ][kT] = {};
      if (cw == kT) {
        for (long j = 0; j < keys; j++) tile_update(acc, p + j, L, v0 + j * kv_stride + c0);
      } else {
        for (long j = 0; j < keys; j++) {
          const float* vrow = v0 + j * kv_stride + c0;
          for (long r = 0; r < kQ; r++) {
            const float pv = p[r * L + j];
            for (long t = 0; t < cw; t++) acc[r][t] += pv * vrow[t];
          }
        }
      }
      for (long r = 0; r < nq; r++) {
        float* o = out0 + (i0 + r) * out_stride + c0;
        for (long t = 0; t < cw; t++) o[t] = acc[r][t] * inv[r];
      }
    }
  }
}
SAEKIT_MULTIVERSION(void, attention_head,
                    (const float* q0, long q_stride, long n, long pos0, const float* k0,
                     const float* v0, long kv_stride, long head_dim, float scale, float softcap,
                     float* out0, long out_stride, float* scratch),
                    (q0, q_stride, n, pos0, k0, v0, kv_stride, head_dim, scale, softcap, out0,
                     out_stride, scratch))

// logsumexp of one row, and optionally the row's exp(x - lse) summed against another row.
SAEKIT_BODY float logsumexp_body(const float* x, long V) {
  float mx = -3.0e38f;
  for (long j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (long j = 0; j < V; j++) sum += fast_exp(x[j] - mx);
  return mx + std::log(sum);
}
SAEKIT_MULTIVERSION(float, logsumexp, (const float* x, long V), (x, V))

// sum_j softmax(p)_j * ((p_j - lse_p) - (q_j - lse_q)).
SAEKIT_BODY float kl_row_body(const float* p, const float* q, long V, float lse_p, float lse_q) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long j = 0; j < V; j++) {
    float lp = p[j] - lse_p;
    s += fast_exp(lp) * (lp - (q[j] - lse_q));
  }
  return s;
}
SAEKIT_MULTIVERSION(float, kl_row, (const float* p, const float* q, long V, float lse_p, float lse_q),
                    (p, q, V, lse_p, lse_q))

// Backward of one kv group's heads of causal attention, for one sequence: per query i of a
// head, the probabilities P recomputed as the forward computes them, then
//   dP_j = dz_i . v_j,  dS_j = P_j (dP_j - sum_j P_j dP_j),
//   dq_i = scale sum_j dS_j k_j,  dk_j += scale dS_j q_i,  dv_j += P_j dz_i.
// K and V are packed transposed ([head_dim, seq]) and dK, dV summed transposed, so every
// inner loop runs along the keys j, vectorising whatever the head width (8 in small models);
// dK and dV are written back at the end, summed over the group's heads. dq is written.
SAEKIT_BODY void attention_backward_group_body(const float* qkv, long seq, long row_stride, long q_off,
                                               long k_off, long v_off, long h0, long heads, long g,
                                               long head_dim, float scale, float softcap, const float* dout,
                                               long dout_stride, float* dqkv, float* scratch) {
  float* kt = scratch;               // [head_dim, seq]
  float* vt = kt + head_dim * seq;   // [head_dim, seq]
  float* dkt = vt + head_dim * seq;  // [head_dim, seq]
  float* dvt = dkt + head_dim * seq; // [head_dim, seq]
  float* p = dvt + head_dim * seq;   // [seq]: probabilities of one query
  float* ds = p + seq;               // [seq]: dP, then dS
  float* cap = ds + seq;             // [seq]: with a soft cap, d(capped logit) / d(logit) = 1 - tanh^2
  for (long j = 0; j < seq; j++)
    for (long c = 0; c < head_dim; c++) {
      kt[c * seq + j] = qkv[j * row_stride + k_off + g * head_dim + c];
      vt[c * seq + j] = qkv[j * row_stride + v_off + g * head_dim + c];
    }
  for (long i = 0; i < head_dim * seq; i++) dkt[i] = dvt[i] = 0.0f;
  for (long h = h0; h < h0 + heads; h++) {
    for (long i = 0; i < seq; i++) {
      const float* q = qkv + i * row_stride + q_off + h * head_dim;
      const float* dz = dout + i * dout_stride + h * head_dim;
      const long n = i + 1;
      for (long j = 0; j < n; j++) p[j] = ds[j] = 0.0f;
      for (long c = 0; c < head_dim; c++) {
        const float qc = q[c], zc = dz[c];
        const float* kc = kt + c * seq;
        const float* vc = vt + c * seq;
#pragma omp simd
        for (long j = 0; j < n; j++) {
          p[j] += qc * kc[j];
          ds[j] += zc * vc[j];
        }
      }
      float mx = -3.0e38f;
      for (long j = 0; j < n; j++) {
        p[j] *= scale;
        // The forward's cap: softcap * tanh(s / softcap).
        if (softcap > 0.0f) {
          const float t = std::tanh(p[j] / softcap);
          p[j] = softcap * t;
          cap[j] = 1.0f - t * t;
        }
        mx = p[j] > mx ? p[j] : mx;
      }
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (long j = 0; j < n; j++) sum += p[j] = fast_exp(p[j] - mx);
      const float inv = 1.0f / sum;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (long j = 0; j < n; j++) {
        p[j] *= inv;
        dot += p[j] * ds[j];
      }
#pragma omp simd
      for (long j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
      if (softcap > 0.0f)
        for (long j = 0; j < n; j++) ds[j] *= cap[j];
      float* dq = dqkv + i * row_stride + q_off + h * head_dim;
      for (long c = 0; c < head_dim; c++) {
        const float qc = q[c], zc = dz[c];
        const float* kc = kt + c * seq;
        float* dkc = dkt + c * seq;
        float* dvc = dvt + c * seq;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (long j = 0; j < n; j++) {
          acc += ds[j] * kc[j];
          dkc[j] += qc * ds[j];
          dvc[j] += zc * p[j];
        }
        dq[c] = acc;
      }
    }
  }
  for (long j = 0; j < seq; j++)
    for (long c = 0; c < head_dim; c++) {
      dqkv[j * row_stride + k_off + g * head_dim + c] = dkt[c * seq + j];
      dqkv[j * row_stride + v_off + g * head_dim + c] = dvt[c * seq + j];
    }
}
SAEKIT_MULTIVERSION(void, attention_backward_group,
                    (const float* qkv, long seq, long row_stride, long q_off, long k_off, long v_off,
                     long h0, long heads, long g, long head_dim, float scale, float softcap, const float* dout,
                     long dout_stride, float* dqkv, float* scratch),
                    (qkv, seq, row_stride, q_off, k_off, v_off, h0, heads, g, head_dim, scale, softcap, dout,
                     dout_stride, dqkv, scratch))

// Row r of logits becomes (softmax(logits[r]) - onehot(target[r])) * scale, loss[r] its
// cross-entropy; a row with target < 0 becomes 0 and its loss 0.
SAEKIT_BODY void softmax_grad_row_body(float* x, long V, float lse, float scale) {
#pragma omp simd
  for (long j = 0; j < V; j++) x[j] = fast_exp(x[j] - lse) * scale;
}
SAEKIT_MULTIVERSION(void, softmax_grad_row, (float* x, long V, float lse, float scale), (x, V, lse, scale))

// KL(softmax(p) || softmax(q)) of one row, q's row becoming (softmax(q) - softmax(p)) * scale.
SAEKIT_BODY float kl_grad_row_body(const float* p, float* q, long V, float lse_p, float lse_q, float scale) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long j = 0; j < V; j++) {
    const float lp = p[j] - lse_p;
    const float lq = q[j] - lse_q;
    const float pj = fast_exp(lp);
    s += pj * (lp - lq);
    q[j] = (fast_exp(lq) - pj) * scale;
  }
  return s;
}
SAEKIT_MULTIVERSION(float, kl_grad_row, (const float* p, float* q, long V, float lse_p, float lse_q, float scale),
                    (p, q, V, lse_p, lse_q, scale))

// One value head's gated delta rule over `seq` tokens (gated_delta_rule): S [dk, dv] advanced in place.
SAEKIT_BODY void delta_rule_head_body(const float* q, const float* k, long qk_stride, const float* v,
                                      const float* decay, const float* beta, long v_stride, long g_stride,
                                      long seq, long dk, long dv, float* S, float* out, float* kv) {
  for (long t = 0; t < seq; t++) {
    const float* qt = q + t * qk_stride;
    const float* kt = k + t * qk_stride;
    const float* vt = v + t * v_stride;
    float* o = out + t * v_stride;
    const float d = decay[t * g_stride], b = beta[t * g_stride];
    // S <- decay S, and what S (decayed) recalls for this key: kv = S^T k.
#pragma omp simd
    for (long j = 0; j < dv; j++) kv[j] = 0.0f;
    for (long i = 0; i < dk; i++) {
      float* Si = S + i * dv;
      const float ki = kt[i];
#pragma omp simd
      for (long j = 0; j < dv; j++) {
        Si[j] *= d;
        kv[j] += Si[j] * ki;
      }
    }
#pragma omp simd
    for (long j = 0; j < dv; j++) {
      kv[j] = b * (vt[j] - kv[j]);
      o[j] = 0.0f;
    }
    // S <- S + k (beta (v - S^T k))^T, and out = S^T q.
    for (long i = 0; i < dk; i++) {
      float* Si = S + i * dv;
      const float ki = kt[i], qi = qt[i];
#pragma omp simd
      for (long j = 0; j < dv; j++) {
        Si[j] += ki * kv[j];
        o[j] += Si[j] * qi;
      }
    }
  }
}
SAEKIT_MULTIVERSION(void, delta_rule_head,
                    (const float* q, const float* k, long qk_stride, const float* v, const float* decay,
                     const float* beta, long v_stride, long g_stride, long seq, long dk, long dv, float* S,
                     float* out, float* kv),
                    (q, k, qk_stride, v, decay, beta, v_stride, g_stride, seq, dk, dv, S, out, kv))

// One sequence's causal depthwise convolution, then SiLU if asked (causal_conv), its history advanced.
SAEKIT_BODY void conv_sequence_body(const float* x, long seq, long C, long K, const float* w, float* history, bool silu,
                                    float* out) {
  for (long t = 0; t < seq; t++) {
    const float* xt = x + t * C;
    float* o = out + t * C;
#pragma omp simd
    for (long c = 0; c < C; c++) o[c] = w[c * K + K - 1] * xt[c];
    for (long j = 0; j < K - 1; j++) {
      const float* hj = history + j * C;
#pragma omp simd
      for (long c = 0; c < C; c++) o[c] += w[c * K + j] * hj[c];
    }
    if (silu) {
#pragma omp simd
      for (long c = 0; c < C; c++) o[c] = o[c] / (1.0f + fast_exp(-o[c]));
    }
    if (K > 1) {
      std::copy(history + C, history + (K - 1) * C, history);
      std::copy(xt, xt + C, history + (K - 2) * C);
    }
  }
}
SAEKIT_MULTIVERSION(void, conv_sequence,
                    (const float* x, long seq, long C, long K, const float* w, float* history, bool silu, float* out),
                    (x, seq, C, K, w, history, silu, out))

// One head's selective scan over `seq` tokens (ssm_scan): S [d_state, head_dim] advanced in place.
SAEKIT_BODY void ssm_head_body(const float* u, long u_stride, const float* B, const float* C, long bc_stride,
                               const float* decay, long a_stride, long seq, long n, long p, float* S, float* out) {
  for (long t = 0; t < seq; t++) {
    const float* ut = u + t * u_stride;
    const float* Bt = B + t * bc_stride;
    const float* Ct = C + t * bc_stride;
    float* o = out + t * u_stride;
    const float a = decay[t * a_stride];
#pragma omp simd
    for (long j = 0; j < p; j++) o[j] = 0.0f;
    for (long i = 0; i < n; i++) {
      float* Si = S + i * p;
      const float bi = Bt[i], ci = Ct[i];
#pragma omp simd
      for (long j = 0; j < p; j++) {
        Si[j] = a * Si[j] + bi * ut[j];
        o[j] += Si[j] * ci;
      }
    }
  }
}
SAEKIT_MULTIVERSION(void, ssm_head,
                    (const float* u, long u_stride, const float* B, const float* C, long bc_stride, const float* decay,
                     long a_stride, long seq, long n, long p, float* S, float* out),
                    (u, u_stride, B, C, bc_stride, decay, a_stride, seq, n, p, S, out))

// cur = a prev + x y^T for states [n, p]: one token's decay and rank-one write, as the scans
// and the delta rule advance their states (their backwards recompute them so).
SAEKIT_BODY void decayed_rank_one(const float* prev, float a, const float* x, const float* y, long n, long p,
                                  float* cur) {
  for (long i = 0; i < n; i++) {
    const float xi = x[i];
#pragma omp simd
    for (long j = 0; j < p; j++) cur[i * p + j] = a * prev[i * p + j] + xi * y[j];
  }
}

// What a delta-rule state S [dk, dv] recalls for key k after its decay d, kv = (d S)^T k, and
// the correction written with it, delta = b (v - kv).
SAEKIT_BODY void delta_recall(const float* S, const float* k, const float* v, float d, float b, long dk, long dv,
                              float* kv, float* delta) {
#pragma omp simd
  for (long j = 0; j < dv; j++) kv[j] = 0.0f;
  for (long i = 0; i < dk; i++) {
    const float ki = d * k[i];
#pragma omp simd
    for (long j = 0; j < dv; j++) kv[j] += S[i * dv + j] * ki;
  }
#pragma omp simd
  for (long j = 0; j < dv; j++) delta[j] = b * (v[j] - kv[j]);
}

// One value head's gated-delta-rule backward (gated_delta_rule_backward): its states S_0 = 0 ..
// S_seq into `states` [seq + 1, dk, dv], then dS [dk, dv] back through time; kv, delta and dd
// are scratch [dv]. dq and dk rows are dqk_stride apart.
SAEKIT_BODY void delta_rule_head_backward_body(const float* q, const float* k, long qk_stride, const float* v,
                                               const float* decay, const float* beta, long v_stride, long g_stride,
                                               const float* dy, long seq, long dk, long dv, float* states, float* dS,
                                               float* kv, float* delta, float* dd, float* dq, float* dK, long dqk_stride,
                                               float* dV, float* d_decay, float* d_beta) {
  const long n = dk * dv;
  std::fill(states, states + n, 0.0f);
  for (long t = 0; t < seq; t++) {
    delta_recall(states + t * n, k + t * qk_stride, v + t * v_stride, decay[t * g_stride], beta[t * g_stride], dk, dv, kv,
                 delta);
    decayed_rank_one(states + t * n, decay[t * g_stride], k + t * qk_stride, delta, dk, dv, states + (t + 1) * n);
  }
  std::fill(dS, dS + n, 0.0f);
  for (long t = seq - 1; t >= 0; t--) {
    const float* Sp = states + t * n;
    const float* Sc = states + (t + 1) * n;
    const float* qt = q + t * qk_stride;
    const float* kt = k + t * qk_stride;
    const float* vt = v + t * v_stride;
    const float* dyt = dy + t * v_stride;
    float* dqt = dq + t * dqk_stride;
    float* dkt = dK + t * dqk_stride;
    float* dvt = dV + t * v_stride;
    const float d = decay[t * g_stride], b = beta[t * g_stride];
    // What S_{t-1} (decayed) recalled for this key, and the correction delta written with it.
    delta_recall(states + t * n, k + t * qk_stride, v + t * v_stride, decay[t * g_stride], beta[t * g_stride], dk, dv, kv,
                 delta);
#pragma omp simd
    for (long j = 0; j < dv; j++) dd[j] = 0.0f;
    // out = S_t^T q: dS += q dy^T, dq = S_t dy; then S_t = P + k delta^T: d_delta = dS^T k, dk = dS delta.
    for (long i = 0; i < dk; i++) {
      float* dSi = dS + i * dv;
      const float* Si = Sc + i * dv;
      const float qi = qt[i], ki = kt[i];
      float dqi = 0.0f, dki = 0.0f;
#pragma omp simd reduction(+ : dqi, dki)
      for (long j = 0; j < dv; j++) {
        const float s = dSi[j] + qi * dyt[j];
        dSi[j] = s;
        dqi += Si[j] * dyt[j];
        dd[j] += s * ki;
        dki += s * delta[j];
      }
      dqt[i] = dqi;
      dkt[i] = dki;
    }
    // delta = beta (v - kv): dv = beta d_delta, d_beta = <d_delta, v - kv>; dd becomes d loss / d kv.
    float dbe = 0.0f;
#pragma omp simd reduction(+ : dbe)
    for (long j = 0; j < dv; j++) {
      dbe += dd[j] * (vt[j] - kv[j]);
      dvt[j] = b * dd[j];
      dd[j] = -b * dd[j];
    }
    d_beta[t * g_stride] = dbe;
    // kv = P^T k, P = decay S_{t-1}: dk += P dkv, dP = dS + k dkv^T, d_decay = <dP, S_{t-1}>, dS <- decay dP.
    double ddec = 0.0;
    for (long i = 0; i < dk; i++) {
      float* dSi = dS + i * dv;
      const float* Pi = Sp + i * dv;
      const float ki = kt[i];
      float dkp = 0.0f, ddi = 0.0f;
#pragma omp simd reduction(+ : dkp, ddi)
      for (long j = 0; j < dv; j++) {
        dkp += Pi[j] * dd[j];
        const float dP = dSi[j] + ki * dd[j];
        ddi += dP * Pi[j];
        dSi[j] = d * dP;
      }
      dkt[i] += d * dkp;
      ddec += ddi;
    }
    d_decay[t * g_stride] = static_cast<float>(ddec);
  }
}
SAEKIT_MULTIVERSION(void, delta_rule_head_backward,
                    (const float* q, const float* k, long qk_stride, const float* v, const float* decay,
                     const float* beta, long v_stride, long g_stride, const float* dy, long seq, long dk, long dv,
                     float* states, float* dS, float* kv, float* delta, float* dd, float* dq, float* dK,
                     long dqk_stride, float* dV, float* d_decay, float* d_beta),
                    (q, k, qk_stride, v, decay, beta, v_stride, g_stride, dy, seq, dk, dv, states, dS, kv, delta, dd,
                     dq, dK, dqk_stride, dV, d_decay, d_beta))

// One head's selective-scan backward (ssm_scan_backward): its states S_0 = 0 .. S_seq into
// `states` [seq + 1, n, p], then dS [n, p] back through time. du and d_decay share u's and
// decay's strides; dB and dC rows are db_stride apart.
SAEKIT_BODY void ssm_head_backward_body(const float* u, long u_stride, const float* B, const float* C, long bc_stride,
                                        const float* decay, long a_stride, const float* dy, long seq, long n, long p,
                                        float* states, float* dS, float* du, float* dB, float* dC, long db_stride,
                                        float* d_decay) {
  const long np = n * p;
  std::fill(states, states + np, 0.0f);
  for (long t = 0; t < seq; t++) {
    decayed_rank_one(states + t * np, decay[t * a_stride], B + t * bc_stride, u + t * u_stride, n, p,
                     states + (t + 1) * np);
  }
  std::fill(dS, dS + np, 0.0f);
  for (long t = seq - 1; t >= 0; t--) {
    const float* prev = states + t * np;
    const float* cur = states + (t + 1) * np;
    const float* ut = u + t * u_stride;
    const float* dyt = dy + t * u_stride;
    const float* Bt = B + t * bc_stride;
    const float* Ct = C + t * bc_stride;
    float* dut = du + t * u_stride;
    const float a = decay[t * a_stride];
    std::fill(dut, dut + p, 0.0f);
    double dd = 0.0;
    for (long i = 0; i < n; i++) {
      float* dSi = dS + i * p;
      const float* Si = cur + i * p;
      const float* Pi = prev + i * p;
      const float bi = Bt[i], ci = Ct[i];
      float dci = 0.0f, dbi = 0.0f, ddi = 0.0f;
#pragma omp simd reduction(+ : dci, dbi, ddi)
      for (long j = 0; j < p; j++) {
        const float s = dSi[j] + ci * dyt[j];
        dci += Si[j] * dyt[j];
        dbi += s * ut[j];
        dut[j] += s * bi;
        ddi += s * Pi[j];
        dSi[j] = a * s;
      }
      dC[t * db_stride + i] = dci;
      dB[t * db_stride + i] = dbi;
      dd += ddi;
    }
    d_decay[t * a_stride] = static_cast<float>(dd);
  }
}
SAEKIT_MULTIVERSION(void, ssm_head_backward,
                    (const float* u, long u_stride, const float* B, const float* C, long bc_stride, const float* decay,
                     long a_stride, const float* dy, long seq, long n, long p, float* states, float* dS, float* du,
                     float* dB, float* dC, long db_stride, float* d_decay),
                    (u, u_stride, B, C, bc_stride, decay, a_stride, dy, seq, n, p, states, dS, du, dB, dC, db_stride,
                     d_decay))

}  // namespace

void gated_delta_rule_backward(const float* q, const float* k, const float* v, const float* decay, const float* beta,
                               const float* d_out, long batch, long seq, long k_heads, long v_heads, long dk, long dv,
                               float* dq, float* dk_out, float* dv_out, float* d_decay, float* d_beta) {
  const long group = v_heads / k_heads, n = dk * dv;
  parallel_for(static_cast<int>(batch * v_heads), [&](int task) {
    // The head's states, dS, and three vectors of dv (per thread, kept between calls).
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>((seq + 2) * n + 3 * dv));
    const long b = task / v_heads, h = task % v_heads, g = h / group, row0 = b * seq;
    const long kd = k_heads * dk, vd = v_heads * dv, hk = v_heads * dk;
    float* states = scratch.data();
    float* dS = states + (seq + 1) * n;
    float* kv = dS + n;
    delta_rule_head_backward(q + row0 * kd + g * dk, k + row0 * kd + g * dk, kd, v + row0 * vd + h * dv,
                             decay + row0 * v_heads + h, beta + row0 * v_heads + h, vd, v_heads,
                             d_out + row0 * vd + h * dv, seq, dk, dv, states, dS, kv, kv + dv, kv + 2 * dv,
                             dq + row0 * hk + h * dk,
                             dk_out + row0 * hk + h * dk, hk, dv_out + row0 * vd + h * dv, d_decay + row0 * v_heads + h,
                             d_beta + row0 * v_heads + h);
  });
}

void ssm_scan_backward(const float* u, const float* B, const float* C, const float* decay, const float* d_out, long batch,
                       long seq, long heads, long head_dim, long groups, long d_state, float* du, float* dB, float* dC,
                       float* d_decay) {
  const long per_group = heads / groups, np = d_state * head_dim;
  parallel_for(static_cast<int>(batch * heads), [&](int task) {
    // The head's states, and dS after them (per thread, kept between calls).
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>((seq + 2) * np));
    const long b = task / heads, h = task % heads, g = h / per_group, row0 = b * seq;
    const long hp = heads * head_dim, gn = groups * d_state, hn = heads * d_state;
    ssm_head_backward(u + row0 * hp + h * head_dim, hp, B + row0 * gn + g * d_state, C + row0 * gn + g * d_state, gn,
                      decay + row0 * heads + h, heads, d_out + row0 * hp + h * head_dim, seq, d_state, head_dim,
                      scratch.data(), scratch.data() + (seq + 1) * np, du + row0 * hp + h * head_dim,
                      dB + row0 * hn + h * d_state, dC + row0 * hn + h * d_state, hn, d_decay + row0 * heads + h);
  });
}

void ssm_scan(const float* u, const float* B, const float* C, const float* decay, long batch, long seq, long heads,
              long head_dim, long groups, long d_state, float* state, float* out) {
  const long per_group = heads / groups;
  parallel_for(static_cast<int>(batch * heads), [&](int task) {
    const long b = task / heads, h = task % heads, g = h / per_group, row0 = b * seq;
    ssm_head(u + row0 * heads * head_dim + h * head_dim, heads * head_dim, B + row0 * groups * d_state + g * d_state,
             C + row0 * groups * d_state + g * d_state, groups * d_state, decay + row0 * heads + h, heads, seq, d_state,
             head_dim, state + (b * heads + h) * d_state * head_dim, out + row0 * heads * head_dim + h * head_dim);
  });
}

void causal_conv(const float* x, long batch, long seq, long channels, long kernel, const float* w, float* history,
                 bool silu, float* out) {
  parallel_for(static_cast<int>(batch), [&](int b) {
    conv_sequence(x + b * seq * channels, seq, channels, kernel, w, history + b * (kernel - 1) * channels, silu,
                  out + b * seq * channels);
  });
}

void gated_delta_rule(const float* q, const float* k, const float* v, const float* decay, const float* beta,
                      long batch, long seq, long k_heads, long v_heads, long dk, long dv, float* state,
                      float* out) {
  const long group = v_heads / k_heads;
  // Each (sequence, value head) is a recurrence of its own: one task each.
  parallel_for(static_cast<int>(batch * v_heads), [&](int task) {
    thread_local std::vector<float> kv;
    kv.resize(dv);
    const long b = task / v_heads, h = task % v_heads, g = h / group;
    const long row0 = b * seq;
    delta_rule_head(q + row0 * k_heads * dk + g * dk, k + row0 * k_heads * dk + g * dk, k_heads * dk,
                    v + row0 * v_heads * dv + h * dv, decay + row0 * v_heads + h, beta + row0 * v_heads + h,
                    v_heads * dv, v_heads, seq, dk, dv, state + (b * v_heads + h) * dk * dv,
                    out + row0 * v_heads * dv + h * dv, kv.data());
  });
}

void layer_norm(const float* x, long rows, long d, const float* w, const float* b, float eps, float* out) {
  parallel_chunks(rows, 64, [&](long r0, long r1) { layer_norm_rows(x, r0, r1, d, w, b, eps, out); });
}

void rms_norm(const float* x, long rows, long d, const float* w, float eps, float* out) {
  parallel_chunks(rows, 64, [&](long r0, long r1) { rms_norm_rows(x, r0, r1, d, w, eps, out); });
}

void activation(float* x, long n, Activation act) {
  parallel_chunks(n, 1 << 15, [&](long b, long e) { activation_range(x + b, e - b, static_cast<int>(act)); });
}

void activation_backward(const float* x, float* grad, long n, Activation act) {
  parallel_chunks(n, 1 << 15, [&](long b, long e) { activation_backward_range(x + b, grad + b, e - b, static_cast<int>(act)); });
}

void silu_mul(float* gate, const float* up, long n) {
  parallel_chunks(n, 1 << 15, [&](long b, long e) { silu_mul_range(gate + b, up + b, e - b); });
}

void rotary(float* x, long rows, long seq, long pos0, long row_stride, long offset, long heads,
            long head_dim, const float* inv_freq, long half, int style) {
  // cos/sin table [seq, half]. As in PyTorch's float32 rotary code, the angle
  // position * frequency is a float32 value; cos and sin of that angle are exact.
  std::vector<float> cos_t(seq * half), sin_t(seq * half);
  for (long p = 0; p < seq; p++)
    for (long i = 0; i < half; i++) {
      float angle = static_cast<float>(pos0 + p) * inv_freq[i];
      cos_t[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin_t[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  parallel_chunks(rows, 64, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const float* c = cos_t.data() + (r % seq) * half;
      const float* s = sin_t.data() + (r % seq) * half;
      for (long h = 0; h < heads; h++) {
        float* v = x + r * row_stride + offset + h * head_dim;
        for (long i = 0; i < half; i++) {
          long a = style == 0 ? i : 2 * i;
          long b = style == 0 ? i + half : 2 * i + 1;
          float x0 = v[a], x1 = v[b];
          v[a] = x0 * c[i] - x1 * s[i];
          v[b] = x1 * c[i] + x0 * s[i];
        }
      }
    }
  });
}

void causal_attention(const float* qkv, long batch, long seq, long row_stride, long q_off,
                      long k_off, long v_off, long n_heads, long n_kv_heads, long head_dim,
                      float scale, float softcap, float* out) {
  const long group = n_heads / n_kv_heads;
  const long out_stride = n_heads * head_dim;
  parallel_for(static_cast<int>(batch * n_heads), [&](int task) {
    thread_local std::vector<float> scratch;
    scratch.resize(attention_scratch(seq, head_dim));
    long b = task / n_heads, h = task % n_heads, g = h / group;
    const float* base = qkv + b * seq * row_stride;
    attention_head(base + q_off + h * head_dim, row_stride, seq, 0, base + k_off + g * head_dim,
                   base + v_off + g * head_dim, row_stride, head_dim, scale, softcap,
                   out + b * seq * out_stride + h * head_dim, out_stride, scratch.data());
  });
}

void cached_attention(const float* q, long q_stride, long q_off, long batch, long n, long pos0,
                      const float* k_cache, const float* v_cache, long cache_len, long n_heads,
                      long n_kv_heads, long head_dim, float scale, float softcap, float* out) {
  const long group = n_heads / n_kv_heads;
  const long out_stride = n_heads * head_dim;
  const long kv_stride = n_kv_heads * head_dim;
  parallel_for(static_cast<int>(batch * n_heads), [&](int task) {
    thread_local std::vector<float> scratch;
    scratch.resize(attention_scratch(pos0 + n, head_dim));
    long b = task / n_heads, h = task % n_heads, g = h / group;
    const long cache = b * cache_len * kv_stride + g * head_dim;
    attention_head(q + b * n * q_stride + q_off + h * head_dim, q_stride, n, pos0, k_cache + cache,
                   v_cache + cache, kv_stride, head_dim, scale, softcap,
                   out + b * n * out_stride + h * head_dim, out_stride, scratch.data());
  });
}

void cross_entropy_rows(const float* logits, long rows, long V, const int32_t* targets, float* loss) {
  parallel_chunks(rows, 8, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      int32_t t = targets[r];
      loss[r] = t < 0 ? 0.0f : logsumexp(logits + r * V, V) - logits[r * V + t];
    }
  });
}

void kl_rows(const float* p, const float* q, long rows, long V, float* kl) {
  parallel_chunks(rows, 8, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const float* pr = p + r * V;
      const float* qr = q + r * V;
      kl[r] = kl_row(pr, qr, V, logsumexp(pr, V), logsumexp(qr, V));
    }
  });
}

void causal_attention_backward(const float* qkv, long batch, long seq, long row_stride, long q_off,
                               long k_off, long v_off, long n_heads, long n_kv_heads, long head_dim,
                               float scale, float softcap, const float* dout, float* dqkv) {
  const long group = n_heads / n_kv_heads;
  const long dout_stride = n_heads * head_dim;
  // One task per (sequence, kv group): the group's heads all add into its dk and dv.
  parallel_for(static_cast<int>(batch * n_kv_heads), [&](int task) {
    thread_local std::vector<float> scratch;
    scratch.resize(4 * head_dim * seq + 3 * seq);
    long b = task / n_kv_heads, g = task % n_kv_heads;
    attention_backward_group(qkv + b * seq * row_stride, seq, row_stride, q_off, k_off, v_off, g * group, group, g,
                             head_dim, scale, softcap, dout + b * seq * dout_stride, dout_stride, dqkv + b * seq * row_stride,
                             scratch.data());
  });
}

void cross_entropy_grad_rows(float* logits, long rows, long V, const int32_t* targets, float scale, float* loss) {
  parallel_chunks(rows, 8, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      float* row = logits + r * V;
      const int32_t t = targets[r];
      if (t < 0) {
        for (long j = 0; j < V; j++) row[j] = 0.0f;
        loss[r] = 0.0f;
        continue;
      }
      const float lse = logsumexp(row, V);
      loss[r] = lse - row[t];
      softmax_grad_row(row, V, lse, scale);
      row[t] -= scale;
    }
  });
}

void kl_grad_rows(const float* p, float* q, long rows, long V, float scale, float* kl) {
  parallel_chunks(rows, 8, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const float* pr = p + r * V;
      float* qr = q + r * V;
      kl[r] = kl_grad_row(pr, qr, V, logsumexp(pr, V), logsumexp(qr, V), scale);
    }
  });
}

}  // namespace saekit
