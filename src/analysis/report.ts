/**
 * Writes latent analyses of one or more SAEs to a folder: `analysis.json` (everything, for
 * plotting elsewhere), one SVG and one PNG per figure of the vSAE paper's sections 4.2-4.3, and
 * `report.html`, a page with a summary table and every figure inline. Each file is written
 * atomically.
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { analysisFigures, type NamedAnalysis } from "./figures.js";
import { svgToPng } from "./png.js";
import { escapeXml } from "./svg.js";

export type { NamedAnalysis } from "./figures.js";

export function writeAnalysisReport(dir: string, analyses: NamedAnalysis[]): string[] {
  const written: string[] = [];
  const write = (file: string, content: string | Uint8Array) => {
    writeFileAtomic(join(dir, file), content);
    written.push(file);
  };
  writeJsonAtomic(join(dir, "analysis.json"), analyses.map(({ name, source, analysis }) => ({ name, source, ...analysis })));
  written.push("analysis.json");
  const sections: string[] = [];
  for (const a of analyses) {
    const figures = analysisFigures(a);
    for (const [suffix, svg] of Object.entries(figures)) {
      write(`${a.name}-${suffix}.svg`, svg);
      write(`${a.name}-${suffix}.png`, svgToPng(svg));
    }
    sections.push(`<h2>${escapeXml(a.name)}</h2>\n<p>${escapeXml(a.source)}</p>\n<div class="figs">${Object.values(figures).join("\n")}</div>`);
  }
  const rows = analyses.map(({ name, analysis: r }) =>
    `<tr><td>${escapeXml(name)}</td><td>${r.d_sae}</td><td>${r.living}</td><td>${(100 * r.living_fraction).toFixed(1)}%</td>` +
    `<td>${r.tokens}</td><td>${r.decoder_similarity ? r.decoder_similarity.mean_max_cosine.toFixed(3) : "-"}</td>` +
    `<td>${r.decoder_similarity ? `${(100 * r.decoder_similarity.antipodal_fraction).toFixed(1)}%` : "-"}</td>` +
    `<td>${r.tsne ? r.tsne.kl.toFixed(3) : "-"}</td></tr>`);
  write("report.html", `<!doctype html>
<html><head><meta charset="utf-8"><title>saekit latent analysis</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child{text-align:left}.figs svg{margin:6px;border:1px solid #eee}</style></head><body>
<h1>Latent analysis</h1>
<p>As in the vSAE paper (sections 4.2-4.3): the largest activation of every latent over the tokens, the living-feature
fraction (latents that fire at least once), how close each living latent's decoder direction comes to another's (the largest
cosine; the vSAE's noise was meant to push features apart) and how many have an antipode (a latent pointing the
opposite way, cos &lt; -0.9: how a non-negative SAE covers an axis that fires both ways), and a t-SNE map of the living latents' decoder directions with
k-means clusters.</p>
<table><tr><th>SAE</th><th>latents</th><th>living</th><th>living fraction</th><th>tokens</th><th>mean max decoder cos</th><th>with an antipode</th><th>t-SNE KL</th></tr>
${rows.join("\n")}
</table>
${sections.join("\n")}
</body></html>
`);
  return written;
}
