/**
 * `saekit train`: train an SAE of any architecture on stored activations, synthetic data,
 * or a language model's activations computed as training reads them.
 */
import { join } from "node:path";
import { Command, Option } from "commander";
import { setThreads } from "../core/kernels.js";
import { DatasetSource } from "../data/dataset-source.js";
import { LmSource } from "../data/lm-source.js";
import { SpliceSource } from "../data/splice-source.js";
import { evaluateSpliceOn } from "../eval/splice.js";
import type { LanguageModel } from "../lm/model.js";
import { openActivationSource } from "../data/open.js";
import { fetchSae } from "../sae/open.js";
import type { ActivationSource } from "../data/source.js";
import { StoreSource } from "../data/store-source.js";
import { storedContexts, storesIn } from "../data/store.js";
import { openContexts, takeContexts } from "../lm/dataset.js";
import type { SaeMetadata } from "../sae/saelens.js";
import type { Sae } from "../sae/sae.js";
import { ARCHITECTURES, type Architecture, type SaeConfig, type SaeConfigInput, defaultConfig, settingsOf } from "../sae/config.js";
import { scoreSynthetic } from "../synthetic/score.js";
import { OPTIMIZERS } from "../train/optimizer.js";
import { LR_SCHEDULES } from "../train/schedule.js";
import { type RunSpec, type TrainOptions, type TrainResult, TrainingInterrupted, evenSaveSteps, logSaveSteps, trainSaesUntil } from "../train/trainer.js";
import type { LoadedModel } from "../lm/load.js";
import { addDatasetOptions, addModelOptions, contextOptions, openModel } from "./lm-options.js";
import { defaultThreads, finiteNumber, intList, matmulPrecisionOption, nonNegativeInt, numberList, positiveInt, printJson, tokenExclusions, useMatmulPrecision } from "./options.js";
import { dataExclusions, modelExclusions } from "./exclusions.js";

/** Adds the SAE architecture options of `train` (those a --sweep can vary). */
export function addSaeOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--arch <name>", "architecture").choices([...ARCHITECTURES]).default("topk"))
    .option("--d-sae <n>", "number of latents (default: 8 x d_in)", positiveInt)
    .option("--expansion-factor <n>", "number of latents as a multiple of d_in (SAELens', sparsify's expansion_factor), instead of --d-sae", positiveInt)
    .option("--k <n>", "active latents per token (topk, abstopk, batchtopk, matryoshka, vsae); mp: at most k pursuit steps", positiveInt)
    .option("--aux-k <n>", "AuxK latents (0 disables; default d_in/2)", nonNegativeInt)
    .option("--multi-topk", "topk, abstopk: the top 4k latents also reconstruct (loss += ||x - x_hat_4k||^2 / 8), so the SAE works at larger k (Gao et al. 2024, sparsify)")
    .addOption(new Option("--activation <a>", "topk: the k largest, or sparsify's groupmax: the largest of each of k runs of d_sae / k latents").choices(["topk", "groupmax"]))
    .option("--aux-alpha <x>", "AuxK loss weight (default 1/32)", finiteNumber)
    .addOption(new Option("--decoder-norm <mode>", "unit: decoder rows kept at norm 1; none: free").choices(["unit", "none"]))
    .option("--no-b-dec-on-input", "do not subtract b_dec from the input before encoding")
    .option("--skip-connection", "transcoders: add a linear skip W_skip x to the output (skip transcoders, as sparsify and SAELens train them)")
    .option("--matryoshka-widths <list>", "matryoshka: nested dictionary sizes, e.g. 256,1024,4096 (d_sae is appended if missing; default d_sae/16, /8, /4, /2, d_sae)", intList)
    .option("--level-weights <list>", "matryoshka: weight of each level's reconstruction loss (default 1 each)", numberList)
    .option("--l1 <x>", "relu, gated: L1 coefficient; panneal, gated_anneal: the penalty's starting coefficient (default 0.1)", finiteNumber)
    .option("--l1-warmup <n>", "relu, gated, panneal, gated_anneal: steps over which the coefficient ramps up", nonNegativeInt)
    .addOption(new Option("--sparsity-function <f>", "panneal, gated_anneal: the penalty per token, sum_j u_j^p (Lp^p, the default) or its 1/p-th power (Lp); u_j = f_j ||W_dec_j|| (the gate's ReLU for gated_anneal)").choices(["Lp^p", "Lp"]))
    .option("--p-start <x>", "panneal, gated_anneal: the exponent p at the start (default 1: the L1 penalty)", finiteNumber)
    .option("--p-end <x>", "panneal, gated_anneal: where p heads (default 0.2)", finiteNumber)
    .option("--anneal-start <n>", "panneal, gated_anneal: the step of the first update of p (default 10000, or a quarter of --steps when less)", nonNegativeInt)
    .option("--anneal-end <n>", "panneal, gated_anneal: the step of the last update (default: the end of the run, so p stops one update short of --p-end)", nonNegativeInt)
    .option("--p-updates <n>", "panneal, gated_anneal: how many times p (and the coefficient, to keep the penalty's size) is updated (default 10)", positiveInt)
    .option("--p-queue <n>", "panneal, gated_anneal: at most this many batches, the latest since the last update, compare the penalty at the current and the next p (default 10)", positiveInt)
    .option("--l0 <x>", "jumprelu: L0 coefficient", finiteNumber)
    .option("--l0-warmup <n>", "jumprelu: steps over which L0 ramps up", nonNegativeInt)
    .option("--bandwidth <x>", "jumprelu: straight-through kernel width", finiteNumber)
    .option("--init-threshold <x>", "jumprelu: initial threshold", finiteNumber)
    .addOption(new Option("--sparsity-loss <mode>", "jumprelu: step (L0 count, GDM) or tanh (tanh(c f ||W_dec_j||), Anthropic)").choices(["step", "tanh"]))
    .option("--tanh-scale <c>", "jumprelu: c of the tanh sparsity loss (default 4)", finiteNumber)
    .option("--pre-act-loss <a>", "jumprelu: weight of the pre-activation loss on dead latents (0: off; SAELens suggests 3e-6)", finiteNumber)
    .option("--target-l0 <n>", "jumprelu (step): penalise (L0 / n - 1)^2 instead of L0, as dictionary_learning does", finiteNumber)
    .option("--beta <x>", "vsae: KL weight", finiteNumber)
    .option("--kl-warmup <n>", "vsae: KL annealing steps (default 10% of --steps)", nonNegativeInt)
    .addOption(new Option("--kl-scope <scope>", "vsae: KL over all latents or only the selected ones").choices(["all", "active"]))
    .addOption(new Option("--variance <kind>", "vsae: fixed sigma = 1 or a learned log-variance head").choices(["fixed", "learned"]))
    .addOption(new Option("--topk-mode <mode>", "vsae: TopK after ReLU or by |z| keeping sign").choices(["relu", "abs"]))
    .option("--relu-mu", "vsae: mu = ReLU(pre), as the published code")
    .option("--residual-threshold <x>", "mp: a token's pursuit stops once its residual norm is below this (default 0.01, SAELens')", finiteNumber)
    .option("--max-iterations <n>", "mp: at most this many pursuit steps per token (default d_in, SAELens')", positiveInt)
    .option("--hidden <widths>", "vaease: encoder Swish hidden layer widths, e.g. 128,128", intList)
    .option("--init-log-gamma <x>", "vaease: initial log decoder variance", finiteNumber)
    .option("--no-gate", "vaease: the decoder sees z, not (1 - sigma) z: a plain VAE, the VAEase paper's baseline");
}

