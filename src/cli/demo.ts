/** `saekit demo`: the built-in comparison on toy superposition data. */
import { Command } from "commander";
import { setThreads } from "../core/kernels.js";
import { formatDemoTable, runSuperpositionDemo } from "../demo/superposition-demo.js";
import { defaultThreads, finiteNumber, nonNegativeInt, positiveInt } from "./options.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("train topk, abstopk, vsae (KL on all / selected latents), vaease and mp (matching pursuit) on toy superposition data (512 true features in R^64) and compare them against the ground truth; ~2 minutes, no download")
    .option("--out <dir>", "folder for the runs (SAELens format) and demo.json", "runs/demo")
    .option("--seed <n>", "seed for the data and the runs", nonNegativeInt, 0)
    .option("--step-scale <x>", "multiply every run's steps (e.g. 0.2 for a quick look)", finiteNumber, 1)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .action((o) => {
      setThreads(o.threads);
      const rows = runSuperpositionDemo({
        outDir: o.out, seed: o.seed, stepScale: o.stepScale,
        log: (line) => { if (!process.stdout.isTTY) process.stdout.write(line + "\n"); },
      });
      process.stderr.write(`\n${formatDemoTable(rows)}\n\nL0 for vaease is its mean number of active dimensions (low-variance group).\nRuns written to ${o.out}/<run>/ (cfg.json + sae_weights.safetensors); the table is in ${o.out}/demo.json.\n`);
    });
}
