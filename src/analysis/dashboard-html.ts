/**
 * A self-contained HTML page of feature dashboards (sae_vis's feature-centric view): per
 * latent its density, activation histogram, logit effects, feature tables and example contexts with every
 * token shaded by the latent's activation (hover for the value). No scripts, no network.
 */
import type { DashboardExample, Dashboards, LatentDashboard, LogitEffect } from "./dashboard.js";
import type { FeatureTables } from "./feature-tables.js";
import type { PromptToken } from "./prompt-view.js";
import { escapeXml, histogramSvg } from "./svg.js";

/** Token text with whitespace made visible: newlines as ↵, tabs as →. */
function tokenText(s: string): string {
  return escapeXml(s.replace(/\n/g, "↵").replace(/\t/g, "→"));
}

function exampleHtml(ex: DashboardExample, scale: number): string {
  const spans = ex.tokens.map((_, w) => {
    const a = ex.acts[w]!;
    const alpha = scale > 0 ? Math.min(1, Math.abs(a) / scale) : 0;
    // Positive activations orange, negative (signed latents) blue.
    const colour = a >= 0 ? `rgba(255,140,0,${alpha.toFixed(3)})` : `rgba(30,120,255,${alpha.toFixed(3)})`;
    const focus = w === ex.focus ? ' class="focus"' : "";
    return `<span${focus} style="background:${colour}" title="${a.toPrecision(4)}">${tokenText(ex.text[w]!)}</span>`;
  });
  return `<div class="ex"><span class="act">${ex.activation.toPrecision(4)}</span>${spans.join("")}</div>`;
}

function logitTable(title: string, rows: LogitEffect[]): string {
  const body = rows.map((r) => `<tr><td class="tok">${tokenText(r.text)}</td><td>${r.value.toFixed(3)}</td></tr>`).join("");
  return `<table class="logits"><tr><th colspan="2">${title}</th></tr>${body}</table>`;
}

/** sae_vis's three feature tables side by side. */
function featureTables(t: FeatureTables): string {
  const num = (v: number | null, digits = 3) => (v === null ? "-" : v.toFixed(digits));
  const table = (title: string, head: string[], rows: string[][]) =>
    `<table class="logits"><tr><th colspan="${head.length}">${title}</th></tr><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("") + "</table>";
  return table("neuron alignment", ["neuron", "value", "% of L1"],
    t.neuron_alignment.map((r) => [String(r.index), num(r.value), (100 * r.l1_share).toFixed(1)])) +
    table("correlated neurons", ["neuron", "pearson", "cosine"],
      t.correlated_neurons.map((r) => [String(r.index), num(r.pearson), num(r.cosine)])) +
    table("correlated features", ["latent", "pearson", "cosine"],
      t.correlated_features.map((r) => [`<a href="#latent-${r.index}">${r.index}</a>`, num(r.pearson), num(r.cosine)]));
}

/** One latent's dashboard as a <section> (styled by DASHBOARD_STYLE), for any page. */
export function latentDashboardHtml(l: LatentDashboard): string {
  const scale = l.max_activation;
  const quantiles = l.quantile_examples.map((q) =>
    `<h4>|f| in ${q.range[0].toPrecision(3)} .. ${q.range[1].toPrecision(3)} (${q.count} tokens)</h4>${q.examples.map((e) => exampleHtml(e, scale)).join("")}`).join("");
  return `<section id="latent-${l.latent}">
<h2>Latent ${l.latent}</h2>
<p>density ${(100 * l.density).toPrecision(3)}% of tokens &middot; max |f| ${l.max_activation.toPrecision(4)}</p>
<div class="row">${histogramSvg({ title: `activations of latent ${l.latent} (non-zero)`, xLabel: "f", yLabel: "tokens", ...l.histogram })}
${l.logits.histogram.counts.length ? histogramSvg({ title: `logit effects of latent ${l.latent} (vocabulary)`, xLabel: "W_U W_dec[j]", yLabel: "tokens", ...l.logits.histogram }) : ""}
<div class="row">${logitTable("positive logits", l.logits.top)}${logitTable("negative logits", l.logits.bottom)}</div></div>
<div class="row">${featureTables(l.tables)}</div>
<h3>Top activations</h3>
${l.top_examples.map((e) => exampleHtml(e, scale)).join("\n") || "<p>never fires on these tokens</p>"}
<h3>Quantiles</h3>
${quantiles}
</section>`;
}

/** The dashboards' CSS: what a page showing latentDashboardHtml sections needs. */
export const DASHBOARD_STYLE = `.row{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap;margin-bottom:0.8em}
.ex{font-family:monospace;white-space:pre;margin:2px 0;overflow-x:auto}
.ex span{border-radius:2px}.ex .focus{outline:1px solid #333}
.act{display:inline-block;width:6em;color:#666}
table.logits{border-collapse:collapse;font-size:12px}table.logits td,table.logits th{border:1px solid #ddd;padding:2px 6px}
.tok{font-family:monospace;white-space:pre}
section{border-top:1px solid #ccc;margin-top:1.5em}
`;

/** The prompt-centric view: each token with its strongest latents, activation and loss effect. */
function promptHtml(view: PromptToken[], shown: Set<number>): string {
  const rows = view.map((t) => {
    const latents = t.top.map((l) => {
      const name = shown.has(l.latent) ? `<a href="#latent-${l.latent}">${l.latent}</a>` : String(l.latent);
      const effect = l.loss_effect === null ? "" : ` <small>(${l.loss_effect >= 0 ? "+" : ""}${l.loss_effect.toFixed(3)})</small>`;
      return `${name}: ${l.activation.toPrecision(3)}${effect}`;
    }).join(", ");
    return `<tr><td>${t.position}</td><td class="tok">${tokenText(t.text)}</td><td>${t.loss === null ? "" : t.loss.toFixed(3)}</td><td>${latents}</td></tr>`;
  }).join("");
  return `<section id="prompt"><h2>Prompt</h2>
<p>Each token's strongest latents with their activation and, in brackets, their loss effect: the change in the loss of the
next token when the latent's contribution is taken out of the activation there (positive: the latent helped).</p>
<table class="logits"><tr><th>position</th><th>token</th><th>next-token loss</th><th>latents</th></tr>${rows}</table></section>`;
}

export function dashboardHtml(d: Dashboards & { prompt?: PromptToken[] }, info: { model: string; sae: string; dataset: string }): string {
  const index = d.latents.map((l) => `<a href="#latent-${l.latent}">${l.latent}</a> <small>(${(100 * l.density).toPrecision(2)}%)</small>`).join(" &middot; ");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>saekit feature dashboards</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:1200px}
${DASHBOARD_STYLE}</style></head><body>
<h1>Feature dashboards</h1>
<p>SAE ${escapeXml(info.sae)} at <code>${escapeXml(d.hook)}</code> of ${escapeXml(info.model)}, over ${d.tokens} tokens
(${d.contexts} contexts) of ${escapeXml(info.dataset)}. Tokens are shaded by the latent's activation; hover for values.</p>
<p>${index}</p>
${d.prompt ? promptHtml(d.prompt, new Set(d.latents.map((l) => l.latent))) : ""}
${d.latents.map(latentDashboardHtml).join("\n")}
</body></html>
`;
}
