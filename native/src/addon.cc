// N-API bindings. Every kernel reads and writes the caller's typed arrays in place (no
// copies); this layer only checks that each array is the right type and long enough for
// the shapes given, and that sparse indices are in range, so a wrong call from JavaScript
// gets a RangeError/TypeError instead of reading or writing out of bounds.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "cpu.h"
#include "elementwise.h"
#include "gemm.h"
#include "nn.h"
#include "random.h"
#include "sparse.h"
#include "threadpool.h"
#include "topk.h"
#include "tsne.h"

namespace {

using namespace saekit;

template <typename T>
struct View {
  T* data;
  size_t length;
};

template <typename T, napi_typedarray_type kType>
View<T> typed(const Napi::CallbackInfo& info, size_t i, const char* name, const char* type) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a " + type);
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  return {arr.Data(), arr.ElementLength()};
}

View<float> f32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typed<float, napi_float32_array>(info, i, name, "Float32Array");
}
View<double> f64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typed<double, napi_float64_array>(info, i, name, "Float64Array");
}
View<int32_t> i32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typed<int32_t, napi_int32_array>(info, i, name, "Int32Array");
}
View<uint16_t> u16(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typed<uint16_t, napi_uint16_array>(info, i, name, "Uint16Array");
}
View<uint8_t> u8(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typed<uint8_t, napi_uint8_array>(info, i, name, "Uint8Array");
}
// A Float32Array or null/undefined (optional bias and similar).
View<float> f32_or_null(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return {nullptr, 0};
  return f32(info, i, name);
}

long count(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 9.0e15)
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected a non-negative integer");
  return static_cast<long>(d);
}
double number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
float real(const Napi::CallbackInfo& info, size_t i, const char* name) { return static_cast<float>(number(info, i, name)); }
bool flag(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }

template <typename T>
void need(const Napi::Env& env, const View<T>& v, double n, const char* name) {
  if (static_cast<double>(v.length) < n)
    throw Napi::RangeError::New(env, std::string(name) + ": needs " + std::to_string(static_cast<long>(n)) +
                                         " elements, has " + std::to_string(v.length));
}

// Elements a row-major [rows, cols] matrix with leading dimension ld spans.
double span(long rows, long cols, long ld) { return rows == 0 || cols == 0 ? 0 : double(rows - 1) * ld + cols; }

// Checks a CSR code: row_ptr[batch+1] non-decreasing from 0, idx entries within [0, m).
// A CSR code's row pointers: batch + 1 of them, from 0, never decreasing.
void check_row_ptr(const Napi::Env& env, const View<int32_t>& row_ptr, long batch) {
  need(env, row_ptr, batch + 1, "rowPtr");
  if (row_ptr.data[0] != 0) throw Napi::RangeError::New(env, "rowPtr[0] must be 0");
  for (long b = 0; b < batch; b++)
    if (row_ptr.data[b + 1] < row_ptr.data[b]) throw Napi::RangeError::New(env, "rowPtr must be non-decreasing");
}

void check_csr(const Napi::Env& env, const View<int32_t>& row_ptr, const View<int32_t>& idx,
               long batch, long m) {
  check_row_ptr(env, row_ptr, batch);
  need(env, idx, row_ptr.data[batch], "idx");
  for (int32_t e = 0; e < row_ptr.data[batch]; e++)
    if (idx.data[e] < 0 || idx.data[e] >= m)
      throw Napi::RangeError::New(env, "idx[" + std::to_string(e) + "] = " + std::to_string(idx.data[e]) +
                                           " is outside [0, " + std::to_string(m) + ")");
}

// A code that selects rows of W [m, d]: d > 0 and every latent index below W's row count.
void check_code_rows(const Napi::Env& env, const View<int32_t>& row_ptr, const View<int32_t>& idx,
                     long batch, const View<float>& W, long d) {
  if (d == 0) throw Napi::RangeError::New(env, "d must be > 0");
  check_csr(env, row_ptr, idx, batch, static_cast<long>(W.length / d));
}

// The arguments the code kernels begin with, (batch, rowPtr, idx, <per-entry or per-row
// array>, W, d), read and checked once: a valid CSR code selecting rows of W [m, d].
struct CodeArgs {
  long batch;
  View<int32_t> row_ptr, idx;
  View<float> arr, W;
  long d;
  long entries() const { return row_ptr.data[batch]; }
};
CodeArgs code_args(const Napi::CallbackInfo& info, const char* arr_name) {
  CodeArgs a{count(info, 0, "batch"), i32(info, 1, "rowPtr"), i32(info, 2, "idx"), f32(info, 3, arr_name),
             f32(info, 4, "W"), count(info, 5, "d")};
  check_code_rows(info.Env(), a.row_ptr, a.idx, a.batch, a.W, a.d);
  return a;
}

SelectMode select_mode(const Napi::CallbackInfo& info, size_t i) {
  long mode = count(info, i, "mode");
  if (mode > 2) throw Napi::RangeError::New(info.Env(), "mode must be 0 (relu), 1 (abs) or 2 (value)");
  return static_cast<SelectMode>(mode);
}

// ------------------------------------------------------------------ runtime
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", isa_name(active_isa()));
  o.Set("bestIsa", isa_name(best_isa()));
  o.Set("threads", pool_threads());
  int mr, nr;
  gemm_tile_shape(&mr, &nr);
  o.Set("gemmMR", mr);
  o.Set("gemmNR", nr);
  o.Set("bf16Dot", gemm_bf16_dot_native());
  return o;
}

void SetThreads(const Napi::CallbackInfo& info) {
  long n = count(info, 0, "threads");
  if (n < 1) throw Napi::RangeError::New(info.Env(), "threads must be >= 1");
  set_pool_threads(static_cast<int>(n));
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  std::string name = info[0].ToString();
  Isa isa = name == "avx512" ? Isa::Avx512 : name == "avx2" ? Isa::Avx2 : Isa::Generic;
  if (name != "avx512" && name != "avx2" && name != "generic")
    throw Napi::RangeError::New(info.Env(), "isa must be avx512, avx2 or generic");
  return Napi::Boolean::New(info.Env(), set_isa(isa));
}

