/** `saekit bench gemm` and `saekit bench topk`: the two kernels SAE training lives on. */
import { type Kernels, type MatmulPrecision, kernels, runtimeInfo, setThreads, SelectMode, typescriptKernels, wasmKernels } from "../core/kernels.js";
import { referenceKernels } from "../core/reference.js";
import { wasmSimdAvailable } from "../core/wasm-gemm.js";
import { Rng } from "../core/rng.js";
import { round, timeIt } from "./timing.js";

/**
 * Which kernels a bench times: the ones saekit runs on (native where built), the
 * WebAssembly + TypeScript kernels a browser runs, the TypeScript ones alone, or the
 * reference twins they are checked against.
 */
export type KernelSet = "default" | "wasm" | "typescript" | "reference";

function kernelSet(set: KernelSet = "default"): { K: Kernels; kernels: string; isa: string } {
  if (set === "wasm") {
    if (!wasmSimdAvailable()) throw new Error("--kernels wasm: this JavaScript engine has no WebAssembly SIMD");
    return { K: wasmKernels, kernels: "wasm", isa: "wasm-simd128" };
  }
  if (set === "typescript") return { K: typescriptKernels, kernels: "typescript", isa: "typescript" };
  if (set === "reference") return { K: referenceKernels, kernels: "reference", isa: "typescript" };
  const info = runtimeInfo();
  return { K: kernels(), kernels: info.kernels, isa: info.isa };
}

export interface GemmBenchOptions {
  m: number;
  k: number;
  n: number;
  threads: number;
  /** B given as [n, k] (the layout of an nn.Linear weight), as the SAE encoder uses it. */
  transB?: boolean;
  runs?: number;
  kernels?: KernelSet;
  /** "medium": the product of the inputs rounded to bfloat16 (sgemmBf16). Default "highest". */
  precision?: MatmulPrecision;
}

export interface GemmBenchResult {
  bench: "gemm";
  impl: "saekit";
  kernels: string;
  isa: string;
  m: number;
  k: number;
  n: number;
  threads: number;
  transB: boolean;
  precision: MatmulPrecision;
  ms: number;
  gflops: number;
}

/** C[m, n] = A[m, k] * B[k, n] (or B^T), fp32 or bf16 inputs; reports the median time and GFLOP/s. */
export function benchGemm(o: GemmBenchOptions): GemmBenchResult {
  setThreads(o.threads);
  const rng = new Rng(0);
  const A = rng.fillNormal(new Float32Array(o.m * o.k));
  const B = rng.fillNormal(new Float32Array(o.k * o.n));
  const C = new Float32Array(o.m * o.n);
  const { K, ...set } = kernelSet(o.kernels);
  const transB = o.transB ?? false;
  const precision = o.precision ?? "highest";
  const product = precision === "medium" ? K.sgemmBf16 : K.sgemm;
  const t = timeIt(() => product(false, transB, o.m, o.n, o.k, 1, A, o.k, B, transB ? o.k : o.n, 0, C, o.n),
    { runs: o.runs });
  return {
    bench: "gemm", impl: "saekit", ...set,
    m: o.m, k: o.k, n: o.n, threads: o.threads, transB, precision,
    ms: round(t.ms), gflops: round((2 * o.m * o.k * o.n) / (t.ms * 1e6), 1),
  };
}

export interface TopkBenchOptions {
  batch: number;
  m: number;
  k: number;
  threads: number;
  mode?: "relu" | "abs";
  runs?: number;
  kernels?: KernelSet;
}

/** Per-row top-k of a [batch, m] matrix of Gaussian pre-activations. */
export function benchTopk(o: TopkBenchOptions) {
  setThreads(o.threads);
  const rng = new Rng(0);
  const x = rng.fillNormal(new Float32Array(o.batch * o.m));
  const vals = new Float32Array(o.batch * o.k);
  const idx = new Int32Array(o.batch * o.k);
  const mode = o.mode === "abs" ? SelectMode.Abs : SelectMode.Relu;
  const { K, ...set } = kernelSet(o.kernels);
  const t = timeIt(() => K.topkRows(x, o.batch, o.m, o.k, mode, null, vals, idx), { runs: o.runs });
  return {
    bench: "topk" as const, impl: "saekit" as const, ...set,
    batch: o.batch, m: o.m, k: o.k, mode: o.mode ?? "relu", threads: o.threads, ms: round(t.ms),
  };
}
