/** Options shared by the commands that run a language model. */
import { type Command, Option } from "commander";
import { type ContextSourceOptions, samplesFromModel } from "../lm/dataset.js";
import { type LoadedModel, loadModel } from "../lm/load.js";
import { fetchSae } from "../sae/open.js";
import { withInferenceK } from "../sae/registry.js";
import { positiveInt } from "./options.js";

/** --model (required unless `required` is false), --tokenizer and --cache-dir. */
export function addModelOptions(cmd: Command, required = true): Command {
  const model = "a Hugging Face model folder, a llama2.c .bin file, or hf:ORG/NAME[@revision]";
  return (required ? cmd.requiredOption("--model <path>", model) : cmd.option("--model <path>", model))
    .option("--tokenizer <path>", "tokenizer.json / folder / llama2.c tokenizer .bin (default: the model's own)")
    .option("--cache-dir <dir>", "where hf: models are downloaded (default ~/.cache/saekit/hub or $SAEKIT_CACHE)")
    .addOption(new Option("--model-dtype <dtype>", "keep the model's weight matrices as float32 or bfloat16 (half the memory once loaded; exact for bf16 checkpoints)")
      .choices(["f32", "bf16"]).default("f32"));
}

/** --dataset (required unless `required` is false), --ctx, --no-bos, --text-field and --split. */
export function addDatasetOptions(cmd: Command, ctxDefault = 128, required = true): Command {
  const dataset = "text: .txt (docs split on <|endoftext|> or blank lines), .jsonl, .parquet or .arrow (a tokens / input_ids field makes it pretokenized: one context per row), a folder of them (a Hugging Face dataset saved to disk included), hf:ORG/NAME[/FOLDER][@rev] (a hub dataset, fetched file by file), or sampled:N[:SEED]";
  return (required ? cmd.requiredOption("--dataset <path>", dataset) : cmd.option("--dataset <path>", dataset))
    .option("--ctx <n>", "tokens per context", positiveInt, ctxDefault)
    .option("--no-bos", "do not prepend BOS to contexts")
    .option("--text-field <name>", "jsonl field / parquet column with the text", "text")
    .addOption(new Option("--split <how>", ".txt documents").choices(["auto", "eot", "blank", "line"]).default("auto"));
}

/** The text-dataset settings of --ctx, --no-bos, --text-field, --split (and --cache-dir for hf: datasets). */
export function contextOptions(o: Record<string, any>): ContextSourceOptions {
  return { ctx: o.ctx, prependBos: o.bos !== false, textField: o.textField, split: o.split, hub: { cacheDir: o.cacheDir } };
}

/**
 * The --model. With `hooks`, only what running to them needs is read (LoadModelOptions.hooks):
 * for commands that read activations and nothing after them, unless --dataset is sampled
 * from the model's own logits.
 */
export function openModel(o: { model: string; tokenizer?: string; cacheDir?: string; modelDtype?: "f32" | "bf16"; dataset?: string },
  hooks?: readonly string[]): Promise<LoadedModel> {
  const partial = hooks && !(o.dataset && samplesFromModel(o.dataset));
  return loadModel(o.model, { tokenizer: o.tokenizer, cacheDir: o.cacheDir, weights: o.modelDtype ?? "f32", ...(partial ? { hooks } : {}) });
}

export const SAE_HELP = "SAE: a SAELens or saekit folder, a sparsify folder, a dictionary_learning ae.pt, an OpenAI sparse_autoencoder .pt, a Goodfire .pth, a GemmaScope params.npz (or its folder), or hf:ORG/NAME/FOLDER[@revision]";

/** The SAE, the model and the text dataset: what commands that run an SAE over text take. */
export function addSaeModelDatasetOptions(cmd: Command): Command {
  return addDatasetOptions(addModelOptions(addSaeOptions(cmd)));
}

/** --sae and --hook, for commands that splice an SAE into a model. */
export function addSaeOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--sae <path>", SAE_HELP)
    .option("--hook <name>", "hook point (default: the one the SAE's config names)");
}

/** The SAE and the hook it reads: --hook, else the one its config names. */
export async function openSaeAtHook(o: { sae: string; hook?: string; hookOut?: string; cacheDir?: string; saeK?: number }) {
  const loaded = await fetchSae(o.sae, { cacheDir: o.cacheDir });
  if (o.saeK !== undefined) loaded.sae = withInferenceK(loaded.sae, o.saeK);
  const hook = o.hook ?? loaded.metadata.hook_name;
  if (!hook) throw new Error(`${o.sae}: its config names no hook point saekit knows; pass --hook`);
  // A transcoder's output hook (undefined for an SAE).
  const hookOut = o.hookOut ?? loaded.metadata.hook_name_out ?? undefined;
  return { ...loaded, hook, hookOut };
}

/**
 * For evals that compare an SAE's decoder directions with activations at its own hook
 * (TPP, SCR, absorption): a transcoder's decoder writes to another hook, so they refuse it.
 */
export function refuseTranscoder(opened: { hookOut?: string }, command: string): void {
  if (opened.hookOut) {
    throw new Error(`${command} compares decoder directions with activations at the SAE's input hook; this transcoder writes to ${opened.hookOut} instead`);
  }
}
