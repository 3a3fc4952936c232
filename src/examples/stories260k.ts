/**
 * `saekit example stories260k`: the whole pipeline on a real pretrained model that ships
 * offline, on the papers' own dataset. Karpathy's stories260K (a Llama-2-style model trained
 * on TinyStories, llama2.c format) reads the first 2 MiB of TinyStories; saekit harvests
 * blocks.2.hook_resid_post over ~500k tokens (256-token contexts), trains TopK, vSAE (KL on
 * all latents and on the selected ones), AbsTopK at k = 8 / 16 / 32, BatchTopK,
 * Matryoshka and matching pursuit at k = 16, and VAEase and a plain VAE, with 512 latents,
 * splice-evaluates each on held-out
 * contexts that follow the harvested ones (Matryoshka at every nested level too), and
 * runs the vSAE paper's latent analyses on each (max activations, living features, t-SNE),
 * and k-sparse probes every SAE (SAEBench's sparse probing) on a labelled task cut from the
 * same text: where each story is set (park, garden, forest, beach or school).
 * Every step is the library call a CLI command makes; the same commands reproduce it.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { analyzeLatents } from "../analysis/latents.js";
import { type NamedAnalysis, writeAnalysisReport } from "../analysis/report.js";
import { readRunMetrics, writeTrainingReport } from "../analysis/training-report.js";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { StoreSource } from "../data/store-source.js";
import { type LabeledText, splitByClass } from "../data/labeled.js";
import { readManifest, readShardActivations, storedContexts } from "../data/store.js";
import { readDocuments } from "../data/text.js";
import { specialTokens } from "../lm/special-tokens.js";
import { runSparseProbing } from "../eval/sparse-probing-run.js";
import { evaluateSplice } from "../eval/splice.js";
import { openContexts } from "../lm/dataset.js";
import { harvest } from "../lm/harvest.js";
import { loadModel } from "../lm/load.js";
import { type SaeConfigInput, defaultConfig } from "../sae/config.js";
import type { Sae } from "../sae/sae.js";
import { loadSae } from "../sae/saelens.js";
import { VaeaseSae, activeDims } from "../sae/vaease.js";
import { trainSae } from "../train/trainer.js";

export interface Stories260kOptions {
  /** ../shared/data: holds stories260K/ and tinystories/. */
  dataDir: string;
  outDir: string;
  harvestTokens?: number;
  ctx?: number;
  hook?: string;
  ks?: number[];
  dSae?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  vaeaseSteps?: number;
  evalTokens?: number;
  seed?: number;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface ExampleRow {
  run: string;
  architecture: string;
  k: number | null;
  fvu: number;
  /** Mean non-zero latents per token; for VAEase, its mean number of active dimensions. */
  l0: number;
  frac_alive: number;
  ce_loss_recovered: number;
  kl_div_score: number;
  ce_clean: number;
  ce_with_sae: number;
  ce_zero_ablated: number;
  train_seconds: number;
}

/** k-sparse probing accuracies of one SAE (or, as run "model", of the model's own channels). */
export interface ProbeRow {
  run: string;
  /** k -> mean test accuracy over the setting classes. */
  top_k: Record<string, number>;
  /** The probe on every latent (channel). */
  all: number;
}

/** The probing task: stories that name exactly one of these settings, labelled by it. */
export const STORY_SETTINGS = ["park", "garden", "forest", "beach", "school"];
export const PROBE_DEFAULTS = { trainPerClass: 250, testPerClass: 60, kValues: [1, 2, 5] };

interface Run {
  name: string;
  sae: SaeConfigInput;
  steps: number;
  batch: number;
  clip?: number;
}

export const STORIES260K_DEFAULTS = {
  harvestTokens: 500_000, ctx: 256, hook: "blocks.2.hook_resid_post", ks: [8, 16, 32], dSae: 512,
  steps: 2000, batch: 2048, lr: 1e-3, vaeaseSteps: 1000, evalTokens: 32_768, seed: 0,
};

/** A Matryoshka run's inner level, spliced on its own (its first `width` latents). */
export interface LevelRow {
  run: string;
  width: number;
  fvu: number;
  l0: number;
  ce_loss_recovered: number;
  kl_div_score: number;
}

