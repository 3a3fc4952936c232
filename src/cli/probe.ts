/** `saekit probe`: SAEBench's k-sparse probing of an SAE's latents against the model's own activations. */
import type { Command } from "commander";
import { writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { readLabeledTexts, splitByClass } from "../data/labeled.js";
import { saeBenchSparseProbingOutput } from "../eval/saebench.js";
import type { ProbingResult } from "../eval/sparse-probing.js";
import { runSparseProbing, type SparseProbingRunResult } from "../eval/sparse-probing-run.js";
import { addModelOptions, addSaeOptions, openModel, openSaeAtHook } from "./lm-options.js";
import { defaultThreads, finiteNumber, intList, nonNegativeInt, positiveInt, printJson } from "./options.js";

export function registerProbe(program: Command): void {
  const cmd = program
    .command("probe")
    .description("k-sparse probing (SAEBench): logistic probes on the top-k SAE latents vs the top-k model channels, per class of a labelled text dataset")
    .requiredOption("--dataset <path>", "labelled texts: .jsonl or .parquet (or a folder of them) with a text and a label field")
    .option("--test-dataset <path>", "the dataset's own test split (default: hold test texts out of --dataset)")
    .option("--text-field <name>", "field / column with the text", "text")
    .option("--label-field <name>", "field / column with the class", "label")
    .option("--classes <list>", "comma-separated classes to probe (default: all)")
    .option("--k <list>", "probe sizes: numbers of latents / channels", "1,2,5")
    .option("--train-per-class <n>", "training texts per class", positiveInt, 2000)
    .option("--test-per-class <n>", "test texts per class", positiveInt, 500)
    .option("--ctx <n>", "tokens per text (longer texts are cut)", positiveInt, 128)
    .option("--no-bos", "do not prepend BOS to each text")
    .option("--no-full", "skip the full-width probes (all channels, all latents)")
    .option("--C <x>", "inverse L2 regularisation of the logistic probes", finiteNumber, 1)
    .option("--seed <n>", "sampling seed", nonNegativeInt, 42)
    .option("--batch <n>", "texts per forward pass", positiveInt, 32)
    .option("--out <file>", "also write the JSON result here")
    .option("--saebench <file>", "also write the result as SAEBench's sparse_probing eval output")
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .addHelpText("after", `
The dataset needs at least two classes. Each class is probed against the rest with
balanced negatives; accuracies are means over classes. Example, on ag_news:
  saekit probe --model hf:EleutherAI/pythia-70m --sae RUN_DIR \\
    --dataset ag_news/train.parquet --test-dataset ag_news/test.parquet`);
  addSaeOptions(cmd);
  addModelOptions(cmd);
  cmd.action(async (o) => {
    setThreads(o.threads);
    if (!(o.C > 0)) throw new Error(`--C must be positive, got ${o.C}`);
    const kValues = intList(o.k);
    if (kValues.some((k) => k < 1)) throw new Error("--k: probe sizes must be at least 1");
    const loaded = await openModel(o);
    if (!loaded.tokenizer) throw new Error(`${loaded.source} has no tokenizer to read the texts; pass --tokenizer`);
    const { sae, metadata, raw, hook } = await openSaeAtHook(o);
    const fields = { textField: o.textField, labelField: o.labelField };
    const split = splitByClass(await readLabeledTexts(o.dataset, fields), {
      trainPerClass: o.trainPerClass, testPerClass: o.testPerClass, seed: o.seed,
      classes: o.classes ? String(o.classes).split(",") : undefined,
      test: o.testDataset ? await readLabeledTexts(o.testDataset, fields) : undefined,
    });
    const bos = o.bos !== false ? loaded.bosId : null;
    if (o.bos !== false && bos === null) throw new Error("this model has no BOS token id; pass --no-bos");
    const cfg = loaded.model.cfg;
    const special = [cfg.bosTokenId, cfg.eosTokenId].filter((t): t is number => t !== null);
    const r = runSparseProbing(loaded.model, loaded.tokenizer, [sae], split, {
      hook, ctx: o.ctx, bos, special, kValues, full: o.full !== false, C: o.C, seed: o.seed, batch: o.batch,
    });
    const { model: modelProbes, saes: saeProbes, ...run } = r;
    const result = {
      model: o.model, sae: o.sae, architecture: sae.cfg.architecture, d_sae: sae.cfg.d_sae, dataset: o.dataset, ...run,
      model_probes: modelProbes, sae_probes: saeProbes[0],
    };
    if (o.out) writeJsonAtomic(o.out, result);
    if (o.saebench) {
      writeJsonAtomic(o.saebench, saeBenchSparseProbingOutput(r, 0, {
        modelName: String(metadata.model_name ?? o.model), dataset: o.dataset, trainPerClass: o.trainPerClass,
        testPerClass: o.testPerClass, contextSize: o.ctx, seed: o.seed, saeCfg: raw, saeId: o.sae,
      }));
    }
    if (process.stdout.isTTY) process.stdout.write(formatProbing(r) + "\n");
    else printJson(result);
  });
}

/** The probing accuracies as a table for a terminal: one row per probe, one column per class. */
export function formatProbing(r: SparseProbingRunResult): string {
  const rows: Array<[string, ProbingResult, string | undefined]> = [];
  const keys = (p: ProbingResult) => [...(p.test_accuracy !== undefined ? [undefined] : []), ...Object.keys(p.top_k_test_accuracy)];
  for (const k of keys(r.model)) rows.push([k === undefined ? "model, all channels" : `model, top ${k}`, r.model, k]);
  r.saes.forEach((p, s) => {
    const name = r.saes.length > 1 ? `SAE ${s}` : "SAE";
    for (const k of keys(p)) rows.push([k === undefined ? `${name}, all latents` : `${name}, top ${k}`, p, k]);
  });
  const acc = (p: ProbingResult, cls: string | null, k: string | undefined) => {
    const c = cls === null ? null : p.classes.find((x) => x.class === cls)!;
    const v = k === undefined ? (c ? c.test_accuracy : p.test_accuracy) : (c ? c.top_k_test_accuracy[k] : p.top_k_test_accuracy[k]);
    return v === undefined ? "" : v.toFixed(3);
  };
  const header = ["probe", "mean", ...r.classes];
  const table = [header, ...rows.map(([name, p, k]) => [name, acc(p, null, k), ...r.classes.map((c) => acc(p, c, k))])];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "));
  const note = `${r.hook}: ${r.train_texts} train / ${r.test_texts} test texts, ${r.classes.length} classes` +
    (r.dropped_classes.length ? ` (too few texts, left out: ${r.dropped_classes.join(", ")})` : "");
  return [note, ...lines].join("\n");
}