/** The SaeConfig the SAE options describe. */
export function saeConfigFromOptions(o: Record<string, unknown>, dIn: number, steps: number): SaeConfig {
  const input = saeConfigInput(o, dIn);
  return defaultConfig({
    ...input,
    d_sae: input.d_sae ?? 8 * dIn,
    kl_warmup_steps: input.kl_warmup_steps ?? (o.arch === "vsae" ? Math.floor(0.1 * steps) : undefined),
    anneal_start: input.anneal_start ?? (o.arch === "panneal" || o.arch === "gated_anneal" ? Math.min(10000, Math.floor(0.25 * steps)) : undefined),
  });
}

/**
 * The config of a fine-tuning run (--from): the starting SAE's, with what the SAE options
 * given on the command line change (--k, --aux-k, --l1, ...); --arch and --d-sae must agree.
 */
export function fineTuneConfig(start: SaeConfig, given: Record<string, unknown>, dIn: number): SaeConfig {
  const from = `--from is a ${start.architecture} SAE of ${start.d_in} x ${start.d_sae}`;
  if (given.arch !== undefined && given.arch !== start.architecture) throw new Error(`${from}; --arch ${String(given.arch)} cannot change that`);
  if (given.dSae !== undefined && given.dSae !== start.d_sae) throw new Error(`${from}; --d-sae ${String(given.dSae)} cannot change that`);
  if (given.expansionFactor !== undefined && (given.expansionFactor as number) * dIn !== start.d_sae) {
    throw new Error(`${from}; --expansion-factor ${String(given.expansionFactor)} cannot change that`);
  }
  if (dIn !== start.d_in) throw new Error(`${from}: it reads activations of width ${start.d_in}, the data has width ${dIn}`);
  const changes = Object.entries(saeConfigInput({ ...given, arch: start.architecture }, dIn)).filter(([, v]) => v !== undefined);
  return defaultConfig({ ...start, ...Object.fromEntries(changes) } as SaeConfigInput);
}

/**
 * Set by sweepRuns on the runs of a sweep over --arch: each run leaves out the options of
 * the other architectures swept (sweepRuns refuses options of none of them).
 */
const OTHER_ARCH_OPTIONS_DROPPED = Symbol("other architectures' options dropped");

/** The SAE options as config fields; undefined where an option was not given. */
function saeConfigInput(o: Record<string | symbol, unknown>, dIn: number): SaeConfigInput {
  if (o.activation !== undefined && o.arch !== "topk") throw new Error(`--activation chooses how a topk SAE selects its latents; this is --arch ${String(o.arch)}`);
  if (o.dSae !== undefined && o.expansionFactor !== undefined) throw new Error("give --d-sae or --expansion-factor, not both");
  const architecture = o.arch as Architecture;
  const { fields, stray } = splitOptions(o);
  // An option of another architecture would be stored and ignored: refuse it by name.
  if (stray.length && !o[OTHER_ARCH_OPTIONS_DROPPED]) {
    throw new Error(`${stray.join(", ")}: not ${stray.length === 1 ? "an option" : "options"} of --arch ${architecture} (saekit train --help says which architectures each option is for)`);
  }
  return {
    architecture,
    d_in: dIn,
    d_sae: (o.dSae ?? (o.expansionFactor !== undefined ? (o.expansionFactor as number) * dIn : undefined)) as number,
    ...Object.fromEntries(fields.map(([key, , v]) => [key, v])),
  };
}

/**
 * The SAE options as [field, flag, value] for the fields --arch's architecture has, and the
 * flags given that set none of them (stray).
 */
