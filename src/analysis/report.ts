/**
 * Writes latent analyses of one or more SAEs to a folder: `analysis.json` (everything, for
 * plotting elsewhere), one SVG per figure of the vSAE paper's sections 4.2-4.3, and
 * `report.html`, a page with a summary table and every figure inline. Each file is written
 * atomically.
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import type { LatentAnalysis } from "./latents.js";
import { barSvg, CATEGORY_COLORS, escapeXml, histogramSvg, scatterSvg, viridis } from "./svg.js";

export interface NamedAnalysis {
  /** A short name for the SAE (used in file names). */
  name: string;
  /** Where it came from, for the report. */
  source: string;
  analysis: LatentAnalysis;
}

/** The figures of one analysis, by file name suffix. */
export function analysisFigures(a: NamedAnalysis): Record<string, string> {
  const r = a.analysis;
  const figures: Record<string, string> = {
    "max-activations": histogramSvg({
      title: `${a.name}: max activation per latent (${r.living} of ${r.d_sae} living)`,
      xLabel: "max |f| over the tokens", yLabel: "latents", ...r.max_activation_histogram,
    }),
  };
  const t = r.tsne;
  if (!t) return figures;
  const util = t.latent.map((j) => r.utilization[j]!);
  const act = t.latent.map((j) => r.mean_activation[j]!);
  const scaled = (v: number[]) => { const hi = Math.max(...v); return v.map((u) => (hi > 0 ? u / hi : 0)); };
  const tips = t.latent.map((j, p) => `latent ${j}: cluster ${t.cluster[p]}, utilization ${r.utilization[j]!.toPrecision(3)}, mean |f| ${r.mean_activation[j]!.toPrecision(3)}`);
  const common = { x: t.x, y: t.y, labels: tips, xLabel: "t-SNE 1", yLabel: "t-SNE 2" };
  figures["tsne-clusters"] = scatterSvg({ ...common, title: `${a.name}: t-SNE of decoder directions, ${r.clusters.length} k-means clusters`,
    colors: t.cluster.map((c) => CATEGORY_COLORS[c % CATEGORY_COLORS.length]!) });
  figures["tsne-utilization"] = scatterSvg({ ...common, title: `${a.name}: utilization`,
    caption: `colour: fraction of tokens where the latent fires (purple 0 .. yellow ${Math.max(...util).toPrecision(2)})`, colors: scaled(util).map(viridis) });
  figures["tsne-activation"] = scatterSvg({ ...common, title: `${a.name}: mean activation, size = utilization`,
    caption: `colour: mean |f| when active (purple 0 .. yellow ${Math.max(...act).toPrecision(3)})`, colors: scaled(act).map(viridis),
    radii: scaled(util).map((u) => 1.5 + 5 * Math.sqrt(u)) });
  figures["cluster-utilization"] = barSvg({
    title: `${a.name}: mean utilization per cluster`, xLabel: "cluster (size)", yLabel: "mean utilization",
    labels: r.clusters.map((c) => `${c.cluster} (${c.size})`), values: r.clusters.map((c) => c.mean_utilization),
    colors: r.clusters.map((c) => CATEGORY_COLORS[c.cluster % CATEGORY_COLORS.length]!),
  });
  return figures;
}

export function writeAnalysisReport(dir: string, analyses: NamedAnalysis[]): string[] {
  const written: string[] = [];
  const write = (file: string, text: string) => {
    writeFileAtomic(join(dir, file), text);
    written.push(file);
  };
  writeJsonAtomic(join(dir, "analysis.json"), analyses.map(({ name, source, analysis }) => ({ name, source, ...analysis })));
  written.push("analysis.json");
  const sections: string[] = [];
  for (const a of analyses) {
    const figures = analysisFigures(a);
    for (const [suffix, svg] of Object.entries(figures)) write(`${a.name}-${suffix}.svg`, svg);
    sections.push(`<h2>${escapeXml(a.name)}</h2>\n<p>${escapeXml(a.source)}</p>\n<div class="figs">${Object.values(figures).join("\n")}</div>`);
  }
  const rows = analyses.map(({ name, analysis: r }) =>
    `<tr><td>${escapeXml(name)}</td><td>${r.d_sae}</td><td>${r.living}</td><td>${(100 * r.living_fraction).toFixed(1)}%</td>` +
    `<td>${r.tokens}</td><td>${r.tsne ? r.tsne.kl.toFixed(3) : "-"}</td></tr>`);
  write("report.html", `<!doctype html>
<html><head><meta charset="utf-8"><title>saekit latent analysis</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child{text-align:left}.figs svg{margin:6px;border:1px solid #eee}</style></head><body>
<h1>Latent analysis</h1>
<p>As in the vSAE paper (sections 4.2-4.3): the largest activation of every latent over the tokens, the living-feature
fraction (latents that fire at least once), and a t-SNE map of the living latents' decoder directions with k-means clusters.</p>
<table><tr><th>SAE</th><th>latents</th><th>living</th><th>living fraction</th><th>tokens</th><th>t-SNE KL</th></tr>
${rows.join("\n")}
</table>
${sections.join("\n")}
</body></html>
`);
  return written;
}
