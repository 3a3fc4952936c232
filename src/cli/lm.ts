/** `saekit harvest | eval | logits | generate`: commands that run a language model. */
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { writeSafetensors } from "../core/safetensors.js";
import type { FloatDType } from "../core/dtype.js";
import { saeBenchCoreOutput } from "../eval/saebench.js";
import { evaluateSplices, type SpliceEvalResult } from "../eval/splice.js";
import { openContexts } from "../lm/dataset.js";
import { clampingHook, generate, steeringHook } from "../lm/generate.js";
import { specialTokens } from "../lm/special-tokens.js";
import { harvestSites, harvestStores } from "../lm/harvest.js";
import { modelExclusions } from "./exclusions.js";
import { pretokenize } from "../data/pretokenize.js";
import type { LoadedModel } from "../lm/load.js";
import type { HookFn } from "../lm/model.js";
import { saeFolderPaths } from "../sae/open.js";
import { withInferenceK } from "../sae/registry.js";
import { decoderMatrix, workingBytes } from "../sae/sae.js";
import { defaultGroupMemory, loadInGroups } from "../util/load-groups.js";
import { addDatasetOptions, addModelOptions, addSaeModelDatasetOptions, contextOptions, openModel, openSaeAtHook, SAE_HELP } from "./lm-options.js";
import { defaultThreads, finiteNumber, intList, matmulPrecisionOption, nonNegativeInt, positiveInt, printJson, saeMemoryOption, tokenExclusions, useMatmulPrecision } from "./options.js";

