/** `saekit bench ...`: benchmarks that print one JSON line per measurement. */
import { Command, Option } from "commander";
import { benchGemm, benchTopk } from "../bench/kernels.js";
import { benchLm } from "../bench/lm.js";
import { UNSELECTED_ARCHS, benchTrain } from "../bench/train.js";
import { OPTIMIZERS } from "../train/optimizer.js";
import { benchTsne } from "../bench/tsne.js";
import { defaultThreads, matmulPrecisionOption, nonNegativeInt, positiveInt, printJson, useMatmulPrecision } from "./options.js";

export function registerBench(program: Command): void {
  const bench = program
    .command("bench")
    .description("measure saekit's speed on this machine; each prints JSON lines (median of >= 5 runs after warm-up)");

  bench
    .command("gemm")
    .description("fp32 matrix product C[m,n] = A[m,k] B[k,n] (--matmul-precision medium: on inputs rounded to bfloat16) on the native GEMM (or --kernels wasm / typescript / reference); reports GFLOP/s")
    .option("--m <n>", "rows of A and C", positiveInt, 4096)
    .option("--k <n>", "inner dimension", positiveInt, 512)
    .option("--n <n>", "columns of B and C", positiveInt, 16384)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--trans-b", "B stored as [n, k] (nn.Linear layout)", false)
    .option("--runs <n>", "timed runs (at least 5)", positiveInt, 7)
    .addOption(kernelsOption())
    .addOption(matmulPrecisionOption())
    .action((o) => printJson(benchGemm({
      m: o.m, k: o.k, n: o.n, threads: o.threads, transB: o.transB, runs: o.runs, kernels: o.kernels, precision: useMatmulPrecision(o.matmulPrecision),
    })));

  bench
    .command("topk")
    .description("per-row top-k of a [batch, m] matrix (TopK SAE activation); reports milliseconds")
    .option("--batch <n>", "rows", positiveInt, 4096)
    .option("--m <n>", "columns (latents)", positiveInt, 16384)
    .option("--k <n>", "entries kept per row", positiveInt, 64)
    .addOption(new Option("--mode <mode>", "relu (TopK) or abs (AbsTopK)").choices(["relu", "abs"]).default("relu"))
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--runs <n>", "timed runs (at least 5)", positiveInt, 7)
    .addOption(kernelsOption())
    .action((o) => {
      if (o.k > o.m) throw new Error(`--k (${o.k}) must not exceed --m (${o.m})`);
      printJson(benchTopk({ batch: o.batch, m: o.m, k: o.k, mode: o.mode, threads: o.threads, runs: o.runs, kernels: o.kernels }));
    });

  bench
    .command("train")
    .description("tokens/s of a full SAE training step (forward, backward, the optimizer: Adam as the peer), configured like ../shared/bench/peer_topk_sae.py")
    .addOption(new Option("--arch <name>", "architecture (mp: at most --k pursuit steps per token; relu, jumprelu, gated: no k, see --l0)").choices(["topk", "vsae", "abstopk", "batchtopk", "matryoshka", "mp", ...UNSELECTED_ARCHS]).default("topk"))
    .option("--d <n>", "input width", positiveInt, 512)
    .option("--m <n>", "latents", positiveInt, 16384)
    .option("--k <n>", "active latents per token", positiveInt, 64)
    .option("--batch <n>", "tokens per step", positiveInt, 4096)
    .option("--steps <n>", "timed steps (at least 5; 2 more warm up)", positiveInt, 5)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .addOption(new Option("--optimizer <kind>", "the optimizer stepping (the peer's is adam)").choices([...OPTIMIZERS]).default("adam"))
    .addOption(matmulPrecisionOption())
    .option("--dead <n>", "latents counted dead, so that AuxK (aux_k = d / 2) trains them as it does once latents die (jumprelu: the pre-activation loss, coefficient 3e-6) (0: off, as in the peer)", nonNegativeInt, 0)
    .option("--l0 <n>", "relu, jumprelu, gated: set the bias or threshold once so that about this many latents fire per token, as after training (0: as initialised, about half of --m, as training starts)", nonNegativeInt, 0)
    .action((o) => {
      if (o.dead > o.m) throw new Error(`--dead (${o.dead}) must not exceed --m (${o.m})`);
      if (o.dead > 0 && (o.arch === "mp" || o.arch === "relu" || o.arch === "gated")) {
        throw new Error(`--dead: a ${o.arch === "mp" ? "matching pursuit" : `${o.arch} SAE`} has no AuxK or pre-activation loss to train dead latents`);
      }
      const unselected = (UNSELECTED_ARCHS as readonly string[]).includes(o.arch);
      if (o.l0 > 0 && !unselected) throw new Error(`--l0: a ${o.arch} SAE's L0 is its --k`);
      if (2 * o.l0 >= o.m) throw new Error(`--l0 (${o.l0}) must be below half of --m (${o.m})`);
      printJson(benchTrain({
        arch: o.arch, d: o.d, m: o.m, k: o.k, batch: o.batch, steps: o.steps, threads: o.threads, optimizer: o.optimizer,
        matmulPrecision: useMatmulPrecision(o.matmulPrecision), dead: o.dead, l0: o.l0,
      }));
    });

  bench
    .command("tsne")
    .description("seconds for the t-SNE map `saekit analyze` draws, on n clustered unit vectors in R^d (decoder directions)")
    .option("--n <n>", "points (living latents)", positiveInt, 10000)
    .option("--d <n>", "their width (d_in)", positiveInt, 512)
    .option("--iterations <n>", "t-SNE iterations", positiveInt, 1000)
    .addOption(new Option("--method <method>", "barnes_hut or exact").choices(["barnes_hut", "exact"]).default("barnes_hut"))
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--runs <n>", "timed runs (at least 5; 1 more warms up)", positiveInt, 5)
    .action((o) => printJson(benchTsne({ n: o.n, d: o.d, iterations: o.iterations, method: o.method, threads: o.threads, runs: o.runs })));

  bench
    .command("lm")
    .description("language-model tokens/s with random weights at a preset's shapes: harvest to a layer's resid_post, and a full forward with next-token loss")
    .option("--preset <name>", "model shapes (pythia-70m, gpt2, gemma-2-2b: ~11 GB of memory, falcon-h1-0.5b: Mamba-2 beside attention)", "pythia-70m")
    .option("--layer <n>", "harvest layer", nonNegativeInt, 0)
    .option("--ctx <n>", "tokens per context", positiveInt, 128)
    .option("--batch <n>", "contexts per forward", positiveInt, 32)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--runs <n>", "timed runs (at least 5)", positiveInt, 5)
    .addOption(new Option("--model-dtype <dtype>", "weight matrices as float32 or bfloat16").choices(["f32", "bf16"]).default("f32"))
    .addOption(matmulPrecisionOption())
    .action((o) => printJson(benchLm({
      preset: o.preset, layer: o.layer, ctx: o.ctx, batch: o.batch, threads: o.threads, runs: o.runs, weights: o.modelDtype,
      matmulPrecision: useMatmulPrecision(o.matmulPrecision),
    })));
}

/** --kernels: time the kernels a browser runs, or the reference twins, instead. */
function kernelsOption(): Option {
  return new Option("--kernels <set>", "default: native where built; wasm: the browser's kernels (GEMM on WebAssembly SIMD); " +
    "typescript: the plain TypeScript ones (no WebAssembly SIMD); reference: the TypeScript twins the tests check against")
    .choices(["default", "wasm", "typescript", "reference"]).default("default");
}