// ------------------------------------------------------------------ GEMM
// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), B a Float32Array
// (Float32, or BfloatPrecision: inputs rounded to bfloat16), or a Uint16Array of bfloat16 bits.
enum class GemmKind { Float32, BfloatB, BfloatPrecision };

template <GemmKind kind>
void Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ta = flag(info, 0), tb = flag(info, 1);
  long M = count(info, 2, "M"), N = count(info, 3, "N"), K = count(info, 4, "K");
  float alpha = real(info, 5, "alpha");
  auto A = f32(info, 6, "A");
  long lda = count(info, 7, "lda");
  long ldb = count(info, 9, "ldb");
  float beta = real(info, 10, "beta");
  auto C = f32(info, 11, "C");
  long ldc = count(info, 12, "ldc");
  long a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
  if (lda < a_cols || ldb < b_cols || ldc < N) throw Napi::RangeError::New(env, "sgemm: leading dimension smaller than the row length");
  need(env, A, span(a_rows, a_cols, lda), "A");
  need(env, C, span(M, N, ldc), "C");
  if constexpr (kind == GemmKind::BfloatB) {
    auto B = u16(info, 8, "B");
    need(env, B, span(b_rows, b_cols, ldb), "B");
    // An optional 14th argument: at bfloat16 precision (A rounded to bfloat16 too).
    const bool bf16_precision = info.Length() > 13 && flag(info, 13);
    sgemm_bf16b(ta, tb, M, N, K, alpha, A.data, lda, B.data, ldb, beta, C.data, ldc, bf16_precision);
  } else {
    auto B = f32(info, 8, "B");
    need(env, B, span(b_rows, b_cols, ldb), "B");
    if constexpr (kind == GemmKind::BfloatPrecision) {
      sgemm_bf16(ta, tb, M, N, K, alpha, A.data, lda, B.data, ldb, beta, C.data, ldc);
    } else {
      sgemm(ta, tb, M, N, K, alpha, A.data, lda, B.data, ldb, beta, C.data, ldc);
    }
  }
}

// ------------------------------------------------------------------ TopK
// The arguments of a per-row selection (topkRows, groupMaxRows): x [batch, m], `per` entries
// kept per row into vals and idx [batch, per], checked against their lengths.
struct RowSelection {
  View<float> x, bias, vals;
  View<int32_t> idx;
  long batch, m, per;
  SelectMode mode;
};

RowSelection row_selection(const Napi::CallbackInfo& info, const char* per_name) {
  Napi::Env env = info.Env();
  RowSelection a{f32(info, 0, "x"), f32_or_null(info, 5, "bias"), f32(info, 6, "vals"), i32(info, 7, "idx"),
                 count(info, 1, "batch"), count(info, 2, "m"), count(info, 3, per_name), select_mode(info, 4)};
  need(env, a.x, double(a.batch) * a.m, "x");
  if (a.bias.data) need(env, a.bias, a.m, "bias");
  need(env, a.vals, double(a.batch) * a.per, "vals");
  need(env, a.idx, double(a.batch) * a.per, "idx");
  return a;
}

void TopkRows(const Napi::CallbackInfo& info) {
  RowSelection a = row_selection(info, "k");
  if (a.per > a.m) throw Napi::RangeError::New(info.Env(), "topk: k must be <= m");
  topk_rows(a.x.data, a.batch, a.m, a.per, a.mode, a.bias.data, a.vals.data, a.idx.data);
}

void GroupMaxRows(const Napi::CallbackInfo& info) {
  RowSelection a = row_selection(info, "groups");
  if (a.per < 1 || a.m % a.per != 0) throw Napi::RangeError::New(info.Env(), "groupmax: m must split into groups of equal size");
  group_max_rows(a.x.data, a.batch, a.m, a.per, a.mode, a.bias.data, a.vals.data, a.idx.data);
}

Napi::Value BatchTopk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long batch = count(info, 1, "batch"), m = count(info, 2, "m"), k_total = count(info, 3, "kTotal");
  SelectMode mode = select_mode(info, 4);
  auto bias = f32_or_null(info, 5, "bias");
  auto row_ptr = i32(info, 6, "rowPtr");
  auto idx = i32(info, 7, "idx");
  auto vals = f32(info, 8, "vals");
  need(env, x, double(batch) * m, "x");
  if (bias.data) need(env, bias, m, "bias");
  need(env, row_ptr, batch + 1, "rowPtr");
  double cap = std::min(double(k_total), double(batch) * m);
  need(env, idx, cap, "idx");
  need(env, vals, cap, "vals");
  return Napi::Number::New(env, double(batch_topk(x.data, batch, m, k_total, mode, bias.data, row_ptr.data, idx.data, vals.data)));
}

Napi::Value ThresholdSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long batch = count(info, 1, "batch"), m = count(info, 2, "m");
  auto bias = f32_or_null(info, 3, "bias");
  auto threshold = f32_or_null(info, 4, "threshold");
  auto row_ptr = i32(info, 5, "rowPtr");
  auto idx = i32(info, 6, "idx");
  auto vals = f32(info, 7, "vals");
  need(env, x, double(batch) * m, "x");
  if (bias.data) need(env, bias, m, "bias");
  if (threshold.data) need(env, threshold, m, "threshold");
  need(env, row_ptr, batch + 1, "rowPtr");
  long capacity = static_cast<long>(std::min(idx.length, vals.length));
  return Napi::Number::New(env, double(threshold_select(x.data, batch, m, bias.data, threshold.data,
                                                        row_ptr.data, idx.data, vals.data, capacity)));
}

// ------------------------------------------------------------------ random
uint32_t u32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  long v = count(info, i, name);
  if (v > 4294967295L) throw Napi::RangeError::New(info.Env(), std::string(name) + ": must fit in 32 bits");
  return static_cast<uint32_t>(v);
}

