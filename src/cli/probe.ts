/** `saekit probe`: SAEBench's k-sparse probing of an SAE's latents against the model's own activations. */
import type { Command } from "commander";
import { saeBenchSparseProbingOutput } from "../eval/saebench.js";
import type { ProbingResult } from "../eval/sparse-probing.js";
import { runSparseProbing, type SparseProbingRunResult } from "../eval/sparse-probing-run.js";
import { addLabeledTaskOptions, openLabeledTask, reportLabeledEval } from "./labeled-options.js";
import { intList } from "./options.js";

export function registerProbe(program: Command): void {
  const cmd = program
    .command("probe")
    .description("k-sparse probing (SAEBench): logistic probes on the top-k SAE latents vs the top-k model channels, per class of a labelled text dataset")
    .option("--k <list>", "probe sizes: numbers of latents / channels", "1,2,5")
    .option("--no-full", "skip the full-width probes (all channels, all latents)")
    .addHelpText("after", `
The dataset needs at least two classes. Each class is probed against the rest with
balanced negatives; accuracies are means over classes. Example, on ag_news:
  saekit probe --model hf:EleutherAI/pythia-70m --sae RUN_DIR \\
    --dataset ag_news/train.parquet --test-dataset ag_news/test.parquet`);
  addLabeledTaskOptions(cmd, "sparse_probing");
  cmd.action(async (o) => {
    const kValues = intList(o.k);
    if (kValues.some((k) => k < 1)) throw new Error("--k: probe sizes must be at least 1");
    const { loaded, sae, split, pool } = await openLabeledTask(o);
    const r = runSparseProbing(loaded.model, loaded.tokenizer, [sae.sae], split, {
      ...pool, kValues, full: o.full !== false, C: o.C, seed: o.seed,
    });
    const { model: modelProbes, saes: saeProbes, ...run } = r;
    reportLabeledEval(o, sae, {
      fields: { ...run, model_probes: modelProbes, sae_probes: saeProbes[0] },
      table: formatProbing(r),
      saebench: (info) => saeBenchSparseProbingOutput(r, 0, info),
    });
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
