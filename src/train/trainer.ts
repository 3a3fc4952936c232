/**
 * The SAE trainer: one loop for every architecture.
 *
 * Each step reads a batch, runs the SAE's forward and hand-written backward, optionally
 * keeps decoder rows at unit norm (removing the gradient's parallel part before the step,
 * renormalising after), clips the global gradient norm, and applies the optimizer (Adam
 * with a linear warm-up / linear decay schedule, sparsify's Schedule-Free SignSGD at a
 * constant rate, or sparsify's Muon decaying linearly from the start). It tracks, per latent, the tokens since the latent last
 * fired (f != 0), which drives AuxK and the dead fraction, and how often it fires over the
 * last featureSamplingWindow steps, saved as SAELens' sparsity.safetensors; optionally it
 * resamples dead latents every resampleEvery steps (resample.ts). A source that pairs each
 * row with a target (ActivationSource.dTarget) trains a transcoder: the SAE reconstructs
 * the target from the row, and the metrics (FVU) are measured against the targets.
 * trainSaes trains several SAEs on one stream, each on its own columns of every batch.
 *
 * Runs are deterministic given the seed: every random choice comes from seeded streams
 * and every native reduction has a fixed order, independent of the thread count. A
 * checkpoint holds all state (weights, optimizer state, counters, data position), so a run
 * killed at any point and resumed ends bit-identical to an uninterrupted one.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { MATMUL_PRECISIONS, type MatmulPrecision, kernels, matmulPrecision, withMatmulPrecision } from "../core/kernels.js";
import { type ActivationSource, checkFinite, columns, passesOver, peekWholeRows, rowWidth } from "../data/source.js";
import { type SaeConfig, type SaeConfigInput, defaultConfig } from "../sae/config.js";
import { createSae } from "../sae/registry.js";
import { type SaeMetadata, saveSae } from "../sae/saelens.js";
import type { Sae, StepStats } from "../sae/sae.js";
import { CFG_FILE, EXTRAS_FILE, SCALER_FILE, SPARSITY_FILE, WEIGHTS_FILE, logFeatureSparsity, withInputScaleFolded } from "../sae/saelens-format.js";
import { ProgressBar } from "../util/progress.js";
import { ADAM_DEFAULTS } from "./adam.js";
import { CHECKPOINT_FILE, type Checkpoint, hasCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { type BDecInit, defaultDecoderInitNorm, initSampleRows, initializeFromSample, startFromSae } from "./init.js";
import { OPTIMIZERS, type Optimizer, type OptimizerKind, createOptimizer, defaultLrFor, defaultScheduleFor, defaultWeightDecayFor, withFinalWeights } from "./optimizer.js";
import { resampleDeadLatents } from "./resample.js";
import { type Downstream, TrainingCore, checkTrainingSettings, stepMetrics } from "./core.js";
import { type LrSchedule, type LrScheduleKind, validateSchedule } from "./schedule.js";
import { claimFolders } from "../util/folder-lock.js";

export const METRICS_FILE = "metrics.jsonl";


export interface TrainOptions {
  steps: number;
  batchSize: number;
  /**
   * "adam" (default; SAELens, dictionary_learning), "signum": Schedule-Free SignSGD,
   * sparsify's default (schedule-free.ts), whose run ends with the average of its iterates,
   * or "muon": sparsify's Muon (muon.ts).
   */
  optimizer?: OptimizerKind;
  /** Peak learning rate. Default: 4e-4 for Adam; sparsify's for signum, 5e-3 / sqrt(d_sae / 2^14), and Muon, 2e-3. */
  lr?: number;
  /** Default: min(1000, 5% of steps) for Adam; none for signum and Muon. */
  lrWarmupSteps?: number;
  /** Step where linear decay to 0 begins. Default: 80% of steps (constant), none after a cosine or for signum, 0 for Muon. */
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
  /**
   * What the run's matrix products compute in (kernels.ts): "medium" rounds their inputs to
   * bfloat16, as PyTorch's bf16 autocast does, for about twice the encoder's speed on CPUs
   * with AVX-512 BF16; weights, gradients and Adam stay float32. Default: the precision in
   * effect when the run starts (setMatmulPrecision, SAEKIT_MATMUL_PRECISION); a resumed run
   * keeps its own.
   */
  matmulPrecision?: MatmulPrecision;
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
   * TopK and AbsTopK: start at k = min(d_sae, 10 d_in) and decay linearly to the config's k
   * over this many steps, as sparsify's k_decay_steps (0, the default: k throughout).
   */
  kDecaySteps?: number;
  /**
   * Steps over which each latent's firing frequency is counted for sparsity.safetensors
   * (SAELens' feature_sampling_window, 2000): the final window, or the whole run if shorter.
   */
  featureSamplingWindow?: number;
  logEvery?: number;
  /**
   * Every this many steps (and at the last), `evaluate` is called with the SAE as it would
   * be saved and what it returns joins that step's metrics record — SAELens' periodic CE
   * loss score, say (0: never). Training itself is untouched: a resumed run still ends
   * bit-identical.
   */
  evalEvery?: number;
  evaluate?: (sae: Sae) => Record<string, number>;
  /** Steps between checkpoints (0: only at the end). */
  checkpointEvery?: number;
  /**
   * sparsify's save_best: at every checkpoint (and the last step) whose step's training
   * loss is the lowest a checkpoint has seen, the SAE is also saved, in SAELens format, to
   * outDir/best (cfg.json records the step). The loss is the objective as it stands at that
   * step, so a warm-up (L1, KL, a k decay) that raises it favours checkpoints before it ends.
   */
  saveBest?: boolean;
  /**
   * Steps after which the SAE is also saved, in SAELens format, to
   * outDir/checkpoints/<tokens trained by then> (as SAELens names its n_checkpoints; see
   * evenSaveSteps), so that a run leaves the SAE at points of its training to evaluate or
   * compare, as SAELens' n_checkpoints and dictionary_learning's save_steps do. Default: none.
   */
  saveSteps?: number[];
  /** Run folder: metrics.jsonl, checkpoint.safetensors, and the SAELens-format SAE. */
  outDir?: string;
  /** Continue from outDir's checkpoint when there is one. */
  resume?: boolean;
  /**
   * Start afresh in an outDir that holds another run (its checkpoint, metrics, saved SAE,
   * best/ and checkpoints/ are removed first). Without it (or resume) such a folder is
   * refused: a new run never silently replaces a trained SAE.
   */
  overwrite?: boolean;
  /** Recorded in cfg.json (model_name, hook_name, context_size, ...). */
  metadata?: SaeMetadata;
  /** Draw a progress bar on a TTY (default true). */
  progress?: boolean;
  /** Called with every metrics record. */
  onLog?: (m: MetricsRecord) => void;
  /**
   * Called with what a user should know before the run starts (the CLI prints it to
   * stderr): how many passes over its data a run makes when the data is a fixed set of rows
   * it will read more than once, and with `resume`, the settings given that differ from the
   * run's own, which it keeps.
   */
  onNotice?: (message: string) => void;
  /** Stop after this many steps of this invocation (for tests that simulate a crash). */
  stopAfter?: number;
  /**
   * Fine-tuning: start from this SAE's weights (and buffers) instead of a fresh
   * initialisation, as SAELens' from_pretrained_path does; the optimizer and the dead-latent
   * counters start fresh. It takes raw activations, as a saved SAE does (any input scale of
   * the new run is folded out of it), must match the config's architecture, d_in and d_sae,
   * and is left unchanged.
   */
  initialSae?: Sae;
  /**
   * End-to-end training (sparsify's loss_fn ce / kl): the model's loss with the SAE's
   * reconstruction spliced in trains it, through this (data/splice-source.ts, the same
   * object as the source, which knows the batch's tokens). Not saved with checkpoints: a
   * resumed run is given it again.
   */
  downstream?: Downstream;
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
type Resolved = Required<Omit<TrainOptions, "outDir" | "metadata" | "onLog" | "onNotice" | "stopAfter" | "progress" | "resume" | "overwrite" | "evaluate" | "initialSae" | "downstream">> & {
  outDir?: string;
  /** End-to-end training's loss settings (Downstream.settings), null for the reconstruction loss. */
  endToEnd: Record<string, unknown> | null;
};