void FillNormal(const Napi::CallbackInfo& info) {
  auto out = f32(info, 0, "out");
  long offset = count(info, 3, "offset");
  if (offset % 2) throw Napi::RangeError::New(info.Env(), "fillNormal: offset must be even");
  fill_normal(out.data, static_cast<long>(out.length), u32(info, 1, "seed"), u32(info, 2, "stream"), offset);
}

Napi::Value SampleLatents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto pre = f32(info, 0, "pre");
  long batch = count(info, 1, "batch"), m = count(info, 2, "m");
  auto bias = f32_or_null(info, 3, "bias");
  bool relu = flag(info, 4);
  auto logvar = f32_or_null(info, 5, "logvar");
  float noise_scale = real(info, 6, "noiseScale");
  uint32_t seed = u32(info, 7, "seed"), stream = u32(info, 8, "stream");
  auto z = f32(info, 9, "z");
  need(env, pre, double(batch) * m, "pre");
  if (bias.data) need(env, bias, m, "bias");
  if (logvar.data) need(env, logvar, double(batch) * m, "logvar");
  need(env, z, double(batch) * m, "z");
  return Napi::Number::New(env, sample_latents(pre.data, batch, m, bias.data, relu, logvar.data,
                                               noise_scale, seed, stream, z.data));
}

// ------------------------------------------------------------------ sparse codes
void SparseDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto c = code_args(info, "val");
  auto bias = f32_or_null(info, 6, "bias");
  auto out = f32(info, 7, "out");
  need(env, c.arr, c.entries(), "val");
  if (bias.data) need(env, bias, c.d, "bias");
  need(env, out, double(c.batch) * c.d, "out");
  sparse_decode(c.batch, static_cast<long>(c.W.length / c.d), c.row_ptr.data, c.idx.data, c.arr.data, c.W.data, c.d, bias.data, out.data);
}

void SparseRowDots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto c = code_args(info, "G");
  auto out = f32(info, 6, "out");
  need(env, c.arr, double(c.batch) * c.d, "G");
  need(env, out, c.entries(), "out");
  sparse_row_dots(c.batch, c.row_ptr.data, c.idx.data, c.arr.data, c.W.data, c.d, out.data);
}

Napi::Value SparseReconstruct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto c = code_args(info, "val");
  auto bias = f32_or_null(info, 6, "bias");
  auto x = f32(info, 7, "x");
  float scale = real(info, 8, "scale");
  auto x_hat = f32(info, 9, "xHat");
  auto g = f32(info, 10, "g");
  auto dval = f32(info, 11, "dval");
  auto gW = f32_or_null(info, 12, "gW");
  bool accumulate = flag(info, 13);
  need(env, c.arr, c.entries(), "val");
  if (gW.data) need(env, gW, static_cast<double>(c.W.length / c.d) * c.d, "gW");
  if (bias.data) need(env, bias, c.d, "bias");
  need(env, x, double(c.batch) * c.d, "x");
  need(env, x_hat, double(c.batch) * c.d, "xHat");
  need(env, g, double(c.batch) * c.d, "g");
  need(env, dval, c.entries(), "dval");
  return Napi::Number::New(env, sparse_reconstruct(c.batch, static_cast<long>(c.W.length / c.d), c.row_ptr.data, c.idx.data, c.arr.data, c.W.data, c.d,
                                                   bias.data, x.data, scale, x_hat.data, g.data, dval.data,
                                                   gW.data, accumulate));
}

void SparseTranspose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long batch = count(info, 0, "batch");
  auto row_ptr = i32(info, 1, "rowPtr");
  auto idx = i32(info, 2, "idx");
  long m = count(info, 3, "m");
  auto col_ptr = i32(info, 4, "colPtr");
  auto entries = i32(info, 5, "entries");
  auto entry_row = i32(info, 6, "entryRow");
  check_csr(env, row_ptr, idx, batch, m);
  need(env, col_ptr, m + 1, "colPtr");
  need(env, entries, row_ptr.data[batch], "entries");
  need(env, entry_row, row_ptr.data[batch], "entryRow");
  sparse_transpose(batch, row_ptr.data, idx.data, m, col_ptr.data, entries.data, entry_row.data);
}

void SparseScatterRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long m = count(info, 0, "m");
  auto col_ptr = i32(info, 1, "colPtr");
  auto entries = i32(info, 2, "entries");
  auto entry_row = i32(info, 3, "entryRow");
  auto coef = f32(info, 4, "coef");
  auto X = f32(info, 5, "X");
  long d = count(info, 6, "d");
  bool accumulate = flag(info, 7);
  auto out = f32(info, 8, "out");
  auto coef_sum = f32_or_null(info, 9, "coefSum");
  if (d == 0) throw Napi::RangeError::New(env, "d must be > 0");
  need(env, col_ptr, m + 1, "colPtr");
  if (col_ptr.data[0] != 0) throw Napi::RangeError::New(env, "colPtr[0] must be 0");
  for (long r = 0; r < m; r++)
    if (col_ptr.data[r + 1] < col_ptr.data[r]) throw Napi::RangeError::New(env, "colPtr must be non-decreasing");
  const int32_t nnz = col_ptr.data[m];
  need(env, entries, nnz, "entries");
  need(env, entry_row, nnz, "entryRow");
  need(env, coef, nnz, "coef");
  long rows = static_cast<long>(X.length / d);
  for (int32_t p = 0; p < nnz; p++) {
    int32_t e = entries.data[p];
    if (e < 0 || e >= nnz || entry_row.data[e] < 0 || entry_row.data[e] >= rows)
      throw Napi::RangeError::New(env, "entries/entryRow out of range at " + std::to_string(p));
  }
  need(env, out, double(m) * d, "out");
  if (coef_sum.data) need(env, coef_sum, m, "coefSum");
  sparse_scatter_rows(m, col_ptr.data, entries.data, entry_row.data, coef.data, X.data, d,
                      accumulate, out.data, coef_sum.data);
}