export function registerLm(program: Command): void {
  const harvestCmd = program
    .command("harvest")
    .description("run a language model over a text dataset and store a hook's activations as sharded safetensors + manifest.json (resumable); several hooks fill one store each from the same forward passes; with --target-hook, a transcoder's input and output pairs")
    .requiredOption("--hook <names>", "hook point, e.g. blocks.0.hook_resid_post, or several: a comma-separated list or a pattern (blocks.*.hook_resid_post), one store each in --out/<hook>")
    .option("--target-hook <names>", "also store this later hook's activations as targets, e.g. blocks.0.hook_mlp_out for --hook blocks.0.ln2.hook_normalized (trains a transcoder); with several hooks, as many targets, paired in order")
    .requiredOption("--tokens <n>", "activation rows (tokens) to store", positiveInt)
    .requiredOption("--out <dir>", "store folder (rerunning resumes after the last complete shard)")
    .option("--batch <n>", "contexts per forward pass", positiveInt, 32)
    .addOption(new Option("--dtype <dtype>", "storage dtype").choices(["f32", "f16", "bf16"]).default("f32"))
    .option("--exclude-bos", "leave each context's first position (BOS) out of the stored activations (train --exclude-tokens special leaves out every BOS, EOS and special token, separators between documents included)")
    .option("--shard-tokens <n>", "rows per shard (each store holds one shard in memory while it fills)", positiveInt, 65536)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .addOption(matmulPrecisionOption());
  addModelOptions(harvestCmd);
  addDatasetOptions(harvestCmd);
  harvestCmd.action(async (o) => {
    setThreads(o.threads);
    useMatmulPrecision(o.matmulPrecision);
    const hooks = String(o.hook).split(",");
    const targets: string[] | undefined = o.targetHook?.split(",");
    // The model only as far as the last hook: an early layer of a big model loads in a fraction of the time.
    const loaded = await openModel(o, [...hooks, ...(targets ?? [])]);
    const sites = harvestSites(loaded.model, o.out, hooks, targets);
    const src = openContexts(loaded, o.dataset, contextOptions(o));
    const stores = await harvestStores(loaded.model, src.contexts, sites, {
      tokens: o.tokens, ctx: o.ctx, batch: o.batch,
      dtype: o.dtype.toUpperCase() as FloatDType, prependBos: o.bos !== false, excludeBos: o.excludeBos === true,
      shardTokens: o.shardTokens, modelName: o.model, dataset: { spec: o.dataset, fingerprint: src.fingerprint },
      specialTokens: specialTokens(loaded.model.cfg, loaded.tokenizer),
    });
    stores.forEach((m, i) => printJson({
      out: sites[i]!.outDir, model: m.model, hook: m.hook, ...(m.target_hook ? { target_hook: m.target_hook } : {}),
      d: m.d, ctx: m.ctx, dtype: m.dtype, tokens: m.tokens, shards: m.shards.length,
    }));
  });

  const pretokenizeCmd = program
    .command("pretokenize")
    .description("tokenize a text dataset into contexts once and write them as a pretokenized dataset (an input_ids column, one context per row, the layout of SAELens' pretokenize runner): .parquet or .jsonl, which every --dataset option reads back")
    .requiredOption("--tokens <n>", "tokens to write (whole contexts)", positiveInt)
    .requiredOption("--out <file>", "output .parquet or .jsonl")
    .option("--overwrite", "write over a file already at --out (without it, such a file is refused)");
  addModelOptions(pretokenizeCmd);
  addDatasetOptions(pretokenizeCmd);
  pretokenizeCmd.action(async (o) => {
    // Tokens need the tokenizer and the vocabulary size, not the blocks (sampled: text still loads it whole).
    const loaded = await openModel(o, ["hook_embed"]);
    const src = openContexts(loaded, o.dataset, contextOptions(o));
    const info = { model: o.model, tokenizer: o.tokenizer ?? o.model, dataset: o.dataset, context_size: o.ctx, prepend_bos: o.bos !== false, bos_token_id: loaded.bosId };
    const { rows } = await pretokenize(src.contexts, o.out, { ctx: o.ctx, tokens: o.tokens, info, overwrite: o.overwrite === true });
    printJson({ out: o.out, rows, ctx: o.ctx, tokens: rows * o.ctx });
  });

  const evalCmd = program
    .command("eval")
    .description("splice an SAE into the model: CE loss (clean / SAE / zero-ablated), CE loss recovered, KL score, FVU, cosine, L0, alive fraction, density histogram; --sae a folder of SAE folders (one per hook, a sparsify checkpoint) evaluates each")
    .option("--tokens <n>", "positions to evaluate", positiveInt, 16384)
    .option("--batch <n>", "contexts per forward pass", positiveInt, 16)
    .option("--keep-bos", "also splice and measure each context's first position (BOS)")
    .option("--exclude-tokens <ids>", "keep the positions of these tokens clean and out of the metrics wherever they stand (SAEBench's exclude_special_tokens_from_reconstruction): \"special\" for the model's BOS, EOS and special tokens, or ids, e.g. 0,1", tokenExclusions)
    .option("--skip-contexts <n>", "skip this many contexts first (e.g. those harvested for training)", nonNegativeInt, 0)
    .option("--out <file>", "also write the JSON result here (with a folder of SAEs: a folder, <SAE>.json each)")
    .option("--saebench <file>", "also write the result as SAEBench's core eval output, with per-latent details (with a folder of SAEs: a folder, <SAE>.json each)")
    .option("--sae-k <list>", "run a TopK SAE (topk, abstopk, vsae) with this many latents per token instead of its trained k (e.g. one trained with --multi-topk), a matching pursuit SAE (mp) with at most this many steps; several, e.g. 8,16,32, evaluate each in the same pass", (v: string) => v.split(",").map(positiveInt))
    .addOption(saeMemoryOption())
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .addOption(matmulPrecisionOption());
  addSaeModelDatasetOptions(evalCmd).option("--hook-out <name>", "a transcoder's output hook (default: the one its config names)");
  evalCmd.action(async (o) => {
    setThreads(o.threads);
    useMatmulPrecision(o.matmulPrecision);
    const loaded = await openModel(o);
    // A folder of SAE folders (one per hook, a sparsify checkpoint's layers.N): all in one
    // pass (as many as --sae-memory holds; the rest in further passes over the same
    // contexts), --out and --saebench then folders holding one file per SAE.
    const folder = saeFolderPaths(o.sae);
    const ks: Array<number | undefined> = o.saeK ?? [undefined];
    if (!folder && ks.length === 1) {
      const [r] = await evalSaes(loaded, o, [{ ...(await openSaeAtHook(o)), path: o.sae, saeK: ks[0], out: o.out, saebench: o.saebench }]);
      if (process.stdout.isTTY) process.stdout.write(formatEval(r!) + "\n");
      else printJson(r);
      return;
    }
    if (folder && (o.hook || o.hookOut)) throw new Error(`${o.sae} holds ${folder.length} SAEs, each read at the hook its config names; --hook and --hook-out name one SAE's`);
    // Every SAE (of the folder) at every k, the ks sharing the SAE's weights: --out and
    // --saebench are folders, a file per run.
    for (const dir of [o.out, o.saebench]) if (dir) mkdirSync(dir, { recursive: true });
    const file = (dir: string | undefined, name: string) => (dir === undefined ? undefined : join(dir, `${name}.json`));
    const paths = folder ?? [o.sae];
    const load = async (i: number) => ({ ...(await openSaeAtHook({ ...o, sae: paths[i]!, saeK: undefined })), path: paths[i]! });
    const groups = loadInGroups(paths.length, load, (t) => workingBytes(t.sae, o.batch * o.ctx, ks.length), o.saeMemory ?? defaultGroupMemory());
    const results: Awaited<ReturnType<typeof evalSaes>> = [];
    for await (const group of groups) {
      results.push(...await evalSaes(loaded, o, group.flatMap((opened) => ks.map((k) => {
        const label = [basename(opened.path), ...(k !== undefined && ks.length > 1 ? [`k${k}`] : [])].join("-");
        const sae = k === undefined ? opened.sae : withInferenceK(opened.sae, k);
        return { ...opened, sae, saeK: k, out: file(o.out, label), saebench: file(o.saebench, label) };
      }))));
    }
    if (process.stdout.isTTY) process.stdout.write(formatEvalSummary(results) + "\n");
    else for (const r of results) printJson(r);
  });

  const logitsCmd = program
    .command("logits")
    .description("write the full-vocabulary fp32 logits [T, vocab] of one token sequence to a safetensors file (tensor \"logits\")")
    .option("--tokens <ids>", "comma-separated token ids", intList)
    .option("--prompt <text>", "text to tokenize instead of --tokens (no BOS added)")
    .requiredOption("--out <file>", "output .safetensors");
  addModelOptions(logitsCmd);
  logitsCmd.action(async (o) => {
    const loaded = await openModel(o);
    const tokens = promptTokens(loaded, o.tokens, o.prompt, false);
    const logits = loaded.model.forward(Int32Array.from(tokens), 1, tokens.length).logits!;
    writeSafetensors(o.out, { logits: { shape: [tokens.length, loaded.model.cfg.vocabSize], data: logits } });
    printJson({ out: o.out, tokens: tokens.length, vocab: loaded.model.cfg.vocabSize });
  });

  const generateCmd = program
    .command("generate")
    .description("print a continuation of a prompt (greedy by default; token ids when the model has no tokenizer)")
    .option("--prompt <text>", "prompt text", "")
    .option("--tokens <ids>", "prompt as comma-separated token ids instead of text", intList)
    .option("--max-new <n>", "tokens to generate", positiveInt, 100)
    .option("--temperature <x>", "0: greedy", finiteNumber, 0)
    .option("--seed <n>", "sampling seed", nonNegativeInt, 0)
    .option("--bos", "prepend BOS (default for text prompts to Llama- and Gemma-family models)")
    .option("--no-bos", "do not prepend BOS")
    .option("--sae <path>", `steer or clamp with this SAE's latents (with --steer / --clamp); ${SAE_HELP}`)
    .option("--hook <name>", "where to steer (default: the hook the SAE's config names)")
    .option("--steer <list>", "latent:scale pairs, e.g. 123:8,456:-4: add scale x the latent's decoder direction at every position", pairList("scale"))
    .option("--clamp <list>", "latent:value pairs, e.g. 123:10,456:0: set the latent to value at every position (0 ablates it), keeping the rest of the activation", pairList("value"));
  addModelOptions(generateCmd);
  generateCmd.action(async (o) => {
    const loaded = await openModel(o);
    const intervenes = o.steer !== undefined || o.clamp !== undefined;
    if (intervenes !== (o.sae !== undefined)) throw new Error("--sae goes with --steer or --clamp, and they with it");
    const hooks: Record<string, HookFn> = {};
    if (o.sae) {
      const { sae, hook, hookOut } = await openSaeAtHook(o);
      loaded.model.checkHook(hook);
      if (hookOut) throw new Error(`${o.sae} is a transcoder (${hook} -> ${hookOut}); steering and clamping edit an SAE's own hook`);
      // Clamp first (on the activation as the model made it), then add the steering directions.
      const edits = [
        ...(o.clamp ? [clampingHook(sae, o.clamp)] : []),
        ...(o.steer ? [steeringHook(decoderMatrix(sae, "steering"), sae.cfg.d_in, o.steer.map((p: { latent: number; value: number }) => ({ latent: p.latent, scale: p.value })))] : []),
      ];
      hooks[hook] = (act, ctx) => { for (const edit of edits) edit(act, ctx); };
    }
    // Text prompts get BOS as the model family expects it; raw --tokens are taken as given.
    const withBos = o.bos ?? (!o.tokens && ["llama", "gemma"].includes(loaded.model.cfg.architecture));
    const prompt = promptTokens(loaded, o.tokens, o.prompt, withBos);
    // llama2.c models delimit stories with BOS; Hugging Face models end with EOS.
    const stop = [loaded.model.cfg.eosTokenId, loaded.source.endsWith(".bin") ? loaded.bosId : null].filter((t): t is number => t !== null);
    const out = generate(loaded.model, prompt, { maxNew: o.maxNew, temperature: o.temperature, seed: o.seed, stopTokens: stop, hooks });
    const all = [...prompt, ...out];
    process.stdout.write(loaded.tokenizer ? `${loaded.tokenizer.decode(all)}\n` : `${all.join(" ")}\n`);
  });
}