function resolve(cfg: SaeConfig, o: TrainOptions): Resolved {
  const optimizer = o.optimizer ?? "adam";
  if (!(OPTIMIZERS as readonly string[]).includes(optimizer)) throw new RangeError(`unknown optimizer ${JSON.stringify(optimizer)} (known: ${OPTIMIZERS.join(", ")})`);
  const lr = o.lr ?? defaultLrFor(optimizer, cfg.d_sae);
  const sched = defaultScheduleFor(optimizer, lr, o.steps, o.lrSchedule);
  const r: Resolved = {
    steps: o.steps,
    batchSize: o.batchSize,
    optimizer,
    lr,
    lrWarmupSteps: o.lrWarmupSteps ?? sched.warmupSteps,
    lrDecayStart: o.lrDecayStart ?? sched.decayStart,
    lrSchedule: sched.kind!,
    lrEnd: o.lrEnd ?? lr / 10,
    lrCycles: o.lrCycles ?? 1,
    beta1: o.beta1 ?? ADAM_DEFAULTS.beta1,
    beta2: o.beta2 ?? ADAM_DEFAULTS.beta2,
    adamEps: o.adamEps ?? ADAM_DEFAULTS.eps,
    weightDecay: o.weightDecay ?? defaultWeightDecayFor(optimizer),
    clipGradNorm: o.clipGradNorm ?? 1,
    matmulPrecision: o.matmulPrecision ?? matmulPrecision(),
    seed: o.seed ?? 0,
    bDecInit: o.bDecInit ?? "mean",
    decoderInitNorm: o.decoderInitNorm ?? defaultDecoderInitNorm(cfg),
    normalizeActivations: o.normalizeActivations ?? "none",
    deadAfterTokens: o.deadAfterTokens ?? 10_000_000,
    resampleEvery: o.resampleEvery ?? 0,
    kDecaySteps: o.kDecaySteps ?? 0,
    endToEnd: o.downstream?.settings ?? null,
    featureSamplingWindow: o.featureSamplingWindow ?? 2000,
    logEvery: o.logEvery ?? 100,
    evalEvery: o.evalEvery ?? 0,
    checkpointEvery: o.checkpointEvery ?? 1000,
    saveBest: o.saveBest ?? false,
    saveSteps: [...new Set(o.saveSteps ?? [])].sort((a, b) => a - b),
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
  for (const step of r.saveSteps) {
    if (!Number.isSafeInteger(step) || step < 1 || step > r.steps) throw new RangeError(`training option saveSteps: ${step} is not a step of the run (1 to ${r.steps})`);
  }
  if (!MATMUL_PRECISIONS.includes(r.matmulPrecision)) {
    throw new RangeError(`training option matmulPrecision must be one of ${MATMUL_PRECISIONS.join(", ")}, got ${JSON.stringify(r.matmulPrecision)}`);
  }
  for (const name of ["resampleEvery", "evalEvery", "kDecaySteps"] as const) {
    if (!Number.isSafeInteger(r[name]) || r[name] < 0) throw new RangeError(`training option ${name} must be a non-negative integer, got ${r[name]}`);
  }
  if (r.resampleEvery > 0 && (cfg.architecture === "vaease" || cfg.architecture === "mp")) {
    throw new RangeError(`resampling needs a linear encoder; a ${cfg.architecture} SAE has none`);
  }
  if (r.kDecaySteps > 0 && !((cfg.architecture === "topk" && cfg.activation === "topk") || cfg.architecture === "abstopk")) {
    throw new RangeError(`a k decay is for TopK and AbsTopK SAEs (sparsify's k_decay_steps), not ${cfg.architecture}${cfg.architecture === "topk" ? " with groupmax" : ""}`);
  }
  return r;
}

/**
 * "key given (the run's: kept)" for each setting of `given` that `kept` holds differently
 * (where the run is: its folder, not a setting, is left out).
 */
function settingsChanged<T extends object>(given: T, kept: T): string[] {
  const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  return Object.entries(given).flatMap(([key, value]) => {
    const theirs = (kept as Record<string, unknown>)[key];
    if (key === "outDir" || key === "metadata" || JSON.stringify(value) === JSON.stringify(theirs)) return [];
    return [`${key} ${show(value)} (the run's: ${show(theirs)})`];
  });
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
  return trainSaes([{ cfg, options }], source)[0]!;
}

/** Where a run's inputs (and a transcoder's targets) sit in the rows a source serves. */
export interface RowPart {
  offset: number;
  /** A transcoder's targets, as wide as the inputs. */
  targetOffset?: number;
}

export interface RunSpec {
  cfg: SaeConfig;
  /** Every run of one call reads the same batches: steps and batchSize must agree. */
  options: TrainOptions;
  /** Default: the source's own input (and target) columns. */
  part?: RowPart;
}

/**
 * Trains several SAEs on one stream, each step's batch read once: SAEs of several hooks
 * whose activations a source serves side by side (a model's forward pass computes them all
 * at once, as sparsify trains every layer), or a sweep of settings over the same data. Each
 * run keeps its own folder, metrics and checkpoints; they are written together, so
 * resuming needs all of them at the same step.
 */
export function trainSaes(specs: RunSpec[], source: ActivationSource): TrainResult[] {
  const steps = trainingSteps(specs, source, () => false);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** What trainSaesUntil throws when stopped: the runs have checkpointed `step` in their folders. */
export class TrainingInterrupted extends Error {
  constructor(readonly step: number, readonly steps: number) {
    super(`training stopped at step ${step} of ${steps}`);
  }
}

/**
 * trainSaes, turning the event loop over every ~100 ms so that `signal` can stop it (the
 * CLI aborts it on Ctrl-C): each run then checkpoints the steps done, in its folder, and
 * TrainingInterrupted is thrown; resuming continues bit-identically.
 */
export async function trainSaesUntil(specs: RunSpec[], source: ActivationSource, signal: AbortSignal): Promise<TrainResult[]> {
  const steps = trainingSteps(specs, source, () => signal.aborted);
  let turned = performance.now();
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    if (performance.now() - turned > 100) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turned = performance.now();
    }
  }
}