// ------------------------------------------------------------------ elementwise
// An optimizer's four arrays (parameters, gradients, two state arrays), arguments 0-3, each
// at least as long as the parameters.
struct OptimizerArrays {
  View<float> param, grad, a, b;
  long n;
};
OptimizerArrays optimizer_arrays(const Napi::CallbackInfo& info, const char* a_name, const char* b_name) {
  OptimizerArrays o{f32(info, 0, "param"), f32(info, 1, "grad"), f32(info, 2, a_name), f32(info, 3, b_name), 0};
  o.n = static_cast<long>(o.param.length);
  need(info.Env(), o.grad, o.n, "grad");
  need(info.Env(), o.a, o.n, a_name);
  need(info.Env(), o.b, o.n, b_name);
  return o;
}

void AdamUpdate(const Napi::CallbackInfo& info) {
  auto o = optimizer_arrays(info, "m", "v");
  adam_update(o.param.data, o.grad.data, o.a.data, o.b.data, o.n, real(info, 4, "lr"), real(info, 5, "beta1"),
              real(info, 6, "beta2"), real(info, 7, "eps"), real(info, 8, "bias1"),
              real(info, 9, "bias2"), real(info, 10, "weightDecay"));
}

void ScheduleFreeSignUpdate(const Napi::CallbackInfo& info) {
  auto o = optimizer_arrays(info, "z", "x");
  schedule_free_sign_update(o.param.data, o.grad.data, o.a.data, o.b.data, o.n, real(info, 4, "lr"),
                            real(info, 5, "weightDecay"), real(info, 6, "averageWeight"),
                            real(info, 7, "momentum"));
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  auto x = f32(info, 0, "x");
  return Napi::Number::New(info.Env(), sum_squares(x.data, static_cast<long>(x.length)));
}

Napi::Value Dot(const Napi::CallbackInfo& info) {
  auto a = f32(info, 0, "a");
  auto b = f32(info, 1, "b");
  if (a.length != b.length) throw Napi::RangeError::New(info.Env(), "dot: lengths differ");
  return Napi::Number::New(info.Env(), dot(a.data, b.data, static_cast<long>(a.length)));
}

void Scale(const Napi::CallbackInfo& info) {
  auto x = f32(info, 0, "x");
  scale(x.data, static_cast<long>(x.length), real(info, 1, "s"));
}

Napi::Value DiffScaled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto a = f32(info, 0, "a");
  auto b = f32(info, 1, "b");
  auto out = f32(info, 2, "out");
  long n = static_cast<long>(a.length);
  need(env, b, n, "b");
  need(env, out, n, "out");
  return Napi::Number::New(env, diff_scaled(a.data, b.data, out.data, n, real(info, 3, "s")));
}

Napi::Value TsneGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto Y = f64(info, 0, "Y");
  long n = count(info, 1, "n");
  auto row_ptr = i32(info, 2, "rowPtr");
  auto col = i32(info, 3, "col");
  auto val = f64(info, 4, "val");
  double exaggeration = number(info, 5, "exaggeration");
  double angle = number(info, 6, "angle");
  auto grad = f64(info, 7, "grad");
  need(env, Y, 2.0 * n, "Y");
  need(env, grad, 2.0 * n, "grad");
  check_csr(env, row_ptr, col, n, n);
  need(env, val, row_ptr.data[n], "val");
  if (!(angle >= 0 && angle <= kMaxTsneAngle))
    throw Napi::RangeError::New(env, "Barnes-Hut angle " + Napi::Number::New(env, angle).ToString().Utf8Value() +
                                         " must be in [0, 0.7]");
  for (long c = 0; c < 2 * n; c++)
    if (!std::isfinite(Y.data[c])) throw Napi::RangeError::New(env, "QuadTree: a coordinate is not finite");
  return Napi::Number::New(env, tsne_gradient(Y.data, n, row_ptr.data, col.data, val.data, exaggeration, angle, grad.data));
}

void RowNorms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto X = f32(info, 0, "X");
  long rows = count(info, 1, "rows"), cols = count(info, 2, "cols");
  auto out = f32(info, 3, "out");
  need(env, X, double(rows) * cols, "X");
  need(env, out, rows, "out");
  row_norms(X.data, rows, cols, out.data);
}

void ScaleRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto X = f32(info, 0, "X");
  long rows = count(info, 1, "rows"), cols = count(info, 2, "cols");
  auto s = f32(info, 3, "scales");
  need(env, X, double(rows) * cols, "X");
  need(env, s, rows, "scales");
  scale_rows(X.data, rows, cols, s.data);
}

void AddScaledRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto G = f32(info, 0, "G");
  auto W = f32(info, 1, "W");
  long rows = count(info, 2, "rows"), cols = count(info, 3, "cols");
  auto s = f32(info, 4, "scales");
  need(env, G, double(rows) * cols, "G");
  need(env, W, double(rows) * cols, "W");
  need(env, s, rows, "scales");
  add_scaled_rows(G.data, W.data, rows, cols, s.data);
}

void RemoveParallelComponent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto W = f32(info, 0, "W");
  auto G = f32(info, 1, "G");
  long rows = count(info, 2, "rows"), cols = count(info, 3, "cols");
  need(env, W, double(rows) * cols, "W");
  need(env, G, double(rows) * cols, "G");
  remove_parallel_component(W.data, G.data, rows, cols);
}

void ColSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto X = f32(info, 0, "X");
  long rows = count(info, 1, "rows"), cols = count(info, 2, "cols");
  auto out = f32(info, 3, "out");
  need(env, X, double(rows) * cols, "X");
  need(env, out, cols, "out");
  col_sums(X.data, rows, cols, out.data, flag(info, 4));
}

void BiasAct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long batch = count(info, 1, "batch"), m = count(info, 2, "m");
  auto bias = f32_or_null(info, 3, "bias");
  bool relu = flag(info, 4);
  float s = real(info, 5, "scale");
  auto out = f32(info, 6, "out");
  need(env, x, double(batch) * m, "x");
  if (bias.data) need(env, bias, m, "bias");
  need(env, out, double(batch) * m, "out");
  bias_act(x.data, batch, m, bias.data, relu, s, out.data);
}