function splitOptions(o: Record<string, unknown>): { fields: Array<[string, string, unknown]>; stray: string[] } {
  const settings = new Set(settingsOf(o.arch as Architecture));
  const all = saeOptionFields(o);
  return {
    fields: all.filter(([key]) => settings.has(key)),
    stray: all.filter(([key, , v]) => v !== undefined && !settings.has(key)).map(([, flag]) => flag),
  };
}

/** [config field, the option that sets it, its value (undefined: not given)] for each SAE option. */
function saeOptionFields(o: Record<string, unknown>): Array<[string, string, unknown]> {
  return [
    // A matching pursuit's budget is its number of steps: --k means at most k of them.
    ["k", "--k", o.arch === "mp" ? undefined : o.k],
    ["aux_k", "--aux-k", o.auxK],
    ["multi_topk", "--multi-topk", o.multiTopk === true ? true : undefined],
    ["activation", "--activation", o.activation],
    ["residual_threshold", "--residual-threshold", o.residualThreshold],
    ["max_iterations", o.maxIterations !== undefined ? "--max-iterations" : "--k", o.maxIterations ?? (o.arch === "mp" ? o.k : undefined)],
    ["aux_alpha", "--aux-alpha", o.auxAlpha],
    ["matryoshka_widths", "--matryoshka-widths", o.matryoshkaWidths],
    ["level_weights", "--level-weights", o.levelWeights],
    ["decoder_norm", "--decoder-norm", o.decoderNorm],
    ["apply_b_dec_to_input", "--no-b-dec-on-input", o.bDecOnInput === false ? false : undefined],
    ["skip_connection", "--skip-connection", o.skipConnection === true ? true : undefined],
    ["l1_coefficient", "--l1", o.l1],
    ["l1_warmup_steps", "--l1-warmup", o.l1Warmup],
    ["sparsity_function", "--sparsity-function", o.sparsityFunction],
    ["p_start", "--p-start", o.pStart],
    ["p_end", "--p-end", o.pEnd],
    ["anneal_start", "--anneal-start", o.annealStart],
    ["anneal_end", "--anneal-end", o.annealEnd],
    ["n_sparsity_updates", "--p-updates", o.pUpdates],
    ["sparsity_queue_length", "--p-queue", o.pQueue],
    ["l0_coefficient", "--l0", o.l0],
    ["l0_warmup_steps", "--l0-warmup", o.l0Warmup],
    ["bandwidth", "--bandwidth", o.bandwidth],
    ["init_threshold", "--init-threshold", o.initThreshold],
    ["sparsity_loss_mode", "--sparsity-loss", o.sparsityLoss],
    ["tanh_scale", "--tanh-scale", o.tanhScale],
    ["pre_act_loss_coefficient", "--pre-act-loss", o.preActLoss],
    ["target_l0", "--target-l0", o.targetL0],
    ["beta", "--beta", o.beta],
    ["kl_warmup_steps", "--kl-warmup", o.klWarmup],
    ["kl_scope", "--kl-scope", o.klScope],
    ["variance", "--variance", o.variance],
    ["topk_mode", "--topk-mode", o.topkMode],
    ["relu_mu", "--relu-mu", o.reluMu === true ? true : undefined],
    ["hidden", "--hidden", o.hidden],
    ["init_log_gamma", "--init-log-gamma", o.initLogGamma],
    ["gate", "--no-gate", o.gate === false ? false : undefined],
  ];
}

/** SAELens metadata for a run: the model, hook and context of a harvested store. */
function storeMetadata(source: ActivationSource, data: string): SaeMetadata {
  if (source instanceof DatasetSource) return { dataset_path: data, ...source.activations.provenance() };
  if (!(source instanceof StoreSource)) return { dataset_path: data };
  const m = source.manifest;
  return {
    model_name: m.model, hook_name: m.hook, ...(m.target_hook ? { hook_name_out: m.target_hook } : {}),
    context_size: m.ctx, prepend_bos: m.prepend_bos, dataset_path: m.dataset.spec,
  };
}

/**
 * trainSaes, stopping cleanly on Ctrl-C: the runs checkpoint the steps done and the command
 * says how to go on (exit status 130); null then. A second Ctrl-C quits at once.
 */
async function trainStoppably(specs: RunSpec[], source: ActivationSource): Promise<TrainResult[] | null> {
  const stop = new AbortController();
  const quit = () => process.exit(130);
  const interrupted = () => {
    process.stderr.write("\nsaekit: stopping after this step (Ctrl-C again to quit at once)\n");
    stop.abort();
    process.once("SIGINT", quit);
  };
  process.once("SIGINT", interrupted);
  try {
    return await trainSaesUntil(specs, source, stop.signal);
  } catch (err) {
    if (!(err instanceof TrainingInterrupted)) throw err;
    const dirs = specs.flatMap((s) => s.options.outDir ?? []);
    const where = dirs.length ? `; checkpointed in ${dirs.join(", ")}: rerun with --resume to continue` : " (no --out: nothing kept)";
    process.stderr.write(`saekit: ${err.message}${where}\n`);
    process.exitCode = 130;
    return null;
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGINT", quit);
  }
}

/**
 * The activations of `--hook` computed from `--model` over `--dataset` as training reads
 * them: the first --tokens positions' contexts held in memory, mixed as a store would be;
 * with --eval-every, the next --eval-tokens positions' contexts held out for evaluation.
 */
