/**
 * Training curves of run folders: reads each metrics.jsonl and writes one SVG and PNG per metric
 * (training-figures.ts) and `training.html` with all of them, so a run can be looked at
 * without a plotting stack.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { METRICS_FILE } from "../train/trainer.js";
import { subfolders } from "../util/folders.js";
import { svgToPng } from "./png.js";
import { escapeXml } from "./svg.js";
import { parseMetricsJsonl, type RunMetrics, trainingFigures } from "./training-figures.js";

export type { RunMetrics } from "./training-figures.js";

/** The records of `dir/metrics.jsonl` (lines that are not JSON objects are skipped). */
export function readRunMetrics(dir: string, name = basename(dir)): RunMetrics {
  const path = join(dir, METRICS_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no ${METRICS_FILE}; expected a run folder written by saekit train`);
  const records = parseMetricsJsonl(readFileSync(path, "utf8"));
  if (records.length === 0) throw new Error(`${path}: no metrics records yet`);
  return { name, records };
}

/**
 * The runs of a folder: the run itself when it holds metrics.jsonl, else every run folder
 * inside it (what a --sweep, or training several hooks at once, writes), each named
 * `folder/run`.
 */
export function readRunsIn(dir: string): RunMetrics[] {
  if (existsSync(join(dir, METRICS_FILE))) return [readRunMetrics(dir)];
  const inside = subfolders(dir, (p) => existsSync(join(p, METRICS_FILE)));
  if (inside.length === 0) return [readRunMetrics(dir)]; // says what is missing
  return inside.map((name) => readRunMetrics(join(dir, name), `${basename(dir)}/${name}`));
}

/** Writes `<metric>.svg` and `<metric>.png` for every metric and `training.html`; returns the file names. */
export function writeTrainingReport(dir: string, runs: RunMetrics[]): string[] {
  const figures = trainingFigures(runs);
  const files: string[] = [];
  for (const [key, svg] of Object.entries(figures)) {
    writeFileAtomic(join(dir, `${key}.svg`), svg);
    writeFileAtomic(join(dir, `${key}.png`), svgToPng(svg));
    files.push(`${key}.svg`, `${key}.png`);
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
