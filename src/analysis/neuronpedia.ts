/**
 * Feature dashboards in Neuronpedia's upload format. Neuronpedia hosts SAE dashboards, and its
 * way in is SAEDashboard's NeuronpediaRunner: one `batch-{n}.json` per group of latents,
 *
 *   { model_id, layer, sae_set, sae_id_suffix, features: [feature, ...] }
 *
 * which Neuronpedia's convert-saedashboard-to-neuronpedia-export.py turns into an importable
 * export. A feature holds sae_vis's dashboard under these names:
 *
 *   feature_index
 *   neuron_alignment_{indices,values,l1}     the input dimensions with the largest |W_dec[j, i]|
 *                                            (l1: their share of the row's L1 norm)
 *   correlated_neurons_{indices,l1,pearson}  "l1" holds the cosine with the decoder direction,
 *   correlated_features_{indices,l1,pearson} as SAEDashboard fills it
 *   pos_str/pos_values, neg_str/neg_values   largest and smallest logit effects W_U W_dec[j]
 *                                            (neg: most negative first)
 *   frac_nonzero                             density: the fraction of tokens where f_j != 0
 *   freq_hist_data_bar_{values,heights}      histogram of the non-zero activations: bin
 *                                            centres, counts
 *   logits_hist_data_bar_{values,heights}    histogram of the logit effects over the vocabulary
 *   n_prompts_total, n_tokens_in_prompt, dataset
 *   decoder_weights_dist                     for an SAE on attn.hook_z: each head's share of
 *                                            the decoder row's norm (sae_vis's allocation by
 *                                            head); empty otherwise
 *   activations: [{ tokens, values, bin_min, bin_max, bin_contains, qualifying_token_index }]
 *     the top examples with bin_min = -1, bin_max = the largest |f|, bin_contains = -1; then
 *     each quantile group with its |f| range and the fraction of the non-zero activations in
 *     it. (saekit's groups hold equal counts where sae_vis's have equal widths; the bounds
 *     and fractions say which tokens each holds either way.)
 *   vector: []                               (filled only for steering-vector sources)
 *
 * Floats are rounded to 3 decimals, as SAEDashboard writes them.
 */
import type { DashboardExample, Dashboards, LatentDashboard } from "./dashboard.js";

export interface NeuronpediaActivation {
  tokens: string[];
  values: number[];
  bin_min: number;
  bin_max: number;
  bin_contains: number;
  qualifying_token_index: number;
}

export interface NeuronpediaFeature {
  feature_index: number;
  neuron_alignment_indices: number[];
  neuron_alignment_values: number[];
  neuron_alignment_l1: number[];
  correlated_neurons_indices: number[];
  correlated_neurons_l1: number[];
  correlated_neurons_pearson: number[];
  correlated_features_indices: number[];
  correlated_features_l1: number[];
  correlated_features_pearson: number[];
  neg_str: string[];
  neg_values: number[];
  pos_str: string[];
  pos_values: number[];
  frac_nonzero: number;
  freq_hist_data_bar_values: number[];
  freq_hist_data_bar_heights: number[];
  logits_hist_data_bar_heights: number[];
  logits_hist_data_bar_values: number[];
  n_prompts_total: number;
  n_tokens_in_prompt: number;
  dataset: string;
  decoder_weights_dist: number[];
  activations: NeuronpediaActivation[];
  vector: number[];
}

export interface NeuronpediaBatch {
  model_id: string;
  layer: number;
  sae_set: string;
  sae_id_suffix: string | null;
  features: NeuronpediaFeature[];
}

/** Where the dashboards come from, as Neuronpedia names it. */
export interface NeuronpediaSource {
  /** The model's id on Neuronpedia (TransformerLens' name, e.g. "pythia-70m-deduped"). */
  modelId: string;
  layer: number;
  /** The SAE set (SAEDashboard's --np-set-name), e.g. "res-topk-16k". */
  saeSet: string;
  /** Goes after the set in the SAE's id (`{layer}-{set}__{suffix}`): an L0, a training step... */
  saeIdSuffix?: string | null;
  /** The dataset the examples come from, and the tokens per context. */
  dataset: string;
  ctx: number;
}

/** The layer of a `blocks.{i}.` hook, null for hooks outside the blocks (hook_embed, ln_final). */
export function hookLayer(hook: string): number | null {
  const m = /^blocks\.(\d+)\./.exec(hook);
  return m ? Number(m[1]) : null;
}

/**
 * sae_vis's decoder weight distribution for an SAE on attn.hook_z ([nHeads * dHead], head
 * after head): the norm of each head's slice of the decoder row, over their sum.
 */