async function openModelSource(o: Record<string, any>): Promise<{ source: LmSource; model: LanguageModel; heldOut: Int32Array[]; excluded?: number[] }> {
  if (!o.dataset || !o.hook) throw new Error("training on --model needs --dataset and --hook");
  const hooks = String(o.hook).split(",");
  const targets: string[] | undefined = o.targetHook?.split(",");
  // Splicing the SAE in (--eval-every) runs the whole model; training alone, as far as the hooks.
  const loaded = await openModel(o as { model: string }, o.evalEvery > 0 ? undefined : [...hooks, ...(targets ?? [])]);
  const perContext = o.ctx - (o.excludeBos ? 1 : 0);
  const tokens: number = o.tokens ?? o.steps * o.batch;
  const src = openContexts(loaded, o.dataset, contextOptions(o));
  const trainCount = Math.ceil(tokens / Math.max(1, perContext));
  const evalCount = o.evalEvery > 0 ? Math.ceil(o.evalTokens / Math.max(1, o.ctx - 1)) : 0;
  const all = await takeContexts(src.contexts, trainCount + evalCount);
  const contexts = all.slice(0, trainCount);
  if (contexts.length === 0) throw new Error(`${o.dataset}: no contexts of ${o.ctx} tokens`);
  const heldOut = all.slice(trainCount);
  if (evalCount > 0 && heldOut.length === 0) throw new Error(`${o.dataset}: no text left after the training contexts to evaluate on; lower --tokens or drop --eval-every`);
  const excluded = modelExclusions(o.excludeTokens, loaded);
  const source = new LmSource(loaded.model, contexts, {
    hook: hooks, targetHook: targets, excludeBos: o.excludeBos === true, excludeTokens: excluded, seed: o.seed, bufferRows: o.bufferRows,
    batch: o.lmBatch, info: { model: o.model, dataset: o.dataset, fingerprint: src.fingerprint },
  });
  return { source, model: loaded.model, heldOut, excluded };
}

/**
 * End-to-end training's batches (--loss ce / kl): the first --tokens positions' contexts of
 * --dataset, whole, through the whole model (the backward runs through every layer after
 * the hook); with --eval-every, the next --eval-tokens positions' contexts held out.
 */
async function openSpliceSource(o: Record<string, any>): Promise<{ source: SpliceSource; heldOut: Int32Array[] }> {
  if (!o.dataset || !o.hook) throw new Error(`--loss ${o.loss} needs --dataset and --hook`);
  const refused = [
    String(o.hook).includes(",") || String(o.hook).includes("*") ? "several hooks" : "", o.targetHook ? "--target-hook" : "", o.excludeBos ? "--exclude-bos" : "",
    o.excludeTokens ? "--exclude-tokens" : "",
  ].filter(Boolean);
  if (refused.length > 0) throw new Error(`--loss ${o.loss} trains one SAE on whole contexts at one hook; drop ${refused.join(", ")}`);
  if (o.batch % o.ctx !== 0) throw new Error(`--loss ${o.loss} trains on whole contexts: --batch ${o.batch} must be a multiple of --ctx ${o.ctx}`);
  const loaded = await openModel(o as { model: string });
  const src = openContexts(loaded, o.dataset, contextOptions(o));
  const tokens: number = o.tokens ?? o.steps * o.batch;
  const trainCount = Math.ceil(tokens / o.ctx);
  const evalCount = o.evalEvery > 0 ? Math.ceil(o.evalTokens / (o.ctx - 1)) : 0;
  const all = await takeContexts(src.contexts, trainCount + evalCount);
  const contexts = all.slice(0, trainCount);
  if (contexts.length === 0) throw new Error(`${o.dataset}: no contexts of ${o.ctx} tokens`);
  const heldOut = all.slice(trainCount);
  if (evalCount > 0 && heldOut.length === 0) throw new Error(`${o.dataset}: no text left after the training contexts to evaluate on; lower --tokens or drop --eval-every`);
  const source = new SpliceSource(loaded.model, contexts, {
    hook: o.hook, loss: o.loss, downstream: o.downstreamMse, seed: o.seed, info: { model: o.model, dataset: o.dataset, fingerprint: src.fingerprint },
  });
  return { source, heldOut };
}

/**
 * What training on a model logs every --eval-every steps: the SAE spliced in at its hook on
 * the held-out contexts (CE loss with it, CE loss recovered, KL score), as SAELens logs.
 */
function spliceEvaluation(model: LanguageModel, heldOut: Int32Array[], ctx: number, hook: string, hookOut?: string, excludeTokens?: readonly number[]) {
  return (sae: Sae) => {
    const r = evaluateSpliceOn(model, sae, heldOut, { hook, hookOut, tokens: heldOut.length * (ctx - 1), ctx, excludeTokens, progress: false });
    return { ce_loss_with_sae: r.ce_loss_with_sae, ce_loss_recovered: r.ce_loss_recovered, kl_div_score: r.kl_div_score };
  };
}

/**
 * --eval-every for stored activations: each store's SAE is spliced into the model its
 * manifest names (--tokenizer for a llama2.c one), on the text after the contexts the
 * store holds, packed as the harvest packed them. Models are loaded once.
 */
function storeEvaluation(o: Record<string, any>): (source: ActivationSource) => Promise<Pick<TrainOptions, "evalEvery" | "evaluate">> {
  const models = new Map<string, Promise<LoadedModel>>();
  return async (source) => {
    if (!(source instanceof StoreSource)) throw new Error("--eval-every splices the SAE into a model: train on --model, or on an activation store whose manifest names one");
    const m = source.manifest;
    // The model as the store was harvested from it, bf16 weights included.
    const weights = m.model_weights ?? "f32";
    const key = `${m.model} ${weights}`;
    if (!models.has(key)) models.set(key, openModel({ ...o, model: m.model, modelDtype: weights }));
    const loaded = await models.get(key)!;
    const stored = storedContexts(m);
    const src = openContexts(loaded, m.dataset.spec, { ...contextOptions(o), ctx: m.ctx, prependBos: m.prepend_bos, skip: stored });
    if (src.fingerprint !== m.dataset.fingerprint) throw new Error(`${m.dataset.spec} has changed since the store was harvested from it; its held-out text is not what the store left out`);
    const heldOut = await takeContexts(src.contexts, Math.ceil(o.evalTokens / (m.ctx - 1)));
    if (heldOut.length === 0) throw new Error(`${m.dataset.spec}: no text left after the ${stored} contexts the store holds, to evaluate on`);
    // Positions training left out stay clean in the evaluation too.
    const excluded = dataExclusions(o.excludeTokens, source.dir);
    return { evalEvery: o.evalEvery, evaluate: spliceEvaluation(loaded.model, heldOut, m.ctx, m.hook, m.target_hook, excluded) };
  };
}

