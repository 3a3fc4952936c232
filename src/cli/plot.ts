/** `saekit plot`: training curves of runs from their metrics.jsonl, as SVG, PNG and HTML. */
import type { Command } from "commander";
import { readRunsIn, writeTrainingReport } from "../analysis/training-report.js";
import { printJson } from "./options.js";

export function registerPlot(program: Command): void {
  program
    .command("plot")
    .description("plot training curves (loss terms, MSE, FVU, L0, dead fraction, lr against tokens) of one or more runs: one SVG and PNG per metric and training.html")
    .requiredOption("--run <dir>", "a run folder written by saekit train, or a folder of them (a --sweep's, or several hooks'): each run in it; repeat to overlay several", (v: string, prev: string[] = []) => [...prev, v])
    .requiredOption("--out <dir>", "folder for the figures")
    .action((o) => {
      const runs = (o.run as string[]).flatMap((dir) => readRunsIn(dir));
      printJson({ out: o.out, runs: runs.map((r) => r.name), files: writeTrainingReport(o.out, runs) });
    });
}
