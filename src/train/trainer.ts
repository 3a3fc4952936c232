/**
 * The SAE trainer: one loop for every architecture.
 *
 * Each step reads a batch, runs the SAE's forward and hand-written backward, optionally
 * keeps decoder rows at unit norm (removing the gradient's parallel part before the step,
 * renormalising after), clips the global gradient norm, and applies Adam with a linear
 * warm-up / linear decay schedule. It tracks, per latent, the tokens since the latent last
 * fired (f != 0), which drives AuxK and the dead fraction, and how often it fires over the
 * last featureSamplingWindow steps, saved as SAELens' sparsity.safetensors; optionally it
 * resamples dead latents every resampleEvery steps (resample.ts). A source that pairs each
 * row with a target (ActivationSource.dTarget) trains a transcoder: the SAE reconstructs
 * the target from the row, and the metrics (FVU) are measured against the targets.
 *
 * Runs are deterministic given the seed: every random choice comes from seeded streams
 * and every native reduction has a fixed order, independent of the thread count. A
 * checkpoint holds all state (weights, Adam moments, counters, data position), so a run
 * killed at any point and resumed ends bit-identical to an uninterrupted one.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { kernels } from "../core/kernels.js";
import { type ActivationSource, checkFinite, rowWidth, splitPairs } from "../data/source.js";
import { type SaeConfig, type SaeConfigInput, defaultConfig } from "../sae/config.js";
import { createSae } from "../sae/registry.js";
import { type SaeMetadata, saveSae } from "../sae/saelens.js";
import type { Sae, StepStats } from "../sae/sae.js";
import { logFeatureSparsity } from "../sae/saelens-format.js";
import { type SparseCode, nnz } from "../sae/sparse-code.js";
import { ProgressBar } from "../util/progress.js";
import { ADAM_DEFAULTS, Adam } from "./adam.js";
import { type Checkpoint, hasCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { type BDecInit, defaultDecoderInitNorm, initializeFromSource } from "./init.js";
import { resampleDeadLatents } from "./resample.js";
import { TrainingCore, checkSkipConnection, stepMetrics } from "./core.js";
import { type LrSchedule, type LrScheduleKind, defaultSchedule, validateSchedule } from "./schedule.js";

export const METRICS_FILE = "metrics.jsonl";

export interface TrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  /** Default: min(1000, 5% of steps). */
  lrWarmupSteps?: number;
  /** Step where linear decay to 0 begins. Default: 80% of steps (constant), none after a cosine. */
  lrDecayStart?: number;
  /** The main learning-rate schedule (schedule.ts). Default: constant. */
  lrSchedule?: LrScheduleKind;
  /** The cosines' final learning rate. Default: lr / 10 (SAELens). */
  lrEnd?: number;
  /** cosine_restarts: number of cycles. Default: 1. */
  lrCycles?: number;
  beta1?: number;
  beta2?: number;
  adamEps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this (0 = no clipping). */
  clipGradNorm?: number;
  seed?: number;
  bDecInit?: BDecInit;
  /** Norm of decoder rows at init. Default: 1 for unit-norm decoders, else 0.1 (SAELens). */
  decoderInitNorm?: number;
  /** "expected_norm": scale inputs so E||x||^2 = d_in (folded into the weights at save). */
  normalizeActivations?: "none" | "expected_norm";
  /** A latent is dead once it has not fired for this many tokens. */
  deadAfterTokens?: number;
  /**
   * Every this many steps, resample the latents that have not fired in the last half of
   * them (resample.ts; Anthropic, dictionary_learning). 0: never.
   */
  resampleEvery?: number;
  /**
   * Steps over which each latent's firing frequency is counted for sparsity.safetensors
   * (SAELens' feature_sampling_window, 2000): the final window, or the whole run if shorter.
   */
  featureSamplingWindow?: number;
  logEvery?: number;
  /** Steps between checkpoints (0: only at the end). */
  checkpointEvery?: number;
  /** Run folder: metrics.jsonl, checkpoint.safetensors, and the SAELens-format SAE. */
  outDir?: string;
  /** Continue from outDir's checkpoint when there is one. */
  resume?: boolean;
  /** Recorded in cfg.json (model_name, hook_name, context_size, ...). */
  metadata?: SaeMetadata;
  /** Draw a progress bar on a TTY (default true). */
  progress?: boolean;
  /** Called with every metrics record. */
  onLog?: (m: MetricsRecord) => void;
  /** Stop after this many steps of this invocation (for tests that simulate a crash). */
  stopAfter?: number;
}