/** An SAE opened at its hook for one eval run: its --sae path, the k it runs at, where its results go. */
type EvalRun = Awaited<ReturnType<typeof openSaeAtHook>> & { path: string; saeK?: number; out?: string; saebench?: string };

/**
 * `saekit eval` of SAEs, all in one pass over fresh contexts (the clean run shared, the
 * zero-ablated one per output hook): each result written to its `out` file and (SAEBench's
 * core output) `saebench` file when given; the per-latent arrays go to the SAEBench file
 * only, so the summaries returned stay small.
 */
async function evalSaes(loaded: LoadedModel, o: Record<string, any>, runs: EvalRun[]) {
  const src = openContexts(loaded, o.dataset, { ...contextOptions(o), skip: o.skipContexts });
  const targets = runs.map((run) => ({ sae: run.sae, hook: run.hook, hookOut: run.hookOut, name: run.path }));
  const results = await evaluateSplices(loaded.model, targets, src.contexts, {
    tokens: o.tokens, ctx: o.ctx, batch: o.batch, excludeBos: o.keepBos !== true, featurewise: runs.some((r) => r.saebench !== undefined),
    excludeTokens: modelExclusions(o.excludeTokens, loaded),
  });
  return results.map((r, i) => {
    const { sae, metadata, raw, path: saePath, saeK: k, out, saebench } = runs[i]!;
    const result = {
      model: o.model, sae: saePath, ...(k !== undefined ? { sae_k: k } : {}), architecture: sae.cfg.architecture, d_sae: sae.cfg.d_sae,
      dataset: o.dataset, ...r, features: undefined,
    };
    if (out) writeJsonAtomic(out, result);
    if (saebench) {
      writeJsonAtomic(saebench, saeBenchCoreOutput(r, sae, {
        modelName: String(metadata.model_name ?? o.model), dataset: o.dataset, contextSize: o.ctx, batchSizePrompts: o.batch,
        excludeSpecialTokens: o.keepBos !== true || o.excludeTokens !== undefined, saeCfg: raw, saeId: saePath,
      }));
    }
    return result;
  });
}