/** The training, one step per `next()`; `stop` is asked after each. */
function* trainingSteps(specs: RunSpec[], source: ActivationSource, stop: () => boolean): Generator<void, TrainResult[]> {
  if (specs.length === 0) throw new RangeError("no SAEs to train");
  const outDirs = specs.map((s) => s.options.outDir).filter((d): d is string => d !== undefined);
  if (new Set(outDirs).size !== outDirs.length) throw new RangeError("each SAE needs its own run folder");
  // One process writes a run folder at a time: a second run there would interleave checkpoints.
  const release = claimFolders(outDirs, "training");
  try {
    return yield* runSteps(specs, source, stop);
  } finally {
    release();
  }
}

function* runSteps(specs: RunSpec[], source: ActivationSource, stop: () => boolean): Generator<void, TrainResult[]> {
  const stride = rowWidth(source);
  const runs = specs.map((spec) => {
    if (!spec.part && source.d !== spec.cfg.d_in) throw new RangeError(`the data has width ${source.d}, the SAE expects d_in = ${spec.cfg.d_in}`);
    if (!spec.part && source.dTarget !== undefined && source.dTarget !== spec.cfg.d_in) {
      throw new RangeError(`the targets have width ${source.dTarget}; saekit's transcoders predict targets as wide as their input (${spec.cfg.d_in})`);
    }
    const part = spec.part ?? { offset: 0, ...(source.dTarget !== undefined ? { targetOffset: source.d } : {}) };
    return new TrainingRun(spec.cfg, spec.options, part, stride);
  });
  const { steps, batchSize: B } = runs[0]!.o;
  for (const run of runs) {
    if (run.o.steps !== steps || run.o.batchSize !== B) throw new RangeError("SAEs trained on one stream take the same steps and batch size");
  }
  const passes = passesOver(source, steps * B);
  if (passes !== null) {
    const n = (v: number) => v.toLocaleString("en-US");
    specs[0]!.options.onNotice?.(`${steps} steps x ${B} rows = ${n(steps * B)} rows from ${n(source.totalRows!)}: ` +
      `${passes.toFixed(1)} passes over the data (each reshuffled)`);
  }
  // All runs resume together from one data position, or all start fresh.
  const resumed = runs.filter((r) => r.resumed);
  if (resumed.length > 0) {
    const at = resumed.map((r) => `${r.o.outDir} at step ${r.startStep}`);
    if (resumed.length !== runs.length || new Set(resumed.map((r) => r.startStep)).size > 1) {
      throw new Error(`runs trained together resume together: ${at.join(", ")}${resumed.length !== runs.length ? ", the others without a checkpoint" : ""}`);
    }
    source.restore(resumed[0]!.sourceState);
  } else {
    const sample = peekWholeRows(source, initSampleRows(B));
    for (const run of runs) run.initialize(sample);
  }
  for (const run of runs) run.open();

  const rows = new Float32Array(B * stride);
  const label = runs.length === 1 ? `train ${runs[0]!.cfg.architecture}` : `train ${runs.length} SAEs`;
  const bar = new ProgressBar(steps, label, specs[0]!.options.progress !== false && process.stderr.isTTY === true);
  const startStep = runs[0]!.startStep;
  const stopAfter = specs[0]!.options.stopAfter;
  const stopAt = stopAfter !== undefined ? Math.min(steps, startStep + stopAfter) : steps;
  let step = startStep;
  for (; step < stopAt; step++) {
    source.next(rows, B);
    checkFinite(rows, `training batch at step ${step}`);
    for (const run of runs) run.step(rows, step, source);
    const last = runs[0]!.last;
    bar.update(step + 1, last && runs.length === 1 ? `loss ${last.loss.toPrecision(4)} L0 ${last.l0.toFixed(1)}` : "");
    yield;
    if (stop() && step + 1 < steps) {
      for (const run of runs) run.checkpoint(step + 1, source);
      bar.finish(`stopped at step ${step + 1}`);
      throw new TrainingInterrupted(step + 1, steps);
    }
  }
  const last = runs[0]!.last;
  bar.finish(last && runs.length === 1 ? `loss ${last.loss.toPrecision(4)}` : "");
  return runs.map((run) => run.finish(step, source));
}