export interface MetricsRecord {
  step: number;
  tokens: number;
  loss: number;
  mse: number;
  fvu: number;
  l0: number;
  dead_frac: number;
  lr: number;
  tokens_per_s: number;
  [term: string]: number;
}

export interface TrainResult {
  sae: Sae;
  steps: number;
  tokens: number;
  inputScale: number;
  last: MetricsRecord | null;
  tokensSinceFired: Float64Array;
  /** log10 of each latent's firing frequency over the final sampling window (+ 1e-10). */
  logFeatureSparsity: Float32Array;
}

/** Options resolved to concrete values (saved in checkpoints). */
type Resolved = Required<Omit<TrainOptions, "outDir" | "metadata" | "onLog" | "stopAfter" | "progress" | "resume">> & {
  outDir?: string;
};

function resolve(cfg: SaeConfig, o: TrainOptions): Resolved {
  const sched = defaultSchedule(o.lr, o.steps, o.lrSchedule);
  const r: Resolved = {
    steps: o.steps,
    batchSize: o.batchSize,
    lr: o.lr,
    lrWarmupSteps: o.lrWarmupSteps ?? sched.warmupSteps,
    lrDecayStart: o.lrDecayStart ?? sched.decayStart,
    lrSchedule: sched.kind!,
    lrEnd: o.lrEnd ?? o.lr / 10,
    lrCycles: o.lrCycles ?? 1,
    beta1: o.beta1 ?? ADAM_DEFAULTS.beta1,
    beta2: o.beta2 ?? ADAM_DEFAULTS.beta2,
    adamEps: o.adamEps ?? ADAM_DEFAULTS.eps,
    weightDecay: o.weightDecay ?? 0,
    clipGradNorm: o.clipGradNorm ?? 1,
    seed: o.seed ?? 0,
    bDecInit: o.bDecInit ?? "mean",
    decoderInitNorm: o.decoderInitNorm ?? defaultDecoderInitNorm(cfg),
    normalizeActivations: o.normalizeActivations ?? "none",
    deadAfterTokens: o.deadAfterTokens ?? 10_000_000,
    resampleEvery: o.resampleEvery ?? 0,
    featureSamplingWindow: o.featureSamplingWindow ?? 2000,
    logEvery: o.logEvery ?? 100,
    checkpointEvery: o.checkpointEvery ?? 1000,
    outDir: o.outDir,
  };
  const posInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`training option ${name} must be a positive integer, got ${v}`);
  };
  posInt("steps", r.steps);
  posInt("batchSize", r.batchSize);
  posInt("logEvery", r.logEvery);
  posInt("featureSamplingWindow", r.featureSamplingWindow);
  if (!(r.lr > 0 && Number.isFinite(r.lr))) throw new RangeError(`training option lr must be > 0, got ${r.lr}`);
  validateSchedule(scheduleOf(r));
  if (!(r.clipGradNorm >= 0)) throw new RangeError("clipGradNorm must be >= 0");
  if (!Number.isSafeInteger(r.resampleEvery) || r.resampleEvery < 0) throw new RangeError(`training option resampleEvery must be a non-negative integer, got ${r.resampleEvery}`);
  if (r.resampleEvery > 0 && cfg.architecture === "vaease") throw new RangeError("resampling needs a linear encoder; a vaease SAE has none");
  return r;
}

/** The learning-rate schedule of resolved options. */
function scheduleOf(o: Resolved): LrSchedule {
  return {
    lr: o.lr, steps: o.steps, warmupSteps: o.lrWarmupSteps, decayStart: o.lrDecayStart,
    kind: o.lrSchedule, lrEnd: o.lrEnd, cycles: o.lrCycles,
  };
}

/** Window sums for one metrics record. */
class MetricsWindow {
  sums: Record<string, number> = {};
  add(key: string, v: number): void {
    this.sums[key] = (this.sums[key] ?? 0) + v;
  }
  reset(): void {
    this.sums = {};
  }
}

