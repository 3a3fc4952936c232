/**
 * Training on activations already in memory, a few steps at a time, with no file system:
 * what a web page runs between frames (the CLI's trainSae adds the files: metrics.jsonl,
 * checkpoints, the saved folder). The same initialisation, schedule and optimization step
 * (TrainingCore) as trainSae, with its defaults; batches come from a seeded shuffle of the
 * rows, epoch after epoch.
 */
import { kernels } from "../core/kernels.js";
import type { ActivationMatrix } from "../data/activation-matrix.js";
import { ArraySource } from "../data/array-source.js";
import { peekBatch } from "../data/source.js";
import type { SaeConfig } from "../sae/config.js";
import { createSae } from "../sae/registry.js";
import type { Sae } from "../sae/sae.js";
import { withInputScaleFolded } from "../sae/saelens-format.js";
import { TrainingCore, checkTrainingSettings, stepMetrics } from "./core.js";
import { type BDecInit, defaultDecoderInitNorm, initSampleRows, initializeFromSource, startFromSae } from "./init.js";
import { type Optimizer, type OptimizerKind, createOptimizer, defaultScheduleFor, withFinalWeights } from "./optimizer.js";
import type { LrScheduleKind } from "./schedule.js";

export interface InMemoryOptions {
  steps: number;
  batchSize: number;
  lr: number;
  /** "adam" (default), sparsify's "signum" (Schedule-Free SignSGD; result() is its average) or sparsify's "muon". */
  optimizer?: OptimizerKind;
  seed?: number;
  /** Default 1 (0: no clipping). */
  clipGradNorm?: number;
  /** Default 10M tokens. */
  deadAfterTokens?: number;
  /** "expected_norm": scale inputs so E||x||^2 = d_in (folded into result()'s weights). */
  normalizeActivations?: "none" | "expected_norm";
  bDecInit?: BDecInit;
  /** The main learning-rate schedule (default constant, with trainSae's warm-up and decay). */
  lrSchedule?: LrScheduleKind;
  /** Fine-tune this SAE (taking raw activations, as trainSae's initialSae) instead of a fresh one. */
  initialSae?: Sae;
}

/** One step's metrics (stepMetrics) with its index and learning rate. */
export type StepRecord = Record<string, number> & { step: number; lr: number };

export class InMemoryTraining {
  readonly sae: Sae;
  readonly inputScale: number;
  private readonly core: TrainingCore;
  private readonly optimizer: Optimizer;
  private readonly source: ArraySource;
  private readonly x: Float32Array;
  private next = 0;

  constructor(cfg: SaeConfig, private readonly acts: ActivationMatrix, private readonly o: InMemoryOptions) {
    if (acts.d !== cfg.d_in) throw new RangeError(`the activations have width ${acts.d}, the SAE expects d_in = ${cfg.d_in}`);
    checkTrainingSettings(cfg, false);
    const seed = o.seed ?? 0;
    this.source = new ArraySource(acts.data, acts.d, seed);
    const normalizeActivations = o.normalizeActivations ?? "none";
    if (o.initialSae) {
      ({ sae: this.sae, inputScale: this.inputScale } = startFromSae(o.initialSae, cfg,
        peekBatch(this.source, initSampleRows(o.batchSize)).x, normalizeActivations));
    } else {
      this.sae = createSae(cfg);
      this.inputScale = initializeFromSource(this.sae, this.source, {
        batchSize: o.batchSize, seed, normalizeActivations, decoderInitNorm: defaultDecoderInitNorm(cfg), bDecInit: o.bDecInit ?? "mean",
      });
    }
    const kind = o.optimizer ?? "adam";
    this.optimizer = createOptimizer(kind, this.sae.params);
    this.core = new TrainingCore(this.sae, this.optimizer, {
      schedule: defaultScheduleFor(kind, o.lr, o.steps, o.lrSchedule), clipGradNorm: o.clipGradNorm ?? 1,
      deadAfterTokens: o.deadAfterTokens ?? 10_000_000, seed,
    });
    this.x = new Float32Array(o.batchSize * acts.d);
  }

  /** Steps taken so far. */
  get step(): number {
    return this.next;
  }

  get done(): boolean {
    return this.next >= this.o.steps;
  }

  /** Takes up to `n` more steps (never past `steps`) and returns their metrics. */
  run(n: number): StepRecord[] {
    const out: StepRecord[] = [];
    const { batchSize: B } = this.o;
    const d = this.acts.d;
    for (let i = 0; i < n && !this.done; i++) {
      this.source.next(this.x, B);
      if (this.inputScale !== 1) kernels().scale(this.x, this.inputScale);
      const { stats, lr, l0 } = this.core.step(this.x, B, this.next);
      out.push({ ...stepMetrics(stats, this.x, B, d, this.core.dead, l0), step: this.next + 1, lr });
      this.next++;
    }
    return out;
  }

  /**
   * The SAE as trained, taking unscaled inputs (the input scale folded into its weights):
   * with signum, the running average of its iterates (a copy; training can go on).
   */
  result(): Sae {
    return withInputScaleFolded(withFinalWeights(this.sae, this.optimizer), this.inputScale);
  }
}