/** One SAE being trained on a stream: its state, what a step does to it, and its files. */
class TrainingRun {
  o: Resolved;
  sae!: Sae;
  private optimizer!: Optimizer;
  private core!: TrainingCore;
  resumed: Checkpoint | null = null;
  startStep = 0;
  private tokens = 0;
  private inputScale = 1;
  private tokensSinceFired!: Float64Array;
  private fireCounts!: Float64Array;
  private sparsityTokens = 0;
  private readonly window = new MetricsWindow();
  last: MetricsRecord | null = null;
  private windowStart = 0;
  private windowTokens = 0;
  /** The last step's training loss, and the lowest of it at a checkpoint (saveBest). */
  private lastLoss = Number.NaN;
  private bestLoss = Infinity;
  private readonly x: Float32Array;
  private readonly target: Float32Array | undefined;
  private readonly stale: Uint8Array;

  constructor(public cfg: SaeConfig, private readonly options: TrainOptions, private readonly part: RowPart,
    private readonly stride: number) {
    // A part with a target makes this a transcoder: it predicts each row's target from the row.
    const paired = part.targetOffset !== undefined;
    const fits = (offset: number) => offset >= 0 && offset + cfg.d_in <= stride;
    if (!fits(part.offset) || (paired && !fits(part.targetOffset!))) {
      throw new RangeError(`the data has rows of width ${stride}; the SAE's d_in = ${cfg.d_in} does not fit there`);
    }
    if (paired && cfg.apply_b_dec_to_input) {
      throw new RangeError("a transcoder's input is not in its output space: set apply_b_dec_to_input to false (--no-b-dec-on-input)");
    }
    checkTrainingSettings(cfg, paired);
    this.o = resolve(cfg, options);
    if (options.downstream && (paired || this.o.normalizeActivations !== "none")) {
      throw new RangeError(`end-to-end training splices the SAE's output into the model as it is: ${paired ? "a transcoder's target is the model's own" : "train it without --normalize"}`);
    }
    const outDir = options.outDir;
    if (options.resume && outDir && hasCheckpoint(outDir)) {
      const resumed = loadCheckpoint(outDir);
      const c = resumed.meta.config;
      if (c.architecture !== cfg.architecture || c.d_in !== cfg.d_in || c.d_sae !== cfg.d_sae) {
        throw new Error(`${outDir}: the checkpoint is a ${c.architecture} SAE ${c.d_in}x${c.d_sae}, not the requested ${cfg.architecture} ${cfg.d_in}x${cfg.d_sae}; use another --out or drop --resume`);
      }
      // The run continues with the settings it started with (options added since take their
      // defaults); what was asked for differently is said, not silently dropped.
      const given = this.o;
      this.cfg = defaultConfig(c as unknown as SaeConfigInput);
      // Checkpoints from before the optimizer could be chosen were all Adam's.
      this.o = { ...resolve(c, options), ...({ optimizer: "adam", endToEnd: null, ...resumed.meta.options } as Resolved), outDir };
      // The loss a run trains on is what it is: a run of the reconstruction loss resumed end to end, or the reverse, would be neither.
      if (JSON.stringify(this.o.endToEnd) !== JSON.stringify(given.endToEnd)) {
        const show = (e: Record<string, unknown> | null) => (e ? `end to end (${JSON.stringify(e)})` : "on the reconstruction loss");
        throw new Error(`${outDir}: the run was trained ${show(this.o.endToEnd)}; it cannot resume ${show(given.endToEnd)}. Train into another folder`);
      }
      const ignored = [...settingsChanged(cfg, this.cfg), ...settingsChanged(given, this.o)];
      if (ignored.length > 0) {
        options.onNotice?.(`${outDir}: resuming continues the run with the settings it started with; these of the ` +
          `ones given now (or defaulted) differ and do not apply: ${ignored.join(", ")}. Train into another folder to change them`);
      }
      this.resumed = resumed;
      this.startStep = resumed.meta.step;
    } else if (outDir && !options.overwrite) {
      // A fresh run here would replace what another left, so it is refused; but what a run
      // killed before its first checkpoint left (metrics, snapshots, best/ written just before
      // it) is only its own start again, which resuming it redoes.
      const held = runFiles(outDir);
      const refused = options.resume ? held.filter((f) => f !== METRICS_FILE && f !== SNAPSHOTS_DIR && f !== BEST_DIR) : held;
      if (refused.length > 0) {
        throw new Error(`${outDir}: holds ${refused.includes(WEIGHTS_FILE) ? "a trained SAE" : "a run"} already (${held.join(", ")}); ` +
          `${held.includes(CHECKPOINT_FILE) ? "resume it (--resume), " : ""}replace it (--overwrite) or train into another folder`);
      }
    }
    const B = this.o.batchSize;
    this.x = new Float32Array(B * cfg.d_in);
    this.target = paired ? new Float32Array(B * cfg.d_in) : undefined;
    this.stale = new Uint8Array(cfg.d_sae);
  }

