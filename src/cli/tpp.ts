/** `saekit tpp`: SAEBench's targeted probe perturbation — do an SAE's latents separate the classes of a dataset? */
import type { Command } from "commander";
import { saeBenchTppOutput } from "../eval/saebench.js";
import { runTpp, type TppRunResult } from "../eval/tpp-run.js";
import { addLabeledTaskOptions, openLabeledTask, reportLabeledEval } from "./labeled-options.js";
import { refuseTranscoder } from "./lm-options.js";
import { intList } from "./options.js";

export function registerTpp(program: Command): void {
  const cmd = program
    .command("tpp")
    .description("targeted probe perturbation (SAEBench): ablate the SAE latents that matter most to one class's probe; how much does that probe drop, and how much do the other classes' probes?")
    .option("--n <list>", "latents ablated per class", "2,5,10,20,50,100,500")
    .addHelpText("after", `
For each class, a logistic probe on the model's pooled activations tells it from the rest;
the SAE's latents are ranked by their effect on that probe and the top N zero-ablated
(keeping the SAE's error). TPP = (drop of the class's own probe) - (mean drop of the
other probes), averaged over classes: high when latents are specific to their class.`);
  addLabeledTaskOptions(cmd, "tpp");
  cmd.action(async (o) => {
    const nValues = intList(o.n);
    if (nValues.some((n) => n < 1)) throw new Error("--n: numbers of latents must be at least 1");
    const { loaded, sae, split, pool } = await openLabeledTask(o);
    refuseTranscoder(sae, "tpp");
    const r = runTpp(loaded.model, loaded.tokenizer, sae.sae, split, { ...pool, nValues, C: o.C, seed: o.seed });
    reportLabeledEval(o, sae, { fields: r, table: formatTpp(r), saebench: (info) => saeBenchTppOutput(r, info) });
  });
}

/** TPP per N (and its two parts) as a table for a terminal. */
export function formatTpp(r: TppRunResult): string {
  const ns = Object.keys(r.total_metric);
  const lines = [`${r.hook}: ${r.train_texts} train / ${r.test_texts} test texts, ${r.classes.length} classes`,
    "N        TPP  own drop  others' drop"];
  for (const n of ns) {
    lines.push(`${n.padEnd(5)} ${r.total_metric[n]!.toFixed(3).padStart(6)}  ${r.intended_diff_only[n]!.toFixed(3).padStart(8)}  ${r.unintended_diff_only[n]!.toFixed(3).padStart(12)}`);
  }
  return lines.join("\n");
}