export function trainSae(cfg: SaeConfig, source: ActivationSource, options: TrainOptions): TrainResult {
  if (source.d !== cfg.d_in) throw new RangeError(`the data has width ${source.d}, the SAE expects d_in = ${cfg.d_in}`);
  // A paired source makes this a transcoder: it predicts each row's target from the row.
  const paired = source.dTarget !== undefined;
  if (paired && source.dTarget !== cfg.d_in) {
    throw new RangeError(`the targets have width ${source.dTarget}; saekit's transcoders predict targets as wide as their input (${cfg.d_in})`);
  }
  if (paired && cfg.apply_b_dec_to_input) {
    throw new RangeError("a transcoder's input is not in its output space: set apply_b_dec_to_input to false (--no-b-dec-on-input)");
  }
  checkSkipConnection(cfg, paired);
  const k = kernels();
  const outDir = options.outDir;
  let o = resolve(cfg, options);
  let resumed: Checkpoint | null = null;
  if (options.resume && outDir && hasCheckpoint(outDir)) {
    resumed = loadCheckpoint(outDir);
    const c = resumed.meta.config;
    if (c.architecture !== cfg.architecture || c.d_in !== cfg.d_in || c.d_sae !== cfg.d_sae) {
      throw new Error(`${outDir}: the checkpoint is a ${c.architecture} SAE ${c.d_in}x${c.d_sae}, not the requested ${cfg.architecture} ${cfg.d_in}x${cfg.d_sae}; use another --out or drop --resume`);
    }
    // The run continues with the settings it started with (options added since take their defaults).
    cfg = defaultConfig(c as unknown as SaeConfigInput);
    o = { ...resolve(c, options), ...(resumed.meta.options as Resolved), outDir };
  }
  const sched = scheduleOf(o);

  let sae: Sae;
  let adam: Adam;
  let startStep = 0;
  let tokens = 0;
  let inputScale = 1;
  let tokensSinceFired: Float64Array;
  let fireCounts: Float64Array;
  let sparsityTokens = 0;
  const window = new MetricsWindow();
  if (resumed) {
    sae = createSae(cfg, resumed.params, resumed.buffers);
    adam = new Adam(sae.params, adamOptions(o), { m: resumed.adamM, v: resumed.adamV });
    startStep = resumed.meta.step;
    tokens = resumed.meta.tokens;
    inputScale = resumed.meta.inputScale;
    tokensSinceFired = resumed.tokensSinceFired;
    fireCounts = resumed.fireCounts;
    sparsityTokens = resumed.meta.sparsityTokens ?? 0;
    window.sums = { ...resumed.meta.window };
    source.restore(resumed.meta.sourceState);
  } else {
    sae = createSae(cfg);
    inputScale = initializeFromSource(sae, source, o);
    adam = new Adam(sae.params, adamOptions(o));
    tokensSinceFired = new Float64Array(cfg.d_sae);
    fireCounts = new Float64Array(cfg.d_sae);
  }
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    trimMetrics(outDir, startStep, !resumed);
  }

  const core = new TrainingCore(sae, adam, { schedule: sched, clipGradNorm: o.clipGradNorm, deadAfterTokens: o.deadAfterTokens, seed: o.seed }, tokensSinceFired);
  const B = o.batchSize;
  const x = new Float32Array(B * cfg.d_in);
  // Paired rows [x | target] are read whole, then split.
  const rows = paired ? new Float32Array(B * rowWidth(source)) : x;
  const target = paired ? new Float32Array(B * cfg.d_in) : undefined;
  const stale = new Uint8Array(cfg.d_sae);
  const bar = new ProgressBar(o.steps, `train ${cfg.architecture}`, options.progress !== false && process.stderr.isTTY === true);
  let last: MetricsRecord | null = null;
  let windowStart = performance.now();
  let windowTokens = 0;
  const stopAt = options.stopAfter !== undefined ? Math.min(o.steps, startStep + options.stopAfter) : o.steps;

  let step = startStep;
  for (; step < stopAt; step++) {
    source.next(rows, B);
    checkFinite(rows, `training batch at step ${step}`);
    if (target) splitPairs(rows, B, cfg.d_in, cfg.d_in, x, target);
    if (inputScale !== 1) {
      k.scale(x, inputScale);
      if (target) k.scale(target, inputScale);
    }
    let stepped: ReturnType<TrainingCore["step"]>;
    try {
      stepped = core.step(x, B, step, target);
    } catch (err) {
      const kept = outDir && hasCheckpoint(outDir) ? "; the last checkpoint is intact" : "";
      throw new Error(`${(err as Error).message} (--lr, --normalize expected_norm)${kept}`);
    }
    const { stats, lr } = stepped;
    // Windows end at the last step, so the saved sparsity always covers a whole window.
    if ((o.steps - step) % o.featureSamplingWindow === 0) {
      fireCounts.fill(0);
      sparsityTokens = 0;
    }
    countFirings(stats.code, fireCounts);
    sparsityTokens += B;
    tokens += B;
    windowTokens += B;
    accumulate(window, stats, target ?? x, B, cfg.d_in, core.dead);
    if (o.resampleEvery > 0) {
      let count = 0;
      if ((step + 1) % o.resampleEvery === 0) {
        // Dead here: silent for the last half of the resampling period.
        for (let j = 0; j < cfg.d_sae; j++) stale[j] = tokensSinceFired[j]! >= (o.resampleEvery / 2) * B ? 1 : 0;
        const resampled = resampleDeadLatents(sae, adam, x, B, stale, o.seed, step, target);
        for (const j of resampled) tokensSinceFired[j] = 0;
        count = resampled.length;
      }
      window.add("resampled", count);
    }

    if ((step + 1) % o.logEvery === 0 || step + 1 === o.steps) {
      const now = performance.now();
      last = record(window, step + 1, tokens, lr, (windowTokens / (now - windowStart)) * 1000);
      window.reset();
      windowStart = now;
      windowTokens = 0;
      if (outDir) appendFileSync(join(outDir, METRICS_FILE), JSON.stringify(last) + "\n");
      options.onLog?.(last);
    }
    const done = step + 1;
    if (outDir && (done === o.steps || (o.checkpointEvery > 0 && done % o.checkpointEvery === 0))) {
      saveCheckpoint(outDir, {
        meta: {
          format: "saekit-checkpoint-1", step: done, tokens, config: cfg, options: { ...o, outDir: undefined },
          sourceState: source.state(), inputScale, window: { ...window.sums }, sparsityTokens,
        },
        params: sae.params, buffers: sae.buffers, adamM: adam.m, adamV: adam.v, tokensSinceFired, fireCounts,
      });
    }
    bar.update(done, last ? `loss ${last.loss.toPrecision(4)} L0 ${last.l0.toFixed(1)}` : "");
  }
  bar.finish(last ? `loss ${last.loss.toPrecision(4)}` : "");
  const sparsity = logFeatureSparsity(fireCounts, sparsityTokens);
  if (outDir && step === o.steps) {
    saveSae(outDir, sae, {
      inputScale,
      logFeatureSparsity: sparsity,
      metadata: options.metadata,
      info: { training: { steps: o.steps, tokens, batch_size: B, lr: o.lr, seed: o.seed, data: source.describe() } },
    });
  }
  return { sae, steps: step, tokens, inputScale, last, tokensSinceFired, logFeatureSparsity: sparsity };
}