void AddRowVector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto X = f32(info, 0, "X");
  long rows = count(info, 1, "rows"), cols = count(info, 2, "cols");
  auto bias = f32(info, 3, "bias");
  need(env, X, double(rows) * cols, "X");
  need(env, bias, cols, "bias");
  add_row_vector(X.data, rows, cols, bias.data);
}

void GatherColumns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto X = f32(info, 0, "X");
  long rows = count(info, 1, "rows"), cols = count(info, 2, "cols");
  auto pick = i32(info, 3, "pick");
  long n = count(info, 4, "n");
  auto out = f32(info, 5, "out");
  need(env, X, double(rows) * cols, "X");
  need(env, pick, n, "pick");
  need(env, out, double(rows) * n, "out");
  for (long i = 0; i < n; i++)
    if (pick.data[i] < 0 || pick.data[i] >= cols)
      throw Napi::RangeError::New(env, "gatherColumns: pick[" + std::to_string(i) + "] = " + std::to_string(pick.data[i]) +
                                           " is outside [0, " + std::to_string(cols) + ")");
  gather_columns(X.data, rows, cols, pick.data, n, out.data);
}

void GatherEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto X = f32(info, 0, "X");
  long rows = count(info, 1, "rows"), cols = count(info, 2, "cols");
  auto row_ptr = i32(info, 3, "rowPtr");
  auto idx = i32(info, 4, "idx");
  auto out = f32(info, 5, "out");
  need(env, X, double(rows) * cols, "X");
  check_csr(env, row_ptr, idx, rows, cols);
  need(env, out, row_ptr.data[rows], "out");
  gather_entries(X.data, rows, cols, row_ptr.data, idx.data, out.data);
}

// Checks rowPtr here and each latent index inside the kernel's own pass (a separate check
// would read every index once more: 33M of them in a half-dense code).
Napi::Value CodeFirings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long rows = count(info, 0, "rows"), cols = count(info, 1, "cols");
  auto row_ptr = i32(info, 2, "rowPtr");
  auto idx = i32(info, 3, "idx");
  auto val = f32(info, 4, "val");
  auto fired = u8(info, 5, "fired");
  View<double> counts = info[6].IsNull() || info[6].IsUndefined() ? View<double>{nullptr, 0} : f64(info, 6, "counts");
  check_row_ptr(env, row_ptr, rows);
  need(env, idx, row_ptr.data[rows], "idx");
  need(env, val, row_ptr.data[rows], "val");
  need(env, fired, cols, "fired");
  if (counts.data) need(env, counts, cols, "counts");
  long bad = -1;
  long n = code_firings(rows, cols, row_ptr.data, idx.data, val.data, fired.data, counts.data, &bad);
  if (bad >= 0)
    throw Napi::RangeError::New(env, "idx[" + std::to_string(bad) + "] = " + std::to_string(idx.data[bad]) +
                                         " is outside [0, " + std::to_string(cols) + ")");
  return Napi::Number::New(env, static_cast<double>(n));
}

void ScatterEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long rows = count(info, 0, "rows"), cols = count(info, 1, "cols");
  auto row_ptr = i32(info, 2, "rowPtr");
  auto idx = i32(info, 3, "idx");
  auto val = f32(info, 4, "val");
  auto out = f32(info, 5, "out");
  check_csr(env, row_ptr, idx, rows, cols);
  need(env, val, row_ptr.data[rows], "val");
  need(env, out, double(rows) * cols, "out");
  scatter_entries(rows, cols, row_ptr.data, idx.data, val.data, out.data);
}

// ------------------------------------------------------------------ transformer blocks
void LayerNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long rows = count(info, 1, "rows"), d = count(info, 2, "d");
  auto w = f32(info, 3, "weight");
  auto b = f32_or_null(info, 4, "bias");
  float eps = real(info, 5, "eps");
  auto out = f32(info, 6, "out");
  need(env, x, double(rows) * d, "x");
  need(env, w, d, "weight");
  if (b.data) need(env, b, d, "bias");
  need(env, out, double(rows) * d, "out");
  layer_norm(x.data, rows, d, w.data, b.data, eps, out.data);
}

void RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long rows = count(info, 1, "rows"), d = count(info, 2, "d");
  auto w = f32(info, 3, "weight");
  float eps = real(info, 4, "eps");
  auto out = f32(info, 5, "out");
  need(env, x, double(rows) * d, "x");
  need(env, w, d, "weight");
  need(env, out, double(rows) * d, "out");
  rms_norm(x.data, rows, d, w.data, eps, out.data);
}

void Activate(const Napi::CallbackInfo& info) {
  auto x = f32(info, 0, "x");
  long act = count(info, 1, "activation");
  if (act > 3) throw Napi::RangeError::New(info.Env(), "activation must be 0 (gelu), 1 (gelu_tanh), 2 (silu) or 3 (relu)");
  activation(x.data, static_cast<long>(x.length), static_cast<Activation>(act));
}

void ActivationBackward(const Napi::CallbackInfo& info) {
  auto x = f32(info, 0, "x");
  auto grad = f32(info, 1, "grad");
  long act = count(info, 2, "activation");
  if (act > 3) throw Napi::RangeError::New(info.Env(), "activation must be 0 (gelu), 1 (gelu_tanh), 2 (silu) or 3 (relu)");
  need(info.Env(), grad, x.length, "grad");
  activation_backward(x.data, grad.data, static_cast<long>(x.length), static_cast<Activation>(act));
}

void SiluMul(const Napi::CallbackInfo& info) {
  auto gate = f32(info, 0, "gate");
  auto up = f32(info, 1, "up");
  need(info.Env(), up, gate.length, "up");
  silu_mul(gate.data, up.data, static_cast<long>(gate.length));
}

