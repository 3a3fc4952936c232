/** `saekit absorption`: SAEBench's feature-absorption eval on the first-letter spelling task. */
import type { Command } from "commander";
import { writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { ABSORPTION_DEFAULTS } from "../eval/absorption.js";
import { type AbsorptionRunResult, runAbsorption } from "../eval/absorption-run.js";
import { FIRST_LETTER_TEMPLATE } from "../eval/first-letter.js";
import { saeBenchAbsorptionOutput } from "../eval/saebench.js";
import { addModelOptions, addSaeOptions, openModel, openSaeAtHook, refuseTranscoder } from "./lm-options.js";
import { defaultThreads, finiteNumber, nonNegativeInt, positiveInt, printJson } from "./options.js";

export function registerAbsorption(program: Command): void {
  const cmd = program
    .command("absorption")
    .description("feature absorption (SAEBench): first-letter probes on every single-token word, the SAE's main latent(s) per letter, and how often other latents absorb them")
    .option("--template <text>", "prompt for each word; {word} is replaced", FIRST_LETTER_TEMPLATE)
    .option("--examples <n>", "few-shot examples per prompt", positiveInt, 10)
    .option("--max-k <n>", "largest k-sparse probe (main latents per letter)", positiveInt, ABSORPTION_DEFAULTS.maxK)
    .option("--f1-jump <x>", "F1 gain that admits one more main latent (feature splitting)", finiteNumber, ABSORPTION_DEFAULTS.f1JumpThreshold)
    .option("--l1 <x>", "L1 strength of the probe that ranks latents", finiteNumber, ABSORPTION_DEFAULTS.l1)
    .option("--min-probe-f1 <x>", "leave out letters whose ground-truth probe has a lower test F1", finiteNumber, ABSORPTION_DEFAULTS.minProbeF1)
    .option("--min-letters <n>", "no scores unless this many letters keep their probe", nonNegativeInt, ABSORPTION_DEFAULTS.minLetters)
    .option("--no-bos", "do not prepend BOS to each prompt")
    .option("--seed <n>", "seed for the train/test split and the examples", nonNegativeInt, 42)
    .option("--batch <n>", "prompts per forward pass", positiveInt, 32)
    .option("--out <file>", "also write the JSON result (with every scored word) here")
    .option("--saebench <file>", "also write the result as SAEBench's absorption_first_letter output")
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .addHelpText("after", `
SAEBench recommends this eval for models of 1B+ parameters and SAEs of 16k+ latents:
small models do not know how their tokens are spelled, and the probes show it (letters
whose probe F1 falls below --min-probe-f1 are left out of the scores, and with fewer than
--min-letters left there are no scores at all).`);
  addSaeOptions(cmd);
  addModelOptions(cmd);
  cmd.action(async (o) => {
    setThreads(o.threads);
    const opened = await openSaeAtHook(o);
    refuseTranscoder(opened, "absorption");
    // The probes read the SAE's hook and nothing after it: the model only that far.
    const loaded = await openModel(o, [opened.hook]);
    if (!loaded.tokenizer) throw new Error(`${loaded.source} has no tokenizer to spell with; pass --tokenizer`);
    const { sae, metadata, raw, hook } = opened;
    const bos = o.bos !== false ? loaded.bosId : null;
    if (o.bos !== false && bos === null) throw new Error("this model has no BOS token id; pass --no-bos");
    const r = runAbsorption(loaded.model, loaded.tokenizer, sae, {
      hook, bos, template: o.template, examples: o.examples, seed: o.seed, batch: o.batch,
      maxK: o.maxK, f1JumpThreshold: o.f1Jump, l1: o.l1, minProbeF1: o.minProbeF1, minLetters: o.minLetters,
    });
    if (r.letters_scored < o.minLetters) {
      process.stderr.write(`saekit: only ${r.letters_scored} letters have a ground-truth probe with F1 >= ${o.minProbeF1} ` +
        `(${o.minLetters} needed): this model does not spell its tokens well enough to measure absorption; no scores\n`);
    }
    const head = { model: o.model, sae: o.sae, architecture: sae.cfg.architecture, d_sae: sae.cfg.d_sae };
    if (o.out) writeJsonAtomic(o.out, { ...head, ...r });
    if (o.saebench) {
      writeJsonAtomic(o.saebench, saeBenchAbsorptionOutput(r, {
        modelName: String(metadata.model_name ?? o.model), seed: o.seed, maxK: o.maxK, f1JumpThreshold: o.f1Jump,
        template: o.template, batch: o.batch, l1: o.l1, minProbeF1: o.minProbeF1, minLetters: o.minLetters, saeCfg: raw, saeId: o.sae,
      }));
    }
    const summary = { ...head, ...r, letters: r.letters.map(({ words: _w, ...l }) => l) };
    if (process.stdout.isTTY) process.stdout.write(formatAbsorption(r) + "\n");
    else printJson(summary);
  });
}

/** The per-letter results as a table for a terminal. */
export function formatAbsorption(r: AbsorptionRunResult): string {
  const f = (v: number | null) => (v === null ? "-" : v.toFixed(3));
  const lines = [
    `${r.hook}: ${r.train_words} train / ${r.test_words} test words (${r.skipped_words} skipped)`,
    `mean absorption fraction ${f(r.mean_absorption_fraction_score)}, full absorption ${f(r.mean_full_absorption_score)}, split features ${f(r.mean_num_split_features)}`,
    "letter  probe F1  main latents        true pos.  absorption  full",
  ];
  for (const l of r.letters) {
    lines.push(`${l.letter.padEnd(6)}  ${l.probe_f1.toFixed(3).padStart(8)}  ${l.main_latents.join(",").padEnd(18)}  ` +
      `${String(l.num_probe_true_positives).padStart(9)}  ${l.mean_absorption_fraction.toFixed(3).padStart(10)}  ${l.full_absorption_rate.toFixed(3)}` +
      (l.included ? "" : "  (left out: probe F1 too low)"));
  }
  return lines.join("\n");
}