export function decoderHeadShares(row: Float32Array, nHeads: number): number[] {
  if (row.length % nHeads !== 0) throw new Error(`a decoder row of ${row.length} does not split into ${nHeads} heads`);
  const dHead = row.length / nHeads;
  const norms = Array.from({ length: nHeads }, (_, h) => {
    let s = 0;
    for (let e = h * dHead; e < (h + 1) * dHead; e++) s += row[e]! * row[e]!;
    return Math.sqrt(s);
  });
  const total = norms.reduce((a, b) => a + b, 0);
  return norms.map((v) => (total > 0 ? v / total : 0));
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
const rounded = (vs: readonly number[]) => vs.map(round3);
const centres = (edges: readonly number[]) => edges.slice(1).map((e, i) => (edges[i]! + e) / 2);

function activation(e: DashboardExample, bin: { min: number; max: number; contains: number }): NeuronpediaActivation {
  return {
    tokens: e.text, values: rounded(e.acts),
    bin_min: round3(bin.min), bin_max: round3(bin.max), bin_contains: bin.contains, qualifying_token_index: e.focus,
  };
}

/** One latent's dashboard as a Neuronpedia feature; `headShares` for attn.hook_z SAEs. */
export function neuronpediaFeature(l: LatentDashboard, run: { contexts: number; ctx: number; dataset: string },
  headShares: number[] = []): NeuronpediaFeature {
  const t = l.tables;
  const fired = l.quantile_examples.reduce((a, q) => a + q.count, 0);
  // A cosine is null where a decoder row has zero norm; the format's float lists take 0.
  const cosines = (rows: Array<{ cosine: number | null }>) => rounded(rows.map((r) => r.cosine ?? 0));
  return {
    feature_index: l.latent,
    neuron_alignment_indices: t.neuron_alignment.map((r) => r.index),
    neuron_alignment_values: rounded(t.neuron_alignment.map((r) => r.value)),
    neuron_alignment_l1: rounded(t.neuron_alignment.map((r) => r.l1_share)),
    correlated_neurons_indices: t.correlated_neurons.map((r) => r.index),
    correlated_neurons_l1: cosines(t.correlated_neurons),
    correlated_neurons_pearson: rounded(t.correlated_neurons.map((r) => r.pearson)),
    correlated_features_indices: t.correlated_features.map((r) => r.index),
    correlated_features_l1: cosines(t.correlated_features),
    correlated_features_pearson: rounded(t.correlated_features.map((r) => r.pearson)),
    neg_str: l.logits.bottom.map((e) => e.text),
    neg_values: rounded(l.logits.bottom.map((e) => e.value)),
    pos_str: l.logits.top.map((e) => e.text),
    pos_values: rounded(l.logits.top.map((e) => e.value)),
    frac_nonzero: l.density,
    freq_hist_data_bar_values: fired > 0 ? rounded(centres(l.histogram.edges)) : [],
    freq_hist_data_bar_heights: fired > 0 ? l.histogram.counts : [],
    logits_hist_data_bar_heights: l.logits.histogram.counts,
    logits_hist_data_bar_values: rounded(centres(l.logits.histogram.edges)),
    n_prompts_total: run.contexts,
    n_tokens_in_prompt: run.ctx,
    dataset: run.dataset,
    decoder_weights_dist: rounded(headShares),
    activations: [
      ...l.top_examples.map((e) => activation(e, { min: -1, max: l.max_activation, contains: -1 })),
      ...l.quantile_examples.flatMap((q) =>
        q.examples.map((e) => activation(e, { min: q.range[0], max: q.range[1], contains: q.count / fired }))),
    ],
    vector: [],
  };
}

/** A batch file's contents: the dashboards of its latents and where they come from. */
export function neuronpediaBatch(d: Dashboards, source: NeuronpediaSource,
  headShares?: (latent: number) => number[]): NeuronpediaBatch {
  const run = { contexts: d.contexts, ctx: source.ctx, dataset: source.dataset };
  return {
    model_id: source.modelId, layer: source.layer, sae_set: source.saeSet, sae_id_suffix: source.saeIdSuffix ?? null,
    features: d.latents.map((l) => neuronpediaFeature(l, run, headShares?.(l.latent))),
  };
}

/**
 * Latents split into `ceil(n / size)` batches of near-equal length, the longer ones first,
 * as SAEDashboard splits them (numpy's array_split): 300 latents at 128 -> 100, 100, 100.
 */
export function latentBatches(latents: readonly number[], size: number): number[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`features per batch must be a positive integer, got ${size}`);
  if (latents.length === 0) return [];
  const parts = Math.ceil(latents.length / size);
  const base = Math.floor(latents.length / parts), extra = latents.length % parts;
  const out: number[][] = [];
  let at = 0;
  for (let p = 0; p < parts; p++) {
    const len = base + (p < extra ? 1 : 0);
    out.push(latents.slice(at, at + len));
    at += len;
  }
  return out;
}