  /** The data position its checkpoint was taken at. */
  get sourceState(): unknown {
    return this.resumed!.meta.sourceState;
  }

  /** A fresh SAE initialised from a sample of the stream's rows (or the SAE to fine-tune). */
  initialize(sample: Float32Array): void {
    withMatmulPrecision(this.o.matmulPrecision, () => this.initializeFrom(sample));
  }

  private initializeFrom(sample: Float32Array): void {
    const n = sample.length / this.stride;
    const d = this.cfg.d_in;
    const x = columns(sample, n, this.stride, this.part.offset, d);
    const start = this.options.initialSae;
    if (start) {
      ({ sae: this.sae, inputScale: this.inputScale } = startFromSae(start, this.cfg, x, this.o.normalizeActivations));
      this.cfg = this.sae.cfg;
    } else {
      this.sae = createSae(this.cfg);
      const target = this.part.targetOffset !== undefined ? columns(sample, n, this.stride, this.part.targetOffset, d) : null;
      this.inputScale = initializeFromSample(this.sae, { x, target }, this.o);
    }
    this.optimizer = createOptimizer(this.o.optimizer, this.sae.params, optimizerOptions(this.o));
    this.tokensSinceFired = new Float64Array(this.cfg.d_sae);
    this.fireCounts = new Float64Array(this.cfg.d_sae);
  }

