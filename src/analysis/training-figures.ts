/**
 * Training curves as SVG: every metric of a run's metrics.jsonl against tokens seen, runs
 * overlaid. (training-report.ts reads run folders and writes the files.)
 */
import { lineSvg } from "./svg.js";

export interface RunMetrics {
  name: string;
  records: Array<Record<string, number>>;
}

/** The metrics records in the text of a metrics.jsonl (lines that are not records are skipped). */
export function parseMetricsJsonl(text: string): Array<Record<string, number>> {
  return text.split("\n").flatMap((line) => {
    try {
      const r = JSON.parse(line);
      return r && typeof r === "object" && typeof r.step === "number" ? [r as Record<string, number>] : [];
    } catch {
      return [];
    }
  });
}

/** Metrics shown, in order, and whether their scale calls for a log axis. */
const CURVES: Array<{ key: string; label: string; logY: boolean }> = [
  { key: "loss", label: "total loss", logY: true },
  { key: "mse", label: "MSE (||x - x_hat||^2 per token)", logY: true },
  { key: "fvu", label: "fraction of variance unexplained", logY: true },
  { key: "l0", label: "L0 (active latents per token)", logY: false },
  { key: "dead_frac", label: "dead fraction", logY: false },
  { key: "lr", label: "learning rate", logY: false },
  // Logged every --eval-every steps: the SAE spliced into its model on held-out text.
  { key: "ce_loss_recovered", label: "CE loss recovered (spliced into the model)", logY: false },
  { key: "kl_div_score", label: "KL score (spliced into the model)", logY: false },
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

