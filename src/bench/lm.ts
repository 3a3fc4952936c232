/**
 * `saekit bench lm`: language-model throughput at a real model's shapes with random
 * weights (no download): tokens/s of a harvest forward that stops after a layer's
 * resid_post, of a full forward including the unembedding and next-token loss, of the
 * model's share of an end-to-end training step (a clean pass, the pass with the layer's
 * resid_post replaced, the KL between them and its gradient back to that activation), and
 * of greedy generation (one token per forward, on the key/value cache).
 */
import { type MatmulPrecision, runtimeInfo, setThreads, withMatmulPrecision } from "../core/kernels.js";
import { Rng } from "../core/rng.js";
import { PRESETS } from "../lm/config.js";
import { generate } from "../lm/generate.js";
import { randomModel } from "../lm/random.js";
import { SpliceBackward } from "../lm/splice-backward.js";
import { round, timeIt } from "./timing.js";

export interface LmBenchOptions {
  preset: string;
  layer: number;
  ctx: number;
  batch: number;
  threads: number;
  runs?: number;
  /** Weight matrices as float32 (default) or bfloat16. */
  weights?: "f32" | "bf16";
  /** The matrix products' precision (kernels.ts). Default "highest". */
  matmulPrecision?: MatmulPrecision;
}

export function benchLm(o: LmBenchOptions) {
  const cfg = PRESETS[o.preset];
  if (!cfg) throw new Error(`unknown preset "${o.preset}" (${Object.keys(PRESETS).join(", ")})`);
  if (o.layer >= cfg.nLayers) throw new Error(`--layer ${o.layer}: ${o.preset} has ${cfg.nLayers} layers`);
  setThreads(o.threads);
  const model = randomModel(cfg, 0);
  model.storeWeightsAs(o.weights ?? "f32");
  const rng = new Rng(1);
  const N = o.batch * o.ctx;
  const tokens = Int32Array.from({ length: N }, () => rng.int(cfg.vocabSize));
  const hook = `blocks.${o.layer}.hook_resid_post`;
  const precision = o.matmulPrecision ?? "highest";
  // Generation: 32 new tokens after a 16-token prompt, each a forward pass of one position.
  const prompt = Array.from(tokens.subarray(0, 16));
  const generated = 32;
  const splice = new SpliceBackward(model, hook, "kl");
  const [harvest, full, e2e, decode] = withMatmulPrecision(precision, () => [
    timeIt(() => model.forward(tokens, o.batch, o.ctx, { stopAt: hook, output: "none", hooks: { [hook]: () => {} } }), { runs: o.runs }),
    timeIt(() => {
      const r = model.forward(tokens, o.batch, o.ctx, { output: "final" });
      model.nextTokenLosses(tokens, o.batch, o.ctx, r.final!);
    }, { warmup: 1, runs: o.runs }),
    timeIt(() => {
      const clean = splice.clean(tokens, o.batch, o.ctx);
      splice.lossAndGrad(tokens, o.batch, o.ctx, clean, clean.x);
    }, { warmup: 1, runs: o.runs }),
    timeIt(() => generate(model, prompt, { maxNew: generated }), { warmup: 1, runs: o.runs }),
  ]);
  const info = runtimeInfo();
  return {
    bench: "lm" as const, impl: "saekit" as const, kernels: info.kernels, isa: info.isa, preset: o.preset,
    layer: o.layer, ctx: o.ctx, batch: o.batch, threads: o.threads, weights: o.weights ?? "f32", matmul_precision: precision, weight_mb: Math.round(model.weightBytes() / 2 ** 20),
    harvest_tokens_per_s: Math.round(N / (harvest.ms / 1000)), harvest_ms: round(harvest.ms),
    full_tokens_per_s: Math.round(N / (full.ms / 1000)), full_ms: round(full.ms),
    e2e_kl_tokens_per_s: Math.round(N / (e2e.ms / 1000)), e2e_kl_ms: round(e2e.ms),
    generate_tokens_per_s: round(generated / (decode.ms / 1000), 1),
  };
}