  /** Restores a resumed run's state, prepares its folder and the optimization step. */
  open(): void {
    const r = this.resumed;
    if (r) {
      this.sae = createSae(this.cfg, r.params, r.buffers);
      this.optimizer = createOptimizer(this.o.optimizer, this.sae.params, optimizerOptions(this.o), r.optimizer);
      this.tokens = r.meta.tokens;
      this.inputScale = r.meta.inputScale;
      this.tokensSinceFired = r.tokensSinceFired;
      this.fireCounts = r.fireCounts;
      this.sparsityTokens = r.meta.sparsityTokens ?? 0;
      this.window.sums = { ...r.meta.window };
      this.bestLoss = r.meta.bestLoss ?? Infinity;
    }
    const outDir = this.o.outDir;
    if (outDir) {
      // A fresh run in a folder that held another (overwrite) starts with none of its files.
      if (!r) for (const name of runFiles(outDir)) rmSync(join(outDir, name), { recursive: true, force: true });
      mkdirSync(outDir, { recursive: true });
      trimMetrics(outDir, this.startStep, !r);
    }
    const o = this.o;
    this.core = new TrainingCore(this.sae, this.optimizer, {
      schedule: scheduleOf(o), clipGradNorm: o.clipGradNorm, deadAfterTokens: o.deadAfterTokens, seed: o.seed,
      ...(o.kDecaySteps > 0 ? { kDecay: { from: Math.min(this.cfg.d_sae, Math.round(10 * this.cfg.d_in)), steps: o.kDecaySteps } } : {}),
      ...(this.options.downstream ? { downstream: this.options.downstream } : {}),
    }, this.tokensSinceFired);
    this.windowStart = performance.now();
  }

  /** One optimization step on this run's columns of the batch, at the run's matmul precision. */
  step(rows: Float32Array, step: number, source: ActivationSource): void {
    withMatmulPrecision(this.o.matmulPrecision, () => this.stepAt(rows, step, source));
  }