/** A parser of "123:8,456:-4" -> [{ latent: 123, value: 8 }, { latent: 456, value: -4 }]; `what` names the number. */
function pairList(what: string): (value: string) => Array<{ latent: number; value: number }> {
  return (value) => value.split(",").map((part) => {
    const [latent, v] = part.split(":");
    if (v === undefined) throw new InvalidArgumentError(`expected latent:${what} pairs, got "${part}"`);
    return { latent: nonNegativeInt(latent!), value: finiteNumber(v) };
  });
}

function promptTokens(loaded: LoadedModel, ids: number[] | undefined, text: string | undefined, withBos: boolean): number[] {
  let tokens: number[];
  if (ids) {
    tokens = ids;
  } else {
    // Without a tokenizer an empty prompt still works: generation starts from BOS alone.
    if (!loaded.tokenizer && text) throw new Error(`${loaded.source} has no tokenizer to encode --prompt; pass --tokens or --tokenizer`);
    tokens = loaded.tokenizer ? loaded.tokenizer.encode(text ?? "") : [];
  }
  if (withBos) {
    if (loaded.bosId === null) throw new Error("this model has no BOS token id");
    tokens = [loaded.bosId, ...tokens];
  }
  if (tokens.length === 0) throw new Error("the prompt is empty; pass --prompt, --tokens or --bos");
  return tokens;
}