/** SAELens metadata for a run on a model's activations at `hook` (predicting `targetHook`'s). */
function modelMetadata(o: Record<string, any>, hook: string, targetHook?: string): SaeMetadata {
  return {
    model_name: o.model, hook_name: hook, ...(targetHook ? { hook_name_out: targetHook } : {}),
    context_size: o.ctx, prepend_bos: o.bos !== false, dataset_path: o.dataset,
  };
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command("train")
    .description("train an SAE (or, on a store harvested with --target-hook, a transcoder) on stored activations, synthetic data, or a model's activations computed as it trains (--model); writes metrics.jsonl, checkpoints and the SAE in SAELens format to --out")
    .option("--data <source>", "activations: .safetensors, .npy, .pt (torch.save of a tensor or a dict of them), raw f32 (with --shape), an activation store folder (or a folder of stores, from harvesting several hooks: one SAE each, in --out/<store>), a SAELens activation cache (CacheActivationsRunner's Hugging Face dataset folder, an .arrow file, or .parquet files as pushed to the hub, local or hf:ORG/NAME), or synthetic:superposition / synthetic:subspaces")
    .option("--tensor <name>", "tensor to read from a .safetensors or .pt file, or column of a SAELens cache / .arrow / .parquet file (default: the only one of float vectors)")
    .option("--shape <rows,d>", "shape of a raw float32 file", intList)
    .option("--out <dir>", "run folder", "runs/sae")
    .option("--resume", "continue from the checkpoint in --out if there is one")
    .option("--overwrite", "start afresh in an --out that holds another run (its files are removed first; without this, or --resume, such a folder is refused)")
    .option("--from <sae>", "fine-tune: start from this SAE (any format saekit reads, or hf:ORG/NAME[/path]) instead of a fresh one; its config, changed by the SAE options given here (--k, --l1, ...); a fresh optimizer")
    .option("--steps <n>", "optimizer steps", positiveInt, 2000)
    .option("--batch <n>", "tokens per step", positiveInt, 4096)
    .addOption(new Option("--optimizer <kind>", "adam (SAELens, dictionary_learning); signum: sparsify's default, Schedule-Free SignSGD (momentum 0.95), no warm-up or decay by default, the SAE saved is its running average; or muon: sparsify's Muon (orthogonalized Nesterov momentum on the weight matrices, Adam on the rest; weight decay 0.1, a linear decay to 0 from the start by default)").choices([...OPTIMIZERS]).default("adam"))
    .option("--lr <x>", "peak learning rate (default 4e-4 for adam; sparsify's for signum, 5e-3 / sqrt(d_sae / 2^14), and muon, 2e-3)", finiteNumber)
    .option("--warmup-steps <n>", "linear LR warm-up (default min(1000, 5% of steps); none for signum or muon)", nonNegativeInt)
    .option("--decay-start <n>", "step where linear LR decay to 0 begins (default 80% of steps for constant, none after a cosine or for signum; 0 for muon)", nonNegativeInt)
    .addOption(new Option("--lr-schedule <kind>", "LR between warm-up and decay: constant, cosine (annealing to --lr-end) or cosine_restarts (SAELens' cosineannealingwarmrestarts)").choices([...LR_SCHEDULES]).default("constant"))
    .option("--lr-end <x>", "cosine schedules: final learning rate (default lr / 10)", finiteNumber)
    .option("--lr-cycles <n>", "cosine_restarts: number of cosine cycles", positiveInt, 1)
    .option("--clip <x>", "clip the global gradient norm (0: off)", finiteNumber, 1)
    .option("--weight-decay <x>", "decoupled weight decay (default 0; muon: 0.1 on its matrices, as sparsify)", finiteNumber)
    .option("--seed <n>", "random seed", nonNegativeInt, 0)
    .addOption(new Option("--b-dec-init <how>", "decoder bias init").choices(["mean", "geometric_median", "zeros"]).default("mean"))
    .addOption(new Option("--normalize <how>", "expected_norm: scale inputs so E||x||^2 = d_in (folded at save)").choices(["none", "expected_norm"]).default("none"))
    .option("--dead-after-tokens <n>", "a latent is dead after this many tokens without firing", positiveInt, 10_000_000)
    .option("--resample-every <steps>", "resample latents silent for the last half of every this many steps (Anthropic, dictionary_learning; 0: never)", nonNegativeInt, 0)
    .option("--k-decay-steps <n>", "topk, abstopk: start at k = min(d_sae, 10 x d_in) and decay linearly to --k over this many steps, as sparsify's k_decay_steps (0: --k throughout)", nonNegativeInt, 0)
    .option("--feature-sampling-window <n>", "steps over which sparsity.safetensors counts each latent's firing frequency (the final ones)", positiveInt, 2000)
    .option("--log-every <n>", "steps per metrics record", positiveInt, 100)
    .option("--checkpoint-every <n>", "steps per checkpoint (0: only at the end)", nonNegativeInt, 1000)
    .option("--save-best", "also save the SAE to --out/best at each checkpoint whose step's training loss is the lowest so far (sparsify's save_best)")
    .option("--n-checkpoints <n>", "also save the SAE (SAELens format) to --out/checkpoints/<tokens trained> at every multiple of 1/n of the run's tokens before its end, as SAELens' n_checkpoints (n - 1 times when n divides the tokens)", positiveInt)
    .addOption(new Option("--checkpoint-spacing <how>", "--n-checkpoints: linear (SAELens) or log, n - 1 steps evenly spaced in log(step), ceil(steps^(i/n)), most of them early where an SAE changes fastest (lm-saes' log mode)").choices(["linear", "log"]).default("linear"))
    .option("--save-steps <list>", "also save the SAE to --out/checkpoints/<tokens trained> after each of these steps (dictionary_learning's save_steps), e.g. 100,1000,5000", intList)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .addOption(matmulPrecisionOption())
    .option("--buffer-rows <n>", "activation store or --model: rows mixed at a time", positiveInt, 262144)
    .option("--synth-d <n>", "synthetic: ambient dimension (default 64; subspaces 40)", positiveInt)
    .option("--synth-features <n>", "superposition: true features", positiveInt)
    .option("--synth-active <x>", "superposition: mean active features per sample", finiteNumber)
    .addOption(new Option("--synth-firing <kind>", "superposition: firing probabilities").choices(["uniform", "zipf"]))
    .addOption(new Option("--synth-magnitude <kind>", "superposition: magnitudes").choices(["uniform", "exponential", "halfnormal"]))
    .option("--synth-correlation <x>", "superposition: co-firing probability within groups", finiteNumber)
    .option("--synth-noise <x>", "superposition: Gaussian noise std", finiteNumber)
    .option("--synth-negative <p>", "superposition: probability that an active feature's coefficient is negative (0.5: every feature fires both ways)", finiteNumber)
    .option("--synth-subspaces <n>", "subspaces: number of subspaces", positiveInt)
    .option("--synth-subspace-dim <n>", "subspaces: dimension of each", positiveInt)
    .option("--hook <names>", "with --model: the hook to train on, its activations computed on the fly (no store); several, comma-separated or with * for one name part (blocks.*.hook_resid_post), train one SAE per hook from the same forward passes, each in --out/<hook>")
    .option("--target-hook <names>", "with --model: a later hook the SAE predicts instead (a transcoder); with several hooks, one each, paired in order (blocks.*.hook_mlp_out)")
    .option("--tokens <n>", "with --model: positions of text held in memory and cycled over (default: steps x batch, one pass)", positiveInt)
    .option("--exclude-bos", "with --model: leave each context's first position (BOS) out")
    .option("--exclude-tokens <ids>", "leave out the positions of these tokens, wherever they are (SAELens' exclude_special_tokens, sparsify's exclude_tokens): \"special\" for the model's BOS, EOS and special tokens (as a store's manifest lists them), or ids, e.g. 0,1; with --model, an activation store or a SAELens cache (by its token_ids)", tokenExclusions)
    .option("--lm-batch <n>", "with --model: contexts per forward pass", positiveInt, 16)
    .addOption(new Option("--loss <kind>", "with --model: what trains the SAE: its reconstruction error (fvu), or end to end, the model's loss with the reconstruction spliced in at --hook, backpropagated through the layers after it (sparsify's loss_fn): next-token cross-entropy (ce) or KL divergence from the clean model's predictions (kl); whole contexts, --batch a multiple of --ctx").choices(["fvu", "ce", "kl"]).default("fvu"))
    .option("--downstream-mse <w>", "with --loss ce|kl: add Braun et al.'s e2e+ds term, w / (blocks after the hook) times the sum over those blocks of the mean squared distance (per token, summed over d) between each block's output with the SAE spliced in and without it", finiteNumber, 0)
    .option("--eval-every <steps>", "with --model or an activation store: every this many steps, splice the SAE into the model (a store's manifest names it) on held-out text and log CE loss recovered and the KL score in metrics.jsonl (0: never)", nonNegativeInt, 0)
    .option("--eval-tokens <n>", "with --eval-every: held-out positions (the text after the training contexts, or after the store's)", positiveInt, 4096)
    .option("--sweep <setting=values>", "train one SAE per value (or combination of values, given several times) from the same batches, each in --out/<setting=value,...>, as dictionary_learning trains several on one buffer: an SAE or optimizer setting with comma-separated values, e.g. k=16,32,64 or lr=1e-3,3e-3 (repeatable)", (v: string, prev: string[] = []) => [...prev, v]);
  addModelOptions(cmd, false);
  addDatasetOptions(cmd, 128, false);
  addSaeOptions(cmd);
  cmd.action(async (o) => {
    setThreads(o.threads);
    useMatmulPrecision(o.matmulPrecision);
    if ((o.data === undefined) === (o.model === undefined)) throw new Error("give either --data (stored or synthetic activations) or --model with --dataset and --hook (activations computed as it trains)");
    // Fine-tuning: the SAE to start from, and the SAE options given on the command line.
    const start = o.from !== undefined ? (await fetchSae(o.from)) : null;
    const given = Object.fromEntries(Object.entries(o).filter(([key]) => cmd.getOptionValueSource(key) === "cli"));
    const runs = sweepRuns(cmd, o);
    // A source of (input, target) pairs trains a transcoder, whose input is not in its output
    // space: b_dec is then an output bias only.
    const configFor = (source: ActivationSource, dIn: number, ro: Record<string, any> = o) => start ? fineTuneConfig(start.sae.cfg, given, dIn)
      : saeConfigFromOptions(source.dTarget !== undefined ? { ...ro, bDecOnInput: false } : ro, dIn, o.steps);
    /** --from starts one SAE, --sweep one per setting on one stream: a run of several hooks or stores refuses them. */
    const one = (what: string) => {
      if (start) throw new Error(`--from fine-tunes one SAE; ${what} trains several: give one`);
      if (runs.length > 1) throw new Error(`--sweep varies one SAE's settings; ${what} trains several already: sweep one at a time`);
    };
    if (start && runs.length > 1) throw new Error("--from fine-tunes one SAE; --sweep trains several: give one");
    if (o.downstreamMse !== 0 && o.loss === "fvu") throw new Error("--downstream-mse is a term of end-to-end training: give --loss ce or kl");
    if (o.loss !== "fvu") {
      if (o.model === undefined) throw new Error(`--loss ${o.loss} splices the SAE into a model as it trains: give --model, --dataset and --hook`);
      const { source, heldOut } = await openSpliceSource(o);
      const evaluated = heldOut.length ? { evalEvery: o.evalEvery, evaluate: spliceEvaluation(source.model, heldOut, o.ctx, o.hook) } : {};
      const specs = runs.map((r) => ({
        cfg: configFor(source, source.d, r.o),
        options: {
          ...trainOptionsOf(r.o), ...(start ? { initialSae: start.sae } : {}), outDir: r.label ? join(o.out, r.label) : o.out, metadata: modelMetadata(o, o.hook),
          downstream: source, ...evaluated,
        },
      }));
      (await trainStoppably(specs, source))?.forEach((result, i) => printJson({
        out: specs[i]!.options.outDir, hook: o.hook, loss_fn: o.loss, ...(runs[i]!.label ? { sweep: runs[i]!.label } : {}),
        architecture: result.sae.cfg.architecture, steps: result.steps, tokens: result.tokens, ...(result.last ?? {}),
      }));
      return;
    }
    if (o.model !== undefined) {
      const { source, model, heldOut, excluded } = await openModelSource(o);
      if (source.parts.length > 1) one("--hook with several hooks");
      // One SAE per hook, all from the same forward passes; with several, each in its own
      // folder. With one hook, one SAE per setting of a sweep.
      const several = source.parts.length > 1;
      const jobs = several ? source.parts.map((p) => ({ p, r: runs[0]!, outDir: join(o.out, p.hook) }))
        : runs.map((r) => ({ p: source.parts[0]!, r, outDir: r.label ? join(o.out, r.label) : o.out }));
      const specs = jobs.map(({ p, r, outDir }) => ({
        cfg: configFor(source, p.d, r.o),
        options: {
          ...trainOptionsOf(r.o), ...(start ? { initialSae: start.sae } : {}), outDir, metadata: modelMetadata(o, p.hook, p.targetHook),
          ...(heldOut.length ? { evalEvery: o.evalEvery, evaluate: spliceEvaluation(model, heldOut, o.ctx, p.hook, p.targetHook, excluded) } : {}),
        },
        part: { offset: p.offset, targetOffset: p.targetOffset },
      }));
      (await trainStoppably(specs, source))?.forEach((result, i) => printJson({
        out: specs[i]!.options.outDir, hook: jobs[i]!.p.hook, ...(jobs[i]!.r.label ? { sweep: jobs[i]!.r.label } : {}),
        architecture: result.sae.cfg.architecture, steps: result.steps, tokens: result.tokens, ...(result.last ?? {}),
      }));
      return;
    }
    // With --eval-every, a store's SAE is spliced into the model its manifest names.
    const evaluation = o.evalEvery > 0 ? storeEvaluation(o) : async () => ({});
    // A folder of stores (a harvest of several hooks): one SAE per store, each in --out/<name>.
    const stores = storesIn(o.data);
    if (stores.length > 0) {
      one("a folder of stores");
      for (const name of stores) {
        const data = join(o.data, name);
        const source = await openActivationSource(data, { seed: o.seed, bufferRows: o.bufferRows, excludeTokens: dataExclusions(o.excludeTokens, data) });
        const outDir = join(o.out, name);
        const [result] = await trainStoppably([{ cfg: configFor(source, source.d), options: {
          ...trainOptionsOf(o), outDir, metadata: storeMetadata(source, data), ...(await evaluation(source)),
        } }], source) ?? [];
        if (!result) return;
        printJson({ out: outDir, data, architecture: result.sae.cfg.architecture, steps: result.steps, tokens: result.tokens, ...(result.last ?? {}) });
      }
      return;
    }
    const source = await openActivationSource(o.data, {
      seed: o.seed,
      hub: { cacheDir: o.cacheDir },
      bufferRows: o.bufferRows,
      excludeTokens: dataExclusions(o.excludeTokens, o.data),
      tensor: o.tensor,
      shape: o.shape,
      superposition: {
        d: o.synthD, nFeatures: o.synthFeatures, meanActive: o.synthActive, firing: o.synthFiring,
        magnitude: o.synthMagnitude, correlation: o.synthCorrelation, noise: o.synthNoise, negative: o.synthNegative,
      },
      subspaces: { d: o.synthD, nSubspaces: o.synthSubspaces, subspaceDim: o.synthSubspaceDim },
    });
    const metadata = storeMetadata(source, o.data);
    const evaluated = await evaluation(source);
    const specs = runs.map((r) => ({
      cfg: configFor(source, source.d, r.o),
      options: { ...trainOptionsOf(r.o), ...(start ? { initialSae: start.sae } : {}), outDir: r.label ? join(o.out, r.label) : o.out, metadata, ...evaluated },
    }));
    (await trainStoppably(specs, source))?.forEach((result, i) => {
      const score = scoreSynthetic(result.sae, source, result.inputScale);
      printJson({
        out: specs[i]!.options.outDir, ...(runs[i]!.label ? { sweep: runs[i]!.label } : {}),
        architecture: result.sae.cfg.architecture, steps: result.steps, tokens: result.tokens,
        ...(result.last ?? {}),
        ...(score.recovery ? { mmcs: score.recovery.mmcs, recovered: score.recovery.recovered, latents_per_feature: score.recovery.latents_per_feature } : {}),
        ...(score.subspaces ? { active_dims: score.subspaces.mean, active_dims_per_subspace: score.subspaces.perSubspace } : {}),
      });
    });
  });
}

