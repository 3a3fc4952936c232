/** `saekit example ...`: worked examples on real data that ships offline. */
import { join } from "node:path";
import { Command } from "commander";
import { setThreads } from "../core/kernels.js";
import { packageRoot } from "../core/native.js";
import { formatExampleTable, formatProbeTable, runStories260kExample } from "../examples/stories260k.js";
import { defaultThreads, intList, positiveInt } from "./options.js";

export function registerExample(program: Command): void {
  const example = program.command("example").description("worked examples, end to end");
  example
    .command("stories260k")
    .description("harvest stories260K's blocks.2.hook_resid_post on TinyStories, train topk / vsae (KL all, KL active) / abstopk at k = 8, 16, 32, batchtopk, matryoshka and matching pursuit at k = 16, vaease and a plain VAE, splice-evaluate each on held-out text, k-sparse probe each on where the story is set (minutes on 2 cores)")
    .option("--data-dir <dir>", "folder with stories260K/ and tinystories/", join(packageRoot(), "..", "shared", "data"))
    .option("--out <dir>", "output folder (store, runs, results.json, results.md)", "runs/stories260k")
    .option("--tokens <n>", "tokens to harvest", positiveInt, 500_000)
    .option("--ks <list>", "k values", intList, [8, 16, 32])
    .option("--steps <n>", "training steps per SAE", positiveInt, 2000)
    .option("--eval-tokens <n>", "held-out positions to evaluate", positiveInt, 32_768)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .action(async (o) => {
      setThreads(o.threads);
      const { rows, probing } = await runStories260kExample({
        dataDir: o.dataDir, outDir: o.out, harvestTokens: o.tokens, ks: o.ks, steps: o.steps, evalTokens: o.evalTokens,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(`${formatExampleTable(rows)}\n\n${formatProbeTable(probing)}\n`);
    });
}