  private stepAt(rows: Float32Array, step: number, source: ActivationSource): void {
    const { o, cfg, x, target } = this;
    const B = o.batchSize;
    const d = cfg.d_in;
    columns(rows, B, this.stride, this.part.offset, d, x);
    if (target) columns(rows, B, this.stride, this.part.targetOffset!, d, target);
    if (this.inputScale !== 1) {
      kernels().scale(x, this.inputScale);
      if (target) kernels().scale(target, this.inputScale);
    }
    // Windows end at the last step, so the saved sparsity always covers a whole window.
    if ((o.steps - step) % o.featureSamplingWindow === 0) {
      this.fireCounts.fill(0);
      this.sparsityTokens = 0;
    }
    let stepped: ReturnType<TrainingCore["step"]>;
    try {
      stepped = this.core.step(x, B, step, target, this.fireCounts);
    } catch (err) {
      const kept = o.outDir && hasCheckpoint(o.outDir) ? "; the last checkpoint is intact" : "";
      throw new Error(`${(err as Error).message} (--lr, --normalize expected_norm)${kept}`);
    }
    const { stats, lr, k, l0 } = stepped;
    this.lastLoss = stats.loss;
    this.sparsityTokens += B;
    this.tokens += B;
    this.windowTokens += B;
    accumulate(this.window, stats, target ?? x, B, d, this.core.dead, l0);
    if (k !== undefined) this.window.add("k", k);
    if (o.resampleEvery > 0) {
      let count = 0;
      if ((step + 1) % o.resampleEvery === 0) {
        // Dead here: silent for the last half of the resampling period.
        for (let j = 0; j < cfg.d_sae; j++) this.stale[j] = this.tokensSinceFired[j]! >= (o.resampleEvery / 2) * B ? 1 : 0;
        const resampled = resampleDeadLatents(this.sae, this.optimizer, x, B, this.stale, o.seed, step, target);
        for (const j of resampled) this.tokensSinceFired[j] = 0;
        count = resampled.length;
      }
      this.window.add("resampled", count);
    }

    const done = step + 1;
    const evaluate = this.options.evaluate;
    const evalNow = o.evalEvery > 0 && evaluate !== undefined && (done % o.evalEvery === 0 || done === o.steps);
    if (done % o.logEvery === 0 || done === o.steps || evalNow) {
      const now = performance.now();
      this.last = record(this.window, done, this.tokens, lr, (this.windowTokens / (now - this.windowStart)) * 1000);
      if (evalNow) Object.assign(this.last, evaluate(this.asSaved()));
      this.window.reset();
      this.windowStart = performance.now(); // the next window's tokens/s leaves the evaluation out
      this.windowTokens = 0;
      if (o.outDir) appendFileSync(join(o.outDir, METRICS_FILE), JSON.stringify(this.last) + "\n");
      this.options.onLog?.(this.last);
    }
    // Before the checkpoint: a run killed between the two redoes this step and rewrites the same files.
    if (o.outDir && o.saveSteps.includes(done)) {
      this.save(join(o.outDir, SNAPSHOTS_DIR, String(this.tokens)), withFinalWeights(this.sae, this.optimizer), source, { step: done });
    }
    if (done === o.steps || (o.checkpointEvery > 0 && done % o.checkpointEvery === 0)) this.checkpoint(done, source);
  }

  /**
   * Writes the checkpoint of `done` steps (when the run has a folder): everything a resumed
   * run needs to go on as if it never stopped, the metrics window half-filled included.
   */
  checkpoint(done: number, source: ActivationSource): void {
    const { o, cfg } = this;
    if (!o.outDir) return;
    // best/ first: a run killed between the two resumes from the previous checkpoint, whose
    // higher bestLoss lets a later checkpoint replace best/ again.
    if (o.saveBest && this.lastLoss < this.bestLoss) {
      this.bestLoss = this.lastLoss;
      const sae = withFinalWeights(this.sae, this.optimizer);
      this.save(join(o.outDir, BEST_DIR), sae, source, { best_step: done, best_loss: this.bestLoss });
    }
    saveCheckpoint(o.outDir, {
      meta: {
        format: "saekit-checkpoint-1", step: done, tokens: this.tokens, config: cfg, options: { ...o, outDir: undefined },
        sourceState: source.state(), inputScale: this.inputScale, window: { ...this.window.sums }, sparsityTokens: this.sparsityTokens,
        ...(Number.isFinite(this.bestLoss) ? { bestLoss: this.bestLoss } : {}),
      },
      params: this.sae.params, buffers: this.sae.buffers, optimizer: this.optimizer.state(),
      tokensSinceFired: this.tokensSinceFired, fireCounts: this.fireCounts,
    });
  }

  /**
   * The SAE as saving would write it: the optimizer's final weights (Schedule-Free's average,
   * copied: training goes on from its own point), the input scale folded into them.
   */
  private asSaved(): Sae {
    return withInputScaleFolded(withFinalWeights(this.sae, this.optimizer), this.inputScale);
  }