/** The trainer options the command's options describe. */
function trainOptionsOf(o: Record<string, any>): TrainOptions {
  return {
    steps: o.steps, batchSize: o.batch, optimizer: o.optimizer, lr: o.lr, lrWarmupSteps: o.warmupSteps, lrDecayStart: o.decayStart,
    lrSchedule: o.lrSchedule, lrEnd: o.lrEnd, lrCycles: o.lrCycles,
    clipGradNorm: o.clip, weightDecay: o.weightDecay, matmulPrecision: o.matmulPrecision, seed: o.seed, bDecInit: o.bDecInit, normalizeActivations: o.normalize,
    deadAfterTokens: o.deadAfterTokens, resampleEvery: o.resampleEvery, kDecaySteps: o.kDecaySteps, featureSamplingWindow: o.featureSamplingWindow, logEvery: o.logEvery, checkpointEvery: o.checkpointEvery,
    saveBest: o.saveBest === true, saveSteps: snapshotSteps(o),
    outDir: o.out, resume: o.resume === true, overwrite: o.overwrite === true,
    onNotice: (message) => process.stderr.write(`saekit: ${message}\n`),
  };
}

/** The steps --save-steps names and --n-checkpoints spaces (linearly, as SAELens, or in log(step)). */
function snapshotSteps(o: Record<string, any>): number[] {
  const spaced = !o.nCheckpoints ? []
    : o.checkpointSpacing === "log" ? logSaveSteps(o.steps, o.nCheckpoints) : evenSaveSteps(o.steps, o.batch, o.nCheckpoints);
  return [...(o.saveSteps ?? []), ...spaced];
}