export const f4 = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : String(v));

/** The eval result as a table for a terminal. */
export function formatEval(r: SpliceEvalResult): string {
  const rows: Array<[string, string]> = [
    ["hook", r.hook_out ? `${r.hook} -> ${r.hook_out} (transcoder)` : r.hook],
    ["contexts / positions", `${r.contexts} / ${r.positions}`],
    ["CE loss clean", f4(r.ce_loss_clean)],
    ["CE loss with SAE", f4(r.ce_loss_with_sae)],
    ["CE loss zero-ablated", f4(r.ce_loss_zero_ablated)],
    ["CE loss recovered", f4(r.ce_loss_recovered)],
    ["KL with SAE", f4(r.kl_div_with_sae)],
    ["KL zero-ablated", f4(r.kl_div_zero_ablated)],
    ["KL score", f4(r.kl_div_score)],
  ];
  const levels: Array<[string, string]> = (r.levels ?? []).map((level) => [`level ${level.width}: CE recovered / FVU / L0`,
    `${f4(level.ce_loss_recovered)} / ${f4(level.reconstruction.fvu)} / ${level.l0.toFixed(2)}`]);
  return formatMetrics(rows, r, levels);
}

/** Several SAEs' eval results as one table, a row each. */
export function formatEvalSummary(results: Array<SpliceEvalResult & { sae: string; sae_k?: number }>): string {
  const head = ["SAE", "hook", "FVU", "L0", "alive", "CE recovered", "KL score", "CE with SAE"];
  const rows = results.map((r) => [r.sae_k !== undefined ? `${r.sae} (k = ${r.sae_k})` : r.sae, r.hook_out ? `${r.hook} -> ${r.hook_out}` : r.hook, f4(r.reconstruction.fvu), r.sparsity.l0.toFixed(2),
    f4(r.sparsity.frac_alive), f4(r.ce_loss_recovered), f4(r.kl_div_score), f4(r.ce_loss_with_sae)]);
  return formatTable(head, rows);
}

/** A plain-text table: the header, a rule, and the rows, each column as wide as its widest cell. */
export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((v, c) => v.padEnd(widths[c]!)).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/**
 * A metrics table for a terminal: `head`, the reconstruction and sparsity rows, `tail`, and
 * the log10 feature-density histogram as bars.
 */
export function formatMetrics(head: Array<[string, string]>, r: Pick<SpliceEvalResult, "reconstruction" | "sparsity">,
  tail: Array<[string, string]> = []): string {
  const rows: Array<[string, string]> = [
    ...head,
    ["FVU", f4(r.reconstruction.fvu)],
    ["explained variance", f4(r.reconstruction.explained_variance)],
    ["cosine similarity", f4(r.reconstruction.cossim)],
    ["L0 (f != 0)", r.sparsity.l0.toFixed(2)],
    ["frac alive", f4(r.sparsity.frac_alive)],
    ["latents > 1% / > 10% dense", `${f4(r.sparsity.freq_over_1_percent)} / ${f4(r.sparsity.freq_over_10_percent)}`],
    ...tail,
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const hist = r.sparsity.density_histogram;
  const peak = Math.max(1, ...hist.counts);
  const bars = hist.counts.map((c, i) => (c ? `  ${hist.edges[i]!.toFixed(1).padStart(5)} ${"#".repeat(Math.ceil((c / peak) * 40))} ${c}` : null)).filter(Boolean);
  return [...rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`), "log10 feature density:", ...bars].join("\n");
}
