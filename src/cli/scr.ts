/** `saekit scr`: SAEBench's spurious correlation removal — can ablating an SAE's latents debias a probe? */
import type { Command } from "commander";
import { readLabeledTexts } from "../data/labeled.js";
import { saeBenchScrOutput } from "../eval/saebench.js";
import type { ScrPair } from "../eval/scr.js";
import { runScr, type ScrRunResult } from "../eval/scr-run.js";
import { addLabeledTaskOptions, openModelAndSae, reportLabeledEval } from "./labeled-options.js";
import { refuseTranscoder } from "./lm-options.js";
import { intList, positiveInt } from "./options.js";

/** "a:b" -> ["a", "b"]. */
function twoValues(text: string, option: string): [string, string] {
  const parts = text.split(":");
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`${option}: expected two values as A:B, got "${text}"`);
  return [parts[0], parts[1]];
}

export function registerScr(program: Command): void {
  const cmd = program
    .command("scr")
    .description("spurious correlation removal (SAEBench): train a probe on data where a target label and an attribute coincide, ablate the SAE latents of one, and see how far the probe recovers")
    .requiredOption("--attribute-field <name>", "field / column with the spurious attribute (bias_in_bios: gender)")
    .requiredOption("--attribute <a:b>", "the attribute's two values, e.g. male:female (as the field stores them)")
    .requiredOption("--pairs <list>", "target class pairs, e.g. professor:nurse,architect:journalist")
    .option("--train-per-quadrant <n>", "training texts per (class, attribute) quadrant", positiveInt, 1000)
    .option("--test-per-quadrant <n>", "test texts per quadrant", positiveInt, 250)
    .option("--n <list>", "latents ablated", "2,5,10,20,50,100,500")
    .addHelpText("after", `
Per pair, SAEBench's biased probe (first class with the first attribute value vs second
class with the second) learns both signals. Direction 1 ablates the latents that matter to
an attribute probe and scores the biased probe on class data; direction 2 the reverse.
SCR = (accuracy after - before) / (accuracy of an unbiased probe - before).`);
  addLabeledTaskOptions(cmd, "scr", false);
  cmd.action(async (o) => {
    const nValues = intList(o.n);
    if (nValues.some((n) => n < 1)) throw new Error("--n: numbers of latents must be at least 1");
    const attribute = twoValues(o.attribute, "--attribute");
    const pairs: ScrPair[] = String(o.pairs).split(",").map((p) => ({ target: twoValues(p, "--pairs"), attribute }));
    const { loaded, sae, pool } = await openModelAndSae(o);
    refuseTranscoder(sae, "scr");
    const fields = { textField: o.textField, labelField: o.labelField, attributeField: o.attributeField };
    const items = await readLabeledTexts(o.dataset, fields);
    const testItems = o.testDataset ? await readLabeledTexts(o.testDataset, fields) : null;
    const r = runScr(loaded.model, loaded.tokenizer, sae.sae, items, testItems, pairs, {
      ...pool, nValues, C: o.C, seed: o.seed, trainPerQuadrant: o.trainPerQuadrant, testPerQuadrant: o.testPerQuadrant,
    });
    // A probe task holds all four quadrants.
    reportLabeledEval(o, sae, {
      fields: r, table: formatScr(r), saebench: (info) => saeBenchScrOutput(r, info),
      perTask: { train: 4 * o.trainPerQuadrant, test: 4 * o.testPerQuadrant },
    });
  });
}

/** SCR per N as a table for a terminal. */
export function formatScr(r: ScrRunResult): string {
  const f = (v: number | null | undefined) => (v === null || v === undefined ? "-" : v.toFixed(3));
  const lines = [`${r.hook}: ${r.pairs.map((p) => p.target.join(" / ")).join(", ")} against ${r.pairs[0]?.attribute.join(" / ")}`,
    "N        SCR    dir 1    dir 2"];
  for (const n of Object.keys(r.scr_dir1)) lines.push(`${n.padEnd(5)} ${f(r.scr_metric[n]).padStart(6)}  ${f(r.scr_dir1[n]).padStart(7)}  ${f(r.scr_dir2[n]).padStart(7)}`);
  return lines.join("\n");
}