/**
 * The settings a sweep may vary: those of the SAE and of its optimization. What every run
 * of one stream must share (the data, steps, batch, precision) is not among them.
 */
const SWEEPABLE_TRAINING = ["optimizer", "lr", "warmup-steps", "decay-start", "lr-schedule", "lr-end", "lr-cycles", "clip", "weight-decay", "seed",
  "b-dec-init", "normalize", "dead-after-tokens", "resample-every", "k-decay-steps"];

/**
 * The runs --sweep asks for: every combination of the values given, each the command's
 * options with those values set, labelled "k=16,lr=0.001" (its folder under --out); one
 * unlabelled run without --sweep. Each value goes through the option's own parsing and
 * choices, so a sweep accepts exactly what the option does.
 */
export function sweepRuns(cmd: Command, o: Record<string, any>): Array<{ label: string | null; o: Record<string, any> }> {
  const entries: string[] = o.sweep ?? [];
  if (entries.length === 0) return [{ label: null, o }];
  const sweepable = new Set([...SWEEPABLE_TRAINING, ...addSaeOptions(new Command()).options.map((opt) => opt.long!.slice(2))]);
  let runs: Array<{ parts: string[]; o: Record<string, any> }> = [{ parts: [], o }];
  const seen = new Set<string>();
  for (const entry of entries) {
    const m = /^([a-z0-9-]+)=(.+)$/.exec(entry);
    if (!m) throw new Error(`--sweep ${entry}: write a setting and its values, e.g. k=16,32,64`);
    const [, name, list] = m as unknown as [string, string, string];
    const option = cmd.options.find((opt) => opt.long === `--${name}`);
    if (!option || !sweepable.has(name) || !(option.required || option.optional)) {
      throw new Error(`--sweep ${name}: not a setting a sweep can vary; it can vary the SAE's (--k, --d-sae, --l1, ...) and its optimization's (${SWEEPABLE_TRAINING.map((n) => `--${n}`).join(", ")})`);
    }
    if (seen.has(name)) throw new Error(`--sweep ${name} is given twice`);
    seen.add(name);
    const raw = list.split(",");
    const values = raw.map((v) => {
      if (option.argChoices && !option.argChoices.includes(v)) throw new Error(`--sweep ${name}: ${JSON.stringify(v)} is not one of ${option.argChoices.join(", ")}`);
      try {
        return option.parseArg ? option.parseArg(v, undefined) : v;
      } catch (err) {
        throw new Error(`--sweep ${name}=${v}: ${(err as Error).message}`);
      }
    });
    const key = option.attributeName();
    runs = runs.flatMap((r) => values.map((v, i) => ({ parts: [...r.parts, `${name}=${raw[i]}`], o: { ...r.o, [key]: v } })));
  }
  if (seen.has("arch")) {
    // Each architecture takes its own options; one that none of them takes is a mistake.
    const strays = runs.map((r) => new Set(splitOptions(r.o).stray));
    const none = [...strays[0]!].filter((flag) => strays.every((st) => st.has(flag)));
    if (none.length) throw new Error(`${none.join(", ")}: not ${none.length === 1 ? "an option" : "options"} of any architecture swept (--sweep arch=...)`);
    for (const r of runs) r.o = { ...r.o, [OTHER_ARCH_OPTIONS_DROPPED]: true };
  }
  return runs.map((r) => ({ label: r.parts.join(","), o: r.o }));
}
