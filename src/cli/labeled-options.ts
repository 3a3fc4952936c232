/** Options and setup shared by the commands that evaluate an SAE on labelled texts (probe, tpp). */
import type { Command } from "commander";
import { writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { type ClassSplit, readLabeledTexts, splitByClass } from "../data/labeled.js";
import { specialTokens } from "../lm/special-tokens.js";
import type { SaeBenchProbingInfo } from "../eval/saebench.js";
import type { PoolTextOptions } from "../eval/sparse-probing-run.js";
import type { LoadedModel } from "../lm/load.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import { addModelOptions, addSaeOptions, openModel, openSaeAtHook } from "./lm-options.js";
import { defaultThreads, finiteNumber, nonNegativeInt, positiveInt, printJson } from "./options.js";

/**
 * Dataset, pooling, probe and output options. `perClass` adds the per-class sampling of
 * probe and tpp (--classes, --train-per-class, --test-per-class); scr samples quadrants.
 */
export function addLabeledTaskOptions(cmd: Command, saebenchEval: string, perClass = true): Command {
  cmd
    .requiredOption("--dataset <path>", "labelled texts: .jsonl, .parquet or .arrow (or a folder of them, a Hugging Face dataset saved to disk included) with a text and a label field")
    .option("--test-dataset <path>", "the dataset's own test split (default: hold test texts out of --dataset)")
    .option("--text-field <name>", "field / column with the text", "text")
    .option("--label-field <name>", "field / column with the class", "label");
  if (perClass) {
    cmd
      .option("--classes <list>", "comma-separated classes to use (default: all)")
      .option("--train-per-class <n>", "training texts per class", positiveInt, 2000)
      .option("--test-per-class <n>", "test texts per class", positiveInt, 500);
  }
  cmd
    .option("--ctx <n>", "tokens per text (longer texts are cut)", positiveInt, 128)
    .option("--no-bos", "do not prepend BOS to each text")
    .option("--C <x>", "inverse L2 regularisation of the logistic probes", finiteNumber, 1)
    .option("--seed <n>", "sampling seed", nonNegativeInt, 42)
    .option("--batch <n>", "texts per forward pass", positiveInt, 32)
    .option("--out <file>", "also write the JSON result here")
    .option("--saebench <file>", `also write the result as SAEBench's ${saebenchEval} eval output`)
    .option("--threads <n>", "threads", positiveInt, defaultThreads());
  addSaeOptions(cmd);
  return addModelOptions(cmd);
}

export interface LabeledTask {
  loaded: LoadedModel & { tokenizer: TextTokenizer };
  sae: Awaited<ReturnType<typeof openSaeAtHook>>;
  split: ClassSplit;
  pool: PoolTextOptions;
}

/** The parsed options addLabeledTaskOptions declares. */
export interface LabeledTaskFlags {
  model: string;
  tokenizer?: string;
  cacheDir?: string;
  sae: string;
  hook?: string;
  dataset: string;
  testDataset?: string;
  textField: string;
  labelField: string;
  classes?: string;
  trainPerClass: number;
  testPerClass: number;
  ctx: number;
  bos: boolean;
  C: number;
  seed: number;
  batch: number;
  threads: number;
}

/** The model (with a tokenizer), the SAE and the pooling settings the options describe. */
export async function openModelAndSae(o: Omit<LabeledTaskFlags, "trainPerClass" | "testPerClass">): Promise<Omit<LabeledTask, "split">> {
  setThreads(o.threads);
  if (!(o.C > 0)) throw new Error(`--C must be positive, got ${o.C}`);
  const sae = await openSaeAtHook(o);
  // The probes read the SAE's hook and nothing after it: the model only that far.
  const loaded = await openModel(o, [sae.hook]);
  if (!loaded.tokenizer) throw new Error(`${loaded.source} has no tokenizer to read the texts; pass --tokenizer`);
  const bos = o.bos !== false ? loaded.bosId : null;
  if (o.bos !== false && bos === null) throw new Error("this model has no BOS token id; pass --no-bos");
  const special = specialTokens(loaded.model.cfg, loaded.tokenizer);
  return { loaded: loaded as LabeledTask["loaded"], sae, pool: { hook: sae.hook, ctx: o.ctx, bos, special, batch: o.batch } };
}

/** The model, the SAE, the class split and the pooling settings the options describe. */
export async function openLabeledTask(o: LabeledTaskFlags): Promise<LabeledTask> {
  const opened = await openModelAndSae(o);
  const fields = { textField: o.textField, labelField: o.labelField };
  const split = splitByClass(await readLabeledTexts(o.dataset, fields), {
    trainPerClass: o.trainPerClass, testPerClass: o.testPerClass, seed: o.seed,
    classes: o.classes ? String(o.classes).split(",") : undefined,
    test: o.testDataset ? await readLabeledTexts(o.testDataset, fields) : undefined,
  });
  return { ...opened, split };
}

export interface LabeledEvalReport {
  /** The run's own fields, after the model / SAE / dataset they came from. */
  fields: object;
  /** The table a terminal gets instead of the JSON line. */
  table: string;
  /** SAEBench's output, built only when --saebench asks for it. */
  saebench: (info: SaeBenchProbingInfo) => Record<string, unknown>;
  /** Texts per probe task for SAEBench's train / test set sizes (default: per class). */
  perTask?: { train: number; test: number };
}

/** Writes --out and --saebench, and prints the table on a terminal or the JSON line otherwise. */
export function reportLabeledEval(o: LabeledTaskFlags & { out?: string; saebench?: string }, sae: LabeledTask["sae"],
  report: LabeledEvalReport): void {
  const { architecture, d_sae } = sae.sae.cfg;
  const result = { model: o.model, sae: o.sae, architecture, d_sae, dataset: o.dataset, ...report.fields };
  if (o.out) writeJsonAtomic(o.out, result);
  if (o.saebench) {
    writeJsonAtomic(o.saebench, report.saebench({
      modelName: String(sae.metadata.model_name ?? o.model), dataset: o.dataset,
      trainPerClass: report.perTask?.train ?? o.trainPerClass, testPerClass: report.perTask?.test ?? o.testPerClass,
      contextSize: o.ctx, seed: o.seed, saeCfg: sae.raw, saeId: o.sae,
    }));
  }
  if (process.stdout.isTTY) process.stdout.write(report.table + "\n");
  else printJson(result);
}
