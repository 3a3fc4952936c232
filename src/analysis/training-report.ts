/**
 * Training curves of one or more runs from their metrics.jsonl: one SVG per metric (every
 * run overlaid, against tokens seen) and `training.html` with all of them, so a run can be
 * looked at without a plotting stack.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { METRICS_FILE } from "../train/trainer.js";
import { escapeXml, lineSvg } from "./svg.js";

export interface RunMetrics {
  name: string;
  records: Array<Record<string, number>>;
}

/** The records of `dir/metrics.jsonl` (lines that are not JSON objects are skipped). */
export function readRunMetrics(dir: string, name = basename(dir)): RunMetrics {
  const path = join(dir, METRICS_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no ${METRICS_FILE}; expected a run folder written by saekit train`);
  const records = readFileSync(path, "utf8").split("\n").flatMap((line) => {
    try {
      const r = JSON.parse(line);
      return r && typeof r === "object" && typeof r.step === "number" ? [r as Record<string, number>] : [];
    } catch {
      return [];
    }
  });
  if (records.length === 0) throw new Error(`${path}: no metrics records yet`);
  return { name, records };
}

/** Metrics shown, in order, and whether their scale calls for a log axis. */
const CURVES: Array<{ key: string; label: string; logY: boolean }> = [
  { key: "loss", label: "total loss", logY: true },
  { key: "mse", label: "MSE (||x - x_hat||^2 per token)", logY: true },
  { key: "fvu", label: "fraction of variance unexplained", logY: false },
  { key: "l0", label: "L0 (active latents per token)", logY: false },
  { key: "dead_frac", label: "dead fraction", logY: false },
  { key: "lr", label: "learning rate", logY: false },
];

/** Loss terms beyond the standard ones (kl, aux, l1, l0 penalties, ...) are plotted too. */
const SKIP = new Set(["step", "tokens", "tokens_per_s", ...CURVES.map((c) => c.key)]);

export function trainingFigures(runs: RunMetrics[]): Record<string, string> {
  const extra = [...new Set(runs.flatMap((r) => r.records.flatMap((rec) => Object.keys(rec))))].filter((k) => !SKIP.has(k));
  const curves = [...CURVES, ...extra.map((key) => ({ key, label: key, logY: false }))];
  const figures: Record<string, string> = {};
  for (const c of curves) {
    const series = runs.filter((r) => r.records.some((rec) => Number.isFinite(rec[c.key])))
      .map((r) => ({ label: r.name, x: r.records.map((rec) => rec.tokens ?? rec.step!), y: r.records.map((rec) => rec[c.key] ?? NaN) }));
    if (series.length) figures[c.key] = lineSvg({ title: c.label, xLabel: "tokens", yLabel: c.key, logY: c.logY, series });
  }
  return figures;
}

/** Writes `<metric>.svg` for every metric and `training.html`; returns the file names. */
export function writeTrainingReport(dir: string, runs: RunMetrics[]): string[] {
  const figures = trainingFigures(runs);
  const files: string[] = [];
  for (const [key, svg] of Object.entries(figures)) {
    writeFileAtomic(join(dir, `${key}.svg`), svg);
    files.push(`${key}.svg`);
  }
  const last = runs.map((r) => {
    const rec = r.records[r.records.length - 1]!;
    const cell = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "-" : Number(v.toPrecision(4)).toString());
    return `<tr><td>${escapeXml(r.name)}</td><td>${rec.step}</td><td>${cell(rec.tokens)}</td><td>${cell(rec.loss)}</td><td>${cell(rec.fvu)}</td><td>${cell(rec.l0)}</td><td>${cell(rec.dead_frac)}</td></tr>`;
  });
  writeFileAtomic(join(dir, "training.html"), `<!doctype html>
<html><head><meta charset="utf-8"><title>saekit training curves</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child{text-align:left}svg{margin:6px;border:1px solid #eee}</style></head><body>
<h1>Training curves</h1>
<table><tr><th>run</th><th>step</th><th>tokens</th><th>loss</th><th>FVU</th><th>L0</th><th>dead fraction</th></tr>
${last.join("\n")}
</table>
<div>${Object.values(figures).join("\n")}</div>
</body></html>
`);
  files.push("training.html");
  return files;
}