  /**
   * Writes `sae` (this run's, or its final weights) in SAELens format to `dir`: the input
   * scale folded in, the feature sparsity of the window so far, and the run's settings.
   */
  private save(dir: string, sae: Sae, source: ActivationSource, extra: Record<string, number> = {}): void {
    const o = this.o;
    mkdirSync(dir, { recursive: true });
    saveSae(dir, sae, {
      inputScale: this.inputScale,
      logFeatureSparsity: logFeatureSparsity(this.fireCounts, this.sparsityTokens),
      metadata: this.options.metadata,
      info: {
        training: {
          steps: o.steps, tokens: this.tokens, batch_size: o.batchSize, optimizer: o.optimizer, lr: o.lr, weight_decay: o.weightDecay, seed: o.seed, matmul_precision: o.matmulPrecision,
          data: source.describe(), ...extra,
        },
      },
    });
  }

  /** Saves the SAE when the run is complete; the result either way. */
  finish(step: number, source: ActivationSource): TrainResult {
    const { o } = this;
    // The run ends with the optimizer's final weights (a Schedule-Free run's average; the
    // checkpoint keeps the point it trained at, for a run continued from it).
    const weights = this.optimizer.finalWeights(this.sae.params);
    if (weights !== this.sae.params) for (const [name, p] of this.sae.params) p.data.set(weights.get(name)!.data);
    const sparsity = logFeatureSparsity(this.fireCounts, this.sparsityTokens);
    if (o.outDir && step === o.steps) this.save(o.outDir, this.sae, source);
    return {
      sae: this.sae, steps: step, tokens: this.tokens, inputScale: this.inputScale, last: this.last,
      tokensSinceFired: this.tokensSinceFired, logFeatureSparsity: sparsity,
    };
  }
}

/** What a run writes in its folder (beside its lock): what a fresh run there would replace. */
function runFiles(dir: string): string[] {
  const names = [METRICS_FILE, CHECKPOINT_FILE, CFG_FILE, WEIGHTS_FILE, EXTRAS_FILE, SPARSITY_FILE, SCALER_FILE, BEST_DIR, SNAPSHOTS_DIR];
  return names.filter((name) => existsSync(join(dir, name)));
}

/** Where saveBest keeps the best SAE, inside the run folder. */
export const BEST_DIR = "best";

/** Where saveSteps keeps the SAE at points of its training, inside the run folder, one folder per point named by its tokens. */
export const SNAPSHOTS_DIR = "checkpoints";

/**
 * The steps at which SAELens' n_checkpoints saves a run of `steps` batches of `batchSize`:
 * thresholds at every multiple of floor(total tokens / n) below the total, each taken by the
 * first step whose tokens pass it, one a step (n - 1 points when n divides the total; the
 * end of the run is the run's own save).
 */
export function evenSaveSteps(steps: number, batchSize: number, n: number): number[] {
  const total = steps * batchSize;
  const interval = Math.floor(total / n);
  if (!Number.isSafeInteger(n) || n < 1 || interval < 1) throw new RangeError(`n_checkpoints must be a positive integer no larger than the run's ${total} tokens, got ${n}`);
  const thresholds: number[] = [];
  for (let t = interval; t < total; t += interval) thresholds.push(t);
  const out: number[] = [];
  for (let done = 1, next = 0; done <= steps && next < thresholds.length; done++) {
    if (done * batchSize > thresholds[next]!) {
      out.push(done);
      next++;
    }
  }
  return out;
}

/**
 * n - 1 steps spaced evenly in log(step) between the first and the last, ceil(steps^(i / n))
 * for i = 1 .. n - 1 (repeats dropped), as lm-saes' "log" checkpoint mode spaces them: most
 * of them early, where an SAE changes fastest.
 */
export function logSaveSteps(steps: number, n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`n_checkpoints must be a positive integer, got ${n}`);
  const out = new Set<number>();
  // (less a hair, so that a power that is an integer, 10000^(1/4), is not rounded up past it)
  for (let i = 1; i < n; i++) out.add(Math.ceil(steps ** (i / n) - 1e-9));
  return [...out];
}

function optimizerOptions(o: Resolved) {
  return { beta1: o.beta1, beta2: o.beta2, eps: o.adamEps, weightDecay: o.weightDecay };
}


/** Adds one step's statistics to the metrics window. */
function accumulate(w: MetricsWindow, stats: StepStats, y: Float32Array, B: number, d: number, dead: Uint8Array, l0: number): void {
  w.add("steps", 1);
  for (const [key, v] of Object.entries(stepMetrics(stats, y, B, d, dead, l0))) w.add(key, v);
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