/** Adds one to each latent's count for every token it fires on (f != 0) in a code. */
function countFirings(code: SparseCode, counts: Float64Array): void {
  const n = nnz(code);
  for (let e = 0; e < n; e++) if (code.val[e] !== 0) counts[code.idx[e]!]! += 1;
}

function adamOptions(o: Resolved) {
  return { beta1: o.beta1, beta2: o.beta2, eps: o.adamEps, weightDecay: o.weightDecay };
}


/** Adds one step's statistics to the metrics window. */
function accumulate(w: MetricsWindow, stats: StepStats, y: Float32Array, B: number, d: number, dead: Uint8Array): void {
  w.add("steps", 1);
  for (const [key, v] of Object.entries(stepMetrics(stats, y, B, d, dead))) w.add(key, v);
}

function record(w: MetricsWindow, step: number, tokens: number, lr: number, tokensPerS: number): MetricsRecord {
  const n = w.sums.steps ?? 1;
  const avg: Record<string, number> = {};
  // Counts of events (latents resampled) are totals over the window, the rest means.
  for (const [key, v] of Object.entries(w.sums)) if (key !== "steps") avg[key] = key === "resampled" ? v : v / n;
  return {
    step, tokens, lr, tokens_per_s: Math.round(tokensPerS),
    loss: avg.loss ?? NaN, mse: avg.mse ?? NaN, fvu: avg.fvu ?? NaN, l0: avg.l0 ?? NaN, dead_frac: avg.dead_frac ?? NaN,
    ...avg,
  } as MetricsRecord;
}

/**
 * Keeps metrics.jsonl consistent with the state being resumed: lines past the checkpoint
 * step were written by the part of the run that is being redone. A fresh run starts it empty.
 */
function trimMetrics(dir: string, step: number, fresh: boolean): void {
  const path = join(dir, METRICS_FILE);
  if (fresh) {
    writeFileAtomic(path, "");
    return;
  }
  if (!existsSync(path)) return;
  const kept = readFileSync(path, "utf8").split("\n").filter((line) => {
    if (!line.trim()) return false;
    try {
      return (JSON.parse(line) as MetricsRecord).step <= step;
    } catch {
      return false;
    }
  });
  writeFileAtomic(path, kept.map((l) => l + "\n").join(""));
}