void Rotary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long rows = count(info, 1, "rows"), seq = count(info, 2, "seq"), pos0 = count(info, 3, "pos0");
  long stride = count(info, 4, "rowStride");
  long offset = count(info, 5, "offset"), heads = count(info, 6, "heads"), head_dim = count(info, 7, "headDim");
  auto inv_freq = f32(info, 8, "invFreq");
  long half = static_cast<long>(inv_freq.length);
  long style = count(info, 9, "style");
  if (seq == 0 || rows % seq) throw Napi::RangeError::New(env, "rotary: rows must be a multiple of seq");
  if (2 * half > head_dim) throw Napi::RangeError::New(env, "rotary: 2 * invFreq.length must be <= headDim");
  if (offset + heads * head_dim > stride) throw Napi::RangeError::New(env, "rotary: heads run past the row");
  if (style > 1) throw Napi::RangeError::New(env, "rotary: style must be 0 (rotate half) or 1 (interleaved)");
  need(env, x, span(rows, stride, stride), "x");
  rotary(x.data, rows, seq, pos0, stride, offset, heads, head_dim, inv_freq.data, half, static_cast<int>(style));
}

void CachedAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto q = f32(info, 0, "q");
  long q_stride = count(info, 1, "qStride"), q_off = count(info, 2, "qOffset");
  long batch = count(info, 3, "batch"), n = count(info, 4, "n"), pos0 = count(info, 5, "pos0");
  auto kc = f32(info, 6, "kCache");
  auto vc = f32(info, 7, "vCache");
  long cache_len = count(info, 8, "cacheLen"), heads = count(info, 9, "heads"), kv_heads = count(info, 10, "kvHeads");
  long head_dim = count(info, 11, "headDim");
  float scale = real(info, 12, "scale");
  float softcap = real(info, 13, "softcap");
  auto out = f32(info, 14, "out");
  if (kv_heads == 0 || heads % kv_heads) throw Napi::RangeError::New(env, "attention: heads must be a multiple of kvHeads");
  if (pos0 + n > cache_len) throw Napi::RangeError::New(env, "attention: positions run past the cache");
  if (q_off + heads * head_dim > q_stride) throw Napi::RangeError::New(env, "attention: q heads run past the row");
  need(env, q, span(batch * n, q_stride, q_stride), "q");
  need(env, kc, double(batch) * cache_len * kv_heads * head_dim, "kCache");
  need(env, vc, double(batch) * cache_len * kv_heads * head_dim, "vCache");
  need(env, out, double(batch) * n * heads * head_dim, "out");
  cached_attention(q.data, q_stride, q_off, batch, n, pos0, kc.data, vc.data, cache_len, heads, kv_heads, head_dim, scale,
                   softcap, out.data);
}

void CausalConv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32(info, 0, "x");
  long batch = count(info, 1, "batch"), seq = count(info, 2, "seq"), channels = count(info, 3, "channels"), kernel = count(info, 4, "kernel");
  auto w = f32(info, 5, "w");
  auto history = f32(info, 6, "history");
  bool silu = flag(info, 7);
  auto out = f32(info, 8, "out");
  if (kernel == 0) throw Napi::RangeError::New(env, "causalConv: kernel must be at least 1");
  need(env, x, double(batch) * seq * channels, "x");
  need(env, w, double(channels) * kernel, "w");
  need(env, history, double(batch) * (kernel - 1) * channels, "history");
  need(env, out, double(batch) * seq * channels, "out");
  causal_conv(x.data, batch, seq, channels, kernel, w.data, history.data, silu, out.data);
}

void SsmScan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto u = f32(info, 0, "u");
  auto B = f32(info, 1, "B");
  auto C = f32(info, 2, "C");
  auto decay = f32(info, 3, "decay");
  long batch = count(info, 4, "batch"), seq = count(info, 5, "seq"), heads = count(info, 6, "heads");
  long head_dim = count(info, 7, "headDim"), groups = count(info, 8, "groups"), d_state = count(info, 9, "dState");
  auto state = f32(info, 10, "state");
  auto out = f32(info, 11, "out");
  if (groups == 0 || heads % groups) throw Napi::RangeError::New(env, "ssmScan: heads must be a multiple of groups");
  const double rows = double(batch) * seq;
  need(env, u, rows * heads * head_dim, "u");
  need(env, B, rows * groups * d_state, "B");
  need(env, C, rows * groups * d_state, "C");
  need(env, decay, rows * heads, "decay");
  need(env, state, double(batch) * heads * d_state * head_dim, "state");
  need(env, out, rows * heads * head_dim, "out");
  ssm_scan(u.data, B.data, C.data, decay.data, batch, seq, heads, head_dim, groups, d_state, state.data, out.data);
}

void SsmScanBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto u = f32(info, 0, "u");
  auto B = f32(info, 1, "B");
  auto C = f32(info, 2, "C");
  auto decay = f32(info, 3, "decay");
  auto d_out = f32(info, 4, "dOut");
  long batch = count(info, 5, "batch"), seq = count(info, 6, "seq"), heads = count(info, 7, "heads");
  long head_dim = count(info, 8, "headDim"), groups = count(info, 9, "groups"), d_state = count(info, 10, "dState");
  auto du = f32(info, 11, "du");
  auto dB = f32(info, 12, "dB");
  auto dC = f32(info, 13, "dC");
  auto d_decay = f32(info, 14, "dDecay");
  if (groups == 0 || heads % groups) throw Napi::RangeError::New(env, "ssmScanBackward: heads must be a multiple of groups");
  const double rows = double(batch) * seq;
  need(env, u, rows * heads * head_dim, "u");
  need(env, B, rows * groups * d_state, "B");
  need(env, C, rows * groups * d_state, "C");
  need(env, decay, rows * heads, "decay");
  need(env, d_out, rows * heads * head_dim, "dOut");
  need(env, du, rows * heads * head_dim, "du");
  need(env, dB, rows * heads * d_state, "dB");
  need(env, dC, rows * heads * d_state, "dC");
  need(env, d_decay, rows * heads, "dDecay");
  ssm_scan_backward(u.data, B.data, C.data, decay.data, d_out.data, batch, seq, heads, head_dim, groups, d_state, du.data,
                    dB.data, dC.data, d_decay.data);
}

void GatedDeltaRuleBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto q = f32(info, 0, "q");
  auto k = f32(info, 1, "k");
  auto v = f32(info, 2, "v");
  auto decay = f32(info, 3, "decay");
  auto beta = f32(info, 4, "beta");
  auto d_out = f32(info, 5, "dOut");
  long batch = count(info, 6, "batch"), seq = count(info, 7, "seq");
  long k_heads = count(info, 8, "kHeads"), v_heads = count(info, 9, "vHeads"), dk = count(info, 10, "dk"), dv = count(info, 11, "dv");
  auto dq = f32(info, 12, "dq");
  auto dK = f32(info, 13, "dK");
  auto dV = f32(info, 14, "dV");
  auto d_decay = f32(info, 15, "dDecay");
  auto d_beta = f32(info, 16, "dBeta");
  if (k_heads == 0 || v_heads % k_heads) throw Napi::RangeError::New(env, "gatedDeltaRuleBackward: vHeads must be a multiple of kHeads");
  const double rows = double(batch) * seq;
  need(env, q, rows * k_heads * dk, "q");
  need(env, k, rows * k_heads * dk, "k");
  need(env, v, rows * v_heads * dv, "v");
  need(env, decay, rows * v_heads, "decay");
  need(env, beta, rows * v_heads, "beta");
  need(env, d_out, rows * v_heads * dv, "dOut");
  need(env, dq, rows * v_heads * dk, "dq");
  need(env, dK, rows * v_heads * dk, "dK");
  need(env, dV, rows * v_heads * dv, "dV");
  need(env, d_decay, rows * v_heads, "dDecay");
  need(env, d_beta, rows * v_heads, "dBeta");
  gated_delta_rule_backward(q.data, k.data, v.data, decay.data, beta.data, d_out.data, batch, seq, k_heads, v_heads, dk, dv,
                            dq.data, dK.data, dV.data, d_decay.data, d_beta.data);
}

void GatedDeltaRule(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto q = f32(info, 0, "q");
  auto k = f32(info, 1, "k");
  auto v = f32(info, 2, "v");
  auto decay = f32(info, 3, "decay");
  auto beta = f32(info, 4, "beta");
  long batch = count(info, 5, "batch"), seq = count(info, 6, "seq");
  long k_heads = count(info, 7, "kHeads"), v_heads = count(info, 8, "vHeads"), dk = count(info, 9, "dk"), dv = count(info, 10, "dv");
  auto state = f32(info, 11, "state");
  auto out = f32(info, 12, "out");
  if (k_heads == 0 || v_heads % k_heads) throw Napi::RangeError::New(env, "gatedDeltaRule: vHeads must be a multiple of kHeads");
  const double rows = double(batch) * seq;
  need(env, q, rows * k_heads * dk, "q");
  need(env, k, rows * k_heads * dk, "k");
  need(env, v, rows * v_heads * dv, "v");
  need(env, decay, rows * v_heads, "decay");
  need(env, beta, rows * v_heads, "beta");
  need(env, state, double(batch) * v_heads * dk * dv, "state");
  need(env, out, rows * v_heads * dv, "out");
  gated_delta_rule(q.data, k.data, v.data, decay.data, beta.data, batch, seq, k_heads, v_heads, dk, dv, state.data, out.data);
}

// Arguments 0-10 of causalAttention and its backward: qkv [batch * seq, rowStride] with its
// q/k/v heads' offsets and widths, and the logits' scale, checked against each other.
struct AttentionArgs {
  View<float> qkv;
  long batch, seq, stride, q_off, k_off, v_off, heads, kv_heads, head_dim;
  float scale;
};

AttentionArgs attention_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttentionArgs a{f32(info, 0, "qkv"), count(info, 1, "batch"), count(info, 2, "seq"), count(info, 3, "rowStride"),
                  count(info, 4, "qOffset"), count(info, 5, "kOffset"), count(info, 6, "vOffset"), count(info, 7, "heads"),
                  count(info, 8, "kvHeads"), count(info, 9, "headDim"), real(info, 10, "scale")};
  if (a.kv_heads == 0 || a.heads % a.kv_heads) throw Napi::RangeError::New(env, "attention: heads must be a multiple of kvHeads");
  if (a.q_off + a.heads * a.head_dim > a.stride || a.k_off + a.kv_heads * a.head_dim > a.stride ||
      a.v_off + a.kv_heads * a.head_dim > a.stride)
    throw Napi::RangeError::New(env, "attention: q/k/v heads run past the row");
  need(env, a.qkv, span(a.batch * a.seq, a.stride, a.stride), "qkv");
  return a;
}

void CausalAttention(const Napi::CallbackInfo& info) {
  AttentionArgs a = attention_args(info);
  float softcap = real(info, 11, "softcap");
  auto out = f32(info, 12, "out");
  need(info.Env(), out, double(a.batch) * a.seq * a.heads * a.head_dim, "out");
  causal_attention(a.qkv.data, a.batch, a.seq, a.stride, a.q_off, a.k_off, a.v_off, a.heads, a.kv_heads, a.head_dim, a.scale,
                   softcap, out.data);
}

// targets [rows], each below the vocabulary's size (negative: no target).
void check_targets(const Napi::Env& env, const View<int32_t>& targets, long rows, long V) {
  need(env, targets, rows, "targets");
  for (long r = 0; r < rows; r++)
    if (targets.data[r] >= V) throw Napi::RangeError::New(env, "targets[" + std::to_string(r) + "] is outside the vocabulary");
}

void CrossEntropyRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto logits = f32(info, 0, "logits");
  long rows = count(info, 1, "rows"), V = count(info, 2, "vocab");
  auto targets = i32(info, 3, "targets");
  auto loss = f32(info, 4, "loss");
  need(env, logits, double(rows) * V, "logits");
  need(env, loss, rows, "loss");
  check_targets(env, targets, rows, V);
  cross_entropy_rows(logits.data, rows, V, targets.data, loss.data);
}

void KlRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto p = f32(info, 0, "p");
  auto q = f32(info, 1, "q");
  long rows = count(info, 2, "rows"), V = count(info, 3, "vocab");
  auto kl = f32(info, 4, "kl");
  need(env, p, double(rows) * V, "p");
  need(env, q, double(rows) * V, "q");
  need(env, kl, rows, "kl");
  kl_rows(p.data, q.data, rows, V, kl.data);
}

void CausalAttentionBackward(const Napi::CallbackInfo& info) {
  AttentionArgs a = attention_args(info);
  float softcap = real(info, 11, "softcap");
  auto dout = f32(info, 12, "dOut");
  auto dqkv = f32(info, 13, "dqkv");
  need(info.Env(), dqkv, span(a.batch * a.seq, a.stride, a.stride), "dqkv");
  need(info.Env(), dout, double(a.batch) * a.seq * a.heads * a.head_dim, "dOut");
  causal_attention_backward(a.qkv.data, a.batch, a.seq, a.stride, a.q_off, a.k_off, a.v_off, a.heads, a.kv_heads, a.head_dim,
                            a.scale, softcap, dout.data, dqkv.data);
}

void CrossEntropyGradRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto logits = f32(info, 0, "logits");
  long rows = count(info, 1, "rows"), V = count(info, 2, "vocab");
  auto targets = i32(info, 3, "targets");
  float scale = real(info, 4, "scale");
  auto loss = f32(info, 5, "loss");
  need(env, logits, double(rows) * V, "logits");
  need(env, loss, rows, "loss");
  check_targets(env, targets, rows, V);
  cross_entropy_grad_rows(logits.data, rows, V, targets.data, scale, loss.data);
}

void KlGradRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto p = f32(info, 0, "p");
  auto q = f32(info, 1, "q");
  long rows = count(info, 2, "rows"), V = count(info, 3, "vocab");
  float scale = real(info, 4, "scale");
  auto kl = f32(info, 5, "kl");
  need(env, p, double(rows) * V, "p");
  need(env, q, double(rows) * V, "q");
  need(env, kl, rows, "kl");
  kl_grad_rows(p.data, q.data, rows, V, scale, kl.data);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("activate", Napi::Function::New(env, Activate));
  exports.Set("activationBackward", Napi::Function::New(env, ActivationBackward));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul));
  exports.Set("rotary", Napi::Function::New(env, Rotary));
  exports.Set("causalAttention", Napi::Function::New(env, CausalAttention));
  exports.Set("cachedAttention", Napi::Function::New(env, CachedAttention));
  exports.Set("gatedDeltaRule", Napi::Function::New(env, GatedDeltaRule));
  exports.Set("ssmScan", Napi::Function::New(env, SsmScan));
  exports.Set("ssmScanBackward", Napi::Function::New(env, SsmScanBackward));
  exports.Set("gatedDeltaRuleBackward", Napi::Function::New(env, GatedDeltaRuleBackward));
  exports.Set("causalConv", Napi::Function::New(env, CausalConv));
  exports.Set("crossEntropyRows", Napi::Function::New(env, CrossEntropyRows));
  exports.Set("klRows", Napi::Function::New(env, KlRows));
  exports.Set("causalAttentionBackward", Napi::Function::New(env, CausalAttentionBackward));
  exports.Set("crossEntropyGradRows", Napi::Function::New(env, CrossEntropyGradRows));
  exports.Set("klGradRows", Napi::Function::New(env, KlGradRows));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("sgemm", Napi::Function::New(env, Gemm<GemmKind::Float32>));
  exports.Set("sgemmBf16B", Napi::Function::New(env, Gemm<GemmKind::BfloatB>));
  exports.Set("sgemmBf16", Napi::Function::New(env, Gemm<GemmKind::BfloatPrecision>));
  exports.Set("topkRows", Napi::Function::New(env, TopkRows));
  exports.Set("groupMaxRows", Napi::Function::New(env, GroupMaxRows));
  exports.Set("batchTopk", Napi::Function::New(env, BatchTopk));
  exports.Set("thresholdSelect", Napi::Function::New(env, ThresholdSelect));
  exports.Set("fillNormal", Napi::Function::New(env, FillNormal));
  exports.Set("sampleLatents", Napi::Function::New(env, SampleLatents));
  exports.Set("biasAct", Napi::Function::New(env, BiasAct));
  exports.Set("sparseDecode", Napi::Function::New(env, SparseDecode));
  exports.Set("sparseRowDots", Napi::Function::New(env, SparseRowDots));
  exports.Set("sparseReconstruct", Napi::Function::New(env, SparseReconstruct));
  exports.Set("sparseTranspose", Napi::Function::New(env, SparseTranspose));
  exports.Set("sparseScatterRows", Napi::Function::New(env, SparseScatterRows));
  exports.Set("adamUpdate", Napi::Function::New(env, AdamUpdate));
  exports.Set("scheduleFreeSignUpdate", Napi::Function::New(env, ScheduleFreeSignUpdate));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("dot", Napi::Function::New(env, Dot));
  exports.Set("scale", Napi::Function::New(env, Scale));
  exports.Set("diffScaled", Napi::Function::New(env, DiffScaled));
  exports.Set("rowNorms", Napi::Function::New(env, RowNorms));
  exports.Set("tsneGradient", Napi::Function::New(env, TsneGradient));
  exports.Set("scaleRows", Napi::Function::New(env, ScaleRows));
  exports.Set("addScaledRows", Napi::Function::New(env, AddScaledRows));
  exports.Set("removeParallelComponent", Napi::Function::New(env, RemoveParallelComponent));
  exports.Set("colSums", Napi::Function::New(env, ColSums));
  exports.Set("addRowVector", Napi::Function::New(env, AddRowVector));
  exports.Set("gatherColumns", Napi::Function::New(env, GatherColumns));
  exports.Set("gatherEntries", Napi::Function::New(env, GatherEntries));
  exports.Set("scatterEntries", Napi::Function::New(env, ScatterEntries));
  exports.Set("codeFirings", Napi::Function::New(env, CodeFirings));
  return exports;
}

}  // namespace

NODE_API_MODULE(saekit_native, Init)
