/**
 * The figures of a latent analysis (latents.ts) as standalone SVG strings, one per figure of
 * the vSAE paper's sections 4.2-4.3: max-activation histogram, each latent's largest decoder
 * cosine with another, t-SNE maps coloured by cluster, utilization and mean activation, and
 * mean utilization per cluster.
 */
import type { LatentAnalysis } from "./latents.js";
import { barSvg, CATEGORY_COLORS, histogramSvg, scatterSvg, viridis } from "./svg.js";

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
  const sim = r.decoder_similarity;
  if (sim) {
    figures["decoder-similarity"] = histogramSvg({
      title: `${a.name}: nearest other latent, by decoder direction (mean cos ${sim.mean_max_cosine.toFixed(3)})`,
      xLabel: "largest cosine with another latent's decoder direction", yLabel: "latents", ...sim.histogram,
    });
  }
  const t = r.tsne;
  if (!t) return figures;
  const util = t.latent.map((j) => r.utilization[j]!);
  const act = t.latent.map((j) => r.mean_activation[j]!);
  // (A loop, not Math.max(...v): a map can hold more points than a call takes arguments.)
  const largest = (v: number[]) => v.reduce((a, b) => Math.max(a, b), 0);
  const scaled = (v: number[]) => { const hi = largest(v); return v.map((u) => (hi > 0 ? u / hi : 0)); };
  // Dots shrink as the map fills (2.5 px up to 2,000 latents, 0.8 px from ~20,000) so dense maps keep their shape.
  const dot = Math.min(1, Math.max(0.32, Math.sqrt(2000 / Math.max(1, t.latent.length))));
  const tips = t.latent.map((j, p) => `latent ${j}: cluster ${t.cluster[p]}, utilization ${r.utilization[j]!.toPrecision(3)}, mean |f| ${r.mean_activation[j]!.toPrecision(3)}`);
  const common = { x: t.x, y: t.y, labels: tips, xLabel: "t-SNE 1", yLabel: "t-SNE 2", radii: t.latent.map(() => 2.5 * dot) };
  figures["tsne-clusters"] = scatterSvg({ ...common, title: `${a.name}: t-SNE of decoder directions, ${r.clusters.length} k-means clusters`,
    colors: t.cluster.map((c) => CATEGORY_COLORS[c % CATEGORY_COLORS.length]!) });
  figures["tsne-utilization"] = scatterSvg({ ...common, title: `${a.name}: utilization`,
    caption: `colour: fraction of tokens where the latent fires (purple 0 .. yellow ${largest(util).toPrecision(2)})`, colors: scaled(util).map(viridis) });
  figures["tsne-activation"] = scatterSvg({ ...common, title: `${a.name}: mean activation, size = utilization`,
    caption: `colour: mean |f| when active (purple 0 .. yellow ${largest(act).toPrecision(3)})`, colors: scaled(act).map(viridis),
    radii: scaled(util).map((u) => dot * (1.5 + 5 * Math.sqrt(u))) });
  figures["cluster-utilization"] = barSvg({
    title: `${a.name}: mean utilization per cluster`, xLabel: "cluster (size)", yLabel: "mean utilization",
    labels: r.clusters.map((c) => `${c.cluster} (${c.size})`), values: r.clusters.map((c) => c.mean_utilization),
    colors: r.clusters.map((c) => CATEGORY_COLORS[c.cluster % CATEGORY_COLORS.length]!),
  });
  return figures;
}