export interface ExampleResult {
  rows: ExampleRow[];
  levels: LevelRow[];
  /** The model's channels first, then each run. */
  probing: ProbeRow[];
}

export async function runStories260kExample(opts: Stories260kOptions): Promise<ExampleResult> {
  const o = { ...STORIES260K_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Required<Stories260kOptions>;
  const log = o.log ?? (() => {});
  const modelPath = join(o.dataDir, "stories260K", "stories260K.bin");
  const tokPath = join(o.dataDir, "stories260K", "tok512.bin");
  const text = join(o.dataDir, "tinystories", "tinystories_train_first2MiB.txt");
  for (const p of [modelPath, tokPath, text]) {
    if (!existsSync(p)) throw new Error(`${p} is missing; the example needs ../shared/data (stories260K and tinystories); pass --data-dir`);
  }
  mkdirSync(o.outDir, { recursive: true });
  const loaded = await loadModel(modelPath, { tokenizer: tokPath });
  const d = loaded.model.cfg.dModel;
  const ctxOpts = { ctx: o.ctx, prependBos: true };

  // 1. Harvest (resumes if a previous run got part of the way).
  const store = join(o.outDir, "store");
  log(`harvest ${o.hook}: ${o.harvestTokens} tokens of ${text}`);
  const src = openContexts(loaded, text, ctxOpts);
  const manifest = await harvest(loaded.model, src.contexts, {
    outDir: store, hook: o.hook, tokens: o.harvestTokens, ctx: o.ctx, batch: 32, prependBos: true, excludeBos: true,
    shardTokens: 65_536, modelName: modelPath, dataset: { spec: text, fingerprint: src.fingerprint }, progress: o.progress,
  });
  const usedContexts = storedContexts(manifest);

  // 2. Train every configuration on the store.
  const runs: Run[] = [];
  const vsae = (k: number, scope: "all" | "active", beta: number): Run => ({
    name: `vsae-${scope}-k${k}${beta === 1 ? "" : `-beta${beta}`}`,
    sae: { architecture: "vsae", d_in: d, d_sae: o.dSae, k, kl_scope: scope, beta, kl_warmup_steps: Math.floor(0.1 * o.steps) },
    steps: o.steps, batch: o.batch,
  });
  for (const k of o.ks) {
    const base = { d_in: d, d_sae: o.dSae, k };
    // vSAE at the published KL weight (beta = 1) at every k; at the middle k also at a
    // weight small enough for it to learn at this activation scale.
    runs.push(
      { name: `topk-k${k}`, sae: { architecture: "topk", ...base }, steps: o.steps, batch: o.batch },
      vsae(k, "all", 1),
      vsae(k, "active", 1),
      { name: `abstopk-k${k}`, sae: { architecture: "abstopk", ...base }, steps: o.steps, batch: o.batch },
    );
    if (k === o.ks[Math.floor(o.ks.length / 2)]) {
      runs.push(
        vsae(k, "all", 0.01), vsae(k, "active", 0.01),
        // BatchTopK, and Matryoshka on top of it with its default nested levels.
        { name: `batchtopk-k${k}`, sae: { architecture: "batchtopk", ...base }, steps: o.steps, batch: o.batch },
        { name: `matryoshka-k${k}`, sae: { architecture: "matryoshka", ...base }, steps: o.steps, batch: o.batch },
        // Matching pursuit with at most k steps per token.
        { name: `mp-k${k}`, sae: { architecture: "mp", d_in: d, d_sae: o.dSae, max_iterations: k }, steps: o.steps, batch: o.batch },
      );
    }
  }
  // VAEase, and the plain VAE it is compared against (the decoder sees z, no gate).
  for (const [name, gate] of [["vaease", true], ["vae", false]] as const) {
    runs.push({ name, sae: { architecture: "vaease", d_in: d, d_sae: o.dSae, gate }, steps: o.vaeaseSteps, batch: Math.min(1024, o.batch), clip: 0 });
  }

  const rows: ExampleRow[] = [];
  const levels: LevelRow[] = [];
  const analyses: NamedAnalysis[] = [];
  const saved: Sae[] = [];
  const analysisRows = analysisSample(store);
  for (const run of runs) {
    const out = join(o.outDir, "runs", run.name);
    const t0 = performance.now();
    const r = trainSae(defaultConfig(run.sae), new StoreSource(store, o.seed, 1 << 18), {
      steps: run.steps, batchSize: run.batch, lr: o.lr, clipGradNorm: run.clip, seed: o.seed,
      normalizeActivations: "expected_norm", deadAfterTokens: 500_000, logEvery: 100, checkpointEvery: 500,
      outDir: out, resume: true, progress: o.progress,
      metadata: { model_name: modelPath, hook_name: o.hook, context_size: o.ctx, prepend_bos: true, dataset_path: text },
    });
    const trainSeconds = (performance.now() - t0) / 1000;
    // 3. Splice-evaluate on held-out contexts (those after the harvested ones). The SAE in
    // memory works on normalised inputs; the saved one has the scale folded in, so
    // evaluate what was saved, as a user would.
    const { sae } = loadSae(out);
    saved.push(sae);
    const held = openContexts(loaded, text, { ...ctxOpts, skip: usedContexts });
    const e = await evaluateSplice(loaded.model, sae, held.contexts, { hook: o.hook, tokens: o.evalTokens, ctx: o.ctx, batch: 16, progress: o.progress });
    const row: ExampleRow = {
      run: run.name, architecture: r.sae.cfg.architecture,
      k: "k" in r.sae.cfg ? r.sae.cfg.k : r.sae.cfg.architecture === "mp" ? r.sae.cfg.max_iterations : null,
      fvu: e.reconstruction.fvu, l0: e.sparsity.l0, frac_alive: e.sparsity.frac_alive,
      ce_loss_recovered: e.ce_loss_recovered, kl_div_score: e.kl_div_score,
      ce_clean: e.ce_loss_clean, ce_with_sae: e.ce_loss_with_sae, ce_zero_ablated: e.ce_loss_zero_ablated,
      train_seconds: trainSeconds,
    };
    // VAEase's code is dense; its sparsity is which dims its variance leaves open.
    const activeDimsMean = sae instanceof VaeaseSae ? meanActiveDims(sae, analysisRows) : null;
    if (activeDimsMean !== null) row.l0 = activeDimsMean;
    writeJsonAtomic(join(out, "eval.json"), { ...e, active_dims: activeDimsMean });
    rows.push(row);
    log(JSON.stringify(row));
    for (const level of e.levels ?? []) {
      levels.push({
        run: run.name, width: level.width, fvu: level.reconstruction.fvu, l0: level.l0,
        ce_loss_recovered: level.ce_loss_recovered, kl_div_score: level.kl_div_score,
      });
    }
    // 4. The vSAE paper's latent analyses (saekit analyze) on stored activations.
    analyses.push({ name: run.name, source: out, analysis: analyzeLatents(sae, analysisRows.x, analysisRows.rows, { seed: o.seed }) });
  }
  // 5. k-sparse probing (saekit probe) of every SAE on where the story is set; the model
  // runs once for all of them.
  const probing = join(o.outDir, "settings.jsonl");
  const labeled = await storySettings(text);
  writeFileAtomic(probing, labeled.map((t) => JSON.stringify(t)).join("\n") + "\n");
  const split = splitByClass(labeled, { ...PROBE_DEFAULTS, seed: 42 });
  const cfg = loaded.model.cfg;
  const probed = runSparseProbing(loaded.model, loaded.tokenizer!, saved, split, {
    hook: o.hook, ctx: o.ctx, bos: cfg.bosTokenId, special: specialTokens(cfg, loaded.tokenizer),
    kValues: PROBE_DEFAULTS.kValues, full: true, seed: 42, progress: o.progress,
  });
  const probeRows: ProbeRow[] = [probed.model, ...probed.saes].map((p, i) => ({
    run: i === 0 ? "model" : runs[i - 1]!.name, top_k: p.top_k_test_accuracy, all: p.test_accuracy!,
  }));
  log(JSON.stringify({ probing: probeRows }));

  writeAnalysisReport(join(o.outDir, "analysis"), analyses);
  writeTrainingReport(join(o.outDir, "training"), runs.map((run) => readRunMetrics(join(o.outDir, "runs", run.name))));
  const info = { model: modelPath, hook: o.hook, ctx: o.ctx, harvested_tokens: readManifest(store).tokens, eval_tokens: o.evalTokens, options: o };
  const probeInfo = { dataset: probing, classes: probed.classes, train_texts: probed.train_texts, test_texts: probed.test_texts };
  writeJsonAtomic(join(o.outDir, "results.json"), { ...info, rows, levels, probing: { ...probeInfo, rows: probeRows } });
  const tables = [formatExampleTable(rows), ...(levels.length ? [formatLevelTable(levels)] : []), formatProbeTable(probeRows)];
  writeFileAtomic(join(o.outDir, "results.md"), tables.join("\n\n") + "\n");
  return { rows, levels, probing: probeRows };
}

/** Stories of a TinyStories text file that name exactly one setting, labelled with it. */
export async function storySettings(text: string): Promise<LabeledText[]> {
  const patterns = STORY_SETTINGS.map((s) => [s, new RegExp(`\\b${s}\\b`)] as const);
  const out: LabeledText[] = [];
  for await (const story of readDocuments(text)) {
    const named = patterns.filter(([, re]) => re.test(story));
    if (named.length === 1) out.push({ text: story, label: named[0]![0] });
  }
  return out;
}

/** Up to 20,000 stored activations (the first shard's), for the latent analyses. */
function analysisSample(store: string, limit = 20_000): { x: Float32Array; rows: number } {
  const m = readManifest(store);
  const x = readShardActivations(store, m, 0);
  return { x, rows: Math.min(limit, x.length / m.d) };
}

/** VAEase's mean active dimensions (two-cluster rule) over up to 4096 of the sampled activations. */
function meanActiveDims(sae: VaeaseSae, sample: { x: Float32Array; rows: number }): number {
  const rows = Math.min(4096, sample.rows);
  const logvar = sae.logVariances(sample.x.subarray(0, rows * sae.cfg.d_in), rows);
  const kappa = sae.cfg.d_sae;
  let total = 0;
  for (let r = 0; r < rows; r++) total += activeDims(logvar.subarray(r * kappa, (r + 1) * kappa));
  return total / rows;
}

/** The results as a Markdown table. */
export function formatExampleTable(rows: ExampleRow[]): string {
  const head = "| run | k | FVU | L0 | alive | CE recovered | KL score | CE with SAE |";
  const sep = "|---|---|---|---|---|---|---|---|";
  const lines = rows.map((r) => `| ${r.run} | ${r.k ?? "-"} | ${r.fvu.toFixed(3)} | ${r.l0.toFixed(1)} | ${r.frac_alive.toFixed(3)} | ${r.ce_loss_recovered.toFixed(3)} | ${r.kl_div_score.toFixed(3)} | ${r.ce_with_sae.toFixed(3)} |`);
  return [head, sep, ...lines].join("\n");
}

/** The Matryoshka levels as a Markdown table. */
export function formatLevelTable(rows: LevelRow[]): string {
  const head = "| run | level width | FVU | L0 | CE recovered | KL score |";
  const sep = "|---|---|---|---|---|---|";
  const lines = rows.map((r) => `| ${r.run} | ${r.width} | ${r.fvu.toFixed(3)} | ${r.l0.toFixed(1)} | ${r.ce_loss_recovered.toFixed(3)} | ${r.kl_div_score.toFixed(3)} |`);
  return [head, sep, ...lines].join("\n");
}

/** The probing accuracies as a Markdown table. */
export function formatProbeTable(rows: ProbeRow[]): string {
  const ks = Object.keys(rows[0]?.top_k ?? {});
  const head = `| probe on | ${ks.map((k) => `top ${k}`).join(" | ")} | all |`;
  const sep = `|---|${ks.map(() => "---|").join("")}---|`;
  const lines = rows.map((r) => `| ${r.run} | ${ks.map((k) => r.top_k[k]!.toFixed(3)).join(" | ")} | ${r.all.toFixed(3)} |`);
  return [head, sep, ...lines].join("\n");
}
