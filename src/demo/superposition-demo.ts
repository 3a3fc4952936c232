/**
 * `saekit demo`: TopK, AbsTopK, vSAE (KL over all latents, and over the selected ones) and
 * VAEase trained on the same toy superposition data, scored against the ground truth, in
 * about two minutes on two cores, with no download. Each run is written in SAELens format.
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../core/atomic.js";
import { Rng } from "../core/rng.js";
import { ReconstructionMetrics, SparsityMetrics } from "../eval/metrics.js";
import type { SaeConfigInput } from "../sae/config.js";
import { defaultConfig } from "../sae/config.js";
import { VaeaseSae, activeDims } from "../sae/vaease.js";
import { type SuperpositionOptions, SuperpositionSource, scoreFeatureRecovery } from "../synthetic/superposition.js";
import { trainSae } from "../train/trainer.js";

export interface DemoOptions {
  outDir: string;
  seed?: number;
  /** Scales every run's step count (1 = the full demo). */
  stepScale?: number;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface DemoRow {
  name: string;
  architecture: string;
  fvu: number;
  /** Mean non-zero latents per token; for VAEase, mean active dimensions. */
  l0: number;
  dead_pct: number;
  mmcs: number;
  recovered_pct: number;
  seconds: number;
  out: string;
}

export const DEMO_DATA: Partial<SuperpositionOptions> = { d: 64, nFeatures: 512, meanActive: 4 };

interface DemoRun {
  name: string;
  sae: SaeConfigInput;
  steps: number;
  lr: number;
  clip?: number;
}

const RUNS: DemoRun[] = [
  { name: "topk", sae: { architecture: "topk", d_in: 64, d_sae: 1024, k: 8 }, steps: 1500, lr: 1e-3 },
  { name: "abstopk", sae: { architecture: "abstopk", d_in: 64, d_sae: 1024, k: 8 }, steps: 1500, lr: 1e-3 },
  { name: "vsae-kl-all", sae: { architecture: "vsae", d_in: 64, d_sae: 1024, k: 8, beta: 0.01, kl_warmup_steps: 150 }, steps: 1500, lr: 1e-3 },
  { name: "vsae-kl-active", sae: { architecture: "vsae", d_in: 64, d_sae: 1024, k: 8, beta: 0.01, kl_warmup_steps: 150, kl_scope: "active" }, steps: 1500, lr: 1e-3 },
  { name: "vaease", sae: { architecture: "vaease", d_in: 64, d_sae: 512 }, steps: 600, lr: 1e-3, clip: 0 },
  // Matching pursuit with at most k = 8 steps per token: the same L0 budget as the TopK runs.
  { name: "mp", sae: { architecture: "mp", d_in: 64, d_sae: 1024, max_iterations: 8 }, steps: 1500, lr: 1e-3 },
];

export function runSuperpositionDemo(o: DemoOptions): DemoRow[] {
  const seed = o.seed ?? 0;
  const log = o.log ?? (() => {});
  const evalX = evaluationSamples(seed, 8192);
  const rows: DemoRow[] = [];
  for (const run of RUNS) {
    const source = new SuperpositionSource({ ...DEMO_DATA, seed });
    const out = join(o.outDir, run.name);
    const t0 = performance.now();
    const r = trainSae(defaultConfig(run.sae), source, {
      steps: Math.max(10, Math.round(run.steps * (o.stepScale ?? 1))), batchSize: 1024, lr: run.lr,
      clipGradNorm: run.clip, seed, normalizeActivations: "expected_norm", deadAfterTokens: 200_000,
      // The demo's own folders: a second demo replaces the first.
      logEvery: 100, checkpointEvery: 0, outDir: out, overwrite: true, progress: o.progress,
      metadata: { dataset_path: "synthetic:superposition" },
    });
    const seconds = (performance.now() - t0) / 1000;
    const x = evalX.map((v) => v * r.inputScale);
    const rec = new ReconstructionMetrics(64);
    const sparsity = new SparsityMetrics(r.sae.cfg.d_sae);
    const rows8k = x.length / 64;
    const code = r.sae.encode(x, rows8k);
    rec.add(x, r.sae.decode(code, x), rows8k);
    let l0: number;
    let deadPct: number;
    if (r.sae instanceof VaeaseSae) {
      ({ l0, deadPct } = vaeaseActivity(r.sae, x, rows8k));
    } else {
      sparsity.add(code);
      const s = sparsity.result();
      l0 = s.l0;
      deadPct = 100 * s.frac_dead;
    }
    const W_dec = r.sae.params.get("W_dec")!.data;
    const truth = new SuperpositionSource({ ...DEMO_DATA, seed });
    const recovery = scoreFeatureRecovery(truth.features, W_dec, 64);
    const row: DemoRow = {
      name: run.name, architecture: r.sae.cfg.architecture, fvu: rec.result().fvu, l0, dead_pct: deadPct,
      mmcs: recovery.mmcs, recovered_pct: 100 * recovery.recovered, seconds, out,
    };
    rows.push(row);
    log(JSON.stringify(row));
  }
  writeJsonAtomic(join(o.outDir, "demo.json"), { data: { ...DEMO_DATA, seed }, rows });
  return rows;
}

/** 8192 samples of the demo distribution from a stream the training runs never see. */
function evaluationSamples(seed: number, n: number): Float32Array {
  const source = new SuperpositionSource({ ...DEMO_DATA, seed });
  source.restore(new Rng(seed + 104729).state());
  const x = new Float32Array(n * 64);
  source.next(x, n);
  return x;
}

/** VAEase's sparsity: active dimensions per token (two-cluster rule) and never-active dims. */
function vaeaseActivity(sae: VaeaseSae, x: Float32Array, batch: number): { l0: number; deadPct: number } {
  const kappa = sae.cfg.d_sae;
  const logvar = sae.logVariances(x, batch);
  const everActive = new Uint8Array(kappa);
  let total = 0;
  for (let b = 0; b < batch; b++) {
    const row = logvar.subarray(b * kappa, (b + 1) * kappa);
    const ad = activeDims(row);
    total += ad;
    // The active group is the ad lowest log-variances.
    const order = Array.from(row.keys()).sort((i, j) => row[i]! - row[j]!);
    for (let i = 0; i < ad; i++) everActive[order[i]!] = 1;
  }
  const alive = everActive.reduce((a, v) => a + v, 0);
  return { l0: total / batch, deadPct: 100 * (1 - alive / kappa) };
}

/** The comparison table as aligned text. */
export function formatDemoTable(rows: DemoRow[]): string {
  const header = ["run", "FVU", "L0", "dead %", "MMCS", "recovered %", "time"];
  const lines = rows.map((r) => [
    r.name, r.fvu.toFixed(3), r.l0.toFixed(1), r.dead_pct.toFixed(1), r.mmcs.toFixed(3), r.recovered_pct.toFixed(1),
    `${r.seconds.toFixed(0)}s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmt)].join("\n");
}
