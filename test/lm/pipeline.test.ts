/**
 * The language-model commands as a user runs them: harvest (and a SIGKILLed harvest
 * rerun), train on the store, splice-evaluate, logits, generate; and hf: model specs
 * downloaded through a local stand-in for the hub.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { SafetensorsFile, writeSafetensors } from "../../src/core/safetensors.js";
import { openActivationSource } from "../../src/data/open.js";
import { readManifest, readShardTokens } from "../../src/data/store.js";
import { resolveHubModel } from "../../src/lm/hub.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { fetchSae } from "../../src/sae/open.js";
import { createSae } from "../../src/sae/registry.js";
import { saveSae } from "../../src/sae/saelens.js";
import { serveHubFile, tempDir } from "../helpers.js";
import { writeTinyGemma, writeTinyNeox } from "./fixtures.js";

const dir = tempDir();
const bin = join(packageRoot(), "bin", "saekit.js");
const model = writeTinyNeox(join(dir, "model"));
const text = join(dir, "stories.txt");
writeFileSync(text, Array.from({ length: 80 }, (_, i) => `Once upon a time a dog called Rex ${i} ran to the park.`).join("<|endoftext|>"));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, SAEKIT_THREADS: "1" } });
  if (r.status !== 0) throw new Error(`saekit ${args.join(" ")} failed: ${r.stderr}`);
  return r;
}
const saekit = (...args: string[]) => run(...args).stdout;

describe("saekit harvest / train / eval / logits / generate", () => {
  const store = join(dir, "store");
  const harvestArgs = (out: string) => ["harvest", "--model", model, "--dataset", text, "--hook", "blocks.0.hook_resid_post",
    "--tokens", "1600", "--ctx", "16", "--shard-tokens", "160", "--batch", "4", "--out", out];

  it("the store lists the model's special tokens, and train --exclude-tokens special leaves their rows out", () => {
    const out = join(dir, "store-special");
    saekit(...harvestArgs(out).map((a) => (a === "1600" ? "320" : a)));
    const m = readManifest(out);
    // The tiny GPT-NeoX tokenizer's <|endoftext|>: BOS, EOS and its one special added token.
    expect(m.special_tokens).toEqual([0]);
    const runDir = join(dir, "run-special");
    const r = run("train", "--data", out, "--exclude-tokens", "special", "--arch", "topk", "--k", "2", "--d-sae", "16", "--steps", "3", "--batch", "32", "--out", runDir);
    expect(JSON.parse(r.stdout).steps).toBe(3);
    const data = JSON.parse(readFileSync(join(runDir, "cfg.json"), "utf8")).saekit.training.data;
    expect(data.exclude_tokens).toEqual([0]);
    // Every row but BOS's (first in each of the 20 contexts, and between documents).
    const tokens = m.shards.flatMap((_, i) => Array.from(readShardTokens(out, m, i)));
    expect(tokens.filter((t) => t === 0).length).toBeGreaterThan(20);
    expect(data.rows).toBe(tokens.filter((t) => t !== 0).length);
    // Measured on the same rows: each kept row once, however many are asked for.
    const measured = JSON.parse(saekit("measure", "--sae", runDir, "--data", out, "--exclude-tokens", "special", "--tokens", "100000"));
    expect(measured.rows).toBe(data.rows);
    // A sweep on the store, every run of it then spliced in one eval pass.
    const sweep = join(dir, "sweep");
    const swept = saekit("train", "--data", out, "--exclude-tokens", "special", "--sweep", "k=2,4", "--d-sae", "16", "--steps", "3", "--batch", "32", "--out", sweep);
    expect(swept.trim().split("\n").map((l) => JSON.parse(l).sweep)).toEqual(["k=2", "k=4"]);
    const evals = saekit("eval", "--model", model, "--dataset", text, "--sae", sweep, "--tokens", "60", "--ctx", "16", "--exclude-tokens", "special");
    expect(evals.trim().split("\n").map((l) => JSON.parse(l)).map((r) => [r.sae.slice(sweep.length + 1), r.sparsity.l0 <= Number(r.sae.slice(-1))])).toEqual([["k=2", true], ["k=4", true]]);
    const report = JSON.parse(saekit("analyze", "--sae", runDir, "--data", out, "--exclude-tokens", "special", "--tokens", "200", "--iterations", "50", "--out", join(dir, "special-report")));
    expect(report.saes[0]).toMatchObject({ d_sae: 16 });
    // A store from before the list was kept needs the ids; data with no tokens cannot be filtered.
    writeFileSync(join(out, "manifest.json"), JSON.stringify({ ...m, special_tokens: undefined }));
    expect(() => run("train", "--data", out, "--exclude-tokens", "special", "--steps", "1", "--out", join(dir, "no-run")))
      .toThrow(/does not list the model's special tokens .* give their ids/);
    expect(() => run("train", "--data", "synthetic:superposition", "--exclude-tokens", "0", "--steps", "1", "--out", join(dir, "no-run")))
      .toThrow(/leaving tokens out needs to know each row's token/);
  });

  it("exports a store as SAELens' activation cache, which train and measure read as the store", () => {
    const out = join(dir, "store-export");
    saekit(...harvestArgs(out).map((a) => (a === "1600" ? "320" : a)));
    const cache = join(dir, "cache");
    expect(JSON.parse(saekit("export-cache", "--store", out, "--out", cache))).toEqual({
      store: out, out: cache, column: "blocks.0.hook_resid_post", shape: [16, 32], dtype: "float32", contexts: 20, tokens: 320, files: 2,
    });
    const runDir = join(dir, "run-cache");
    expect(JSON.parse(saekit("train", "--data", cache, "--arch", "topk", "--k", "2", "--d-sae", "16", "--steps", "3", "--batch", "32", "--out", runDir)).steps).toBe(3);
    expect(JSON.parse(readFileSync(join(runDir, "cfg.json"), "utf8")).metadata).toMatchObject({ hook_name: "blocks.0.hook_resid_post", context_size: 16 });
    // The same vectors: measured on either, the same figures.
    const onStore = JSON.parse(saekit("measure", "--sae", runDir, "--data", out, "--tokens", "320"));
    const onCache = JSON.parse(saekit("measure", "--sae", runDir, "--data", cache, "--tokens", "320"));
    expect(onCache.rows).toBe(320);
    for (const key of ["fvu", "mse", "cossim"]) expect(onCache.reconstruction[key], key).toBeCloseTo(onStore.reconstruction[key], 6);
    expect(onCache.sparsity.l0).toBe(onStore.sparsity.l0);
    expect(onCache.sparsity.density_histogram).toEqual(onStore.sparsity.density_histogram);
    expect(() => run("export-cache", "--store", out, "--out", cache)).toThrow(/already holds a saved dataset/);
    // As Parquet, the files for the hub: the same vectors again.
    const parquet = join(dir, "cache-parquet");
    expect(JSON.parse(saekit("export-cache", "--store", out, "--out", parquet, "--format", "parquet"))).toMatchObject({ out: parquet, shape: [16, 32], files: 2 });
    const onParquet = JSON.parse(saekit("measure", "--sae", runDir, "--data", parquet, "--tokens", "320"));
    expect(onParquet.reconstruction).toEqual(onCache.reconstruction);
    expect(onParquet.sparsity).toEqual(onCache.sparsity);
  });

  it("trains end to end (--loss ce / kl): the model's loss with the SAE spliced in falls as it trains", () => {
    const base = ["train", "--model", model, "--dataset", text, "--hook", "blocks.0.hook_resid_post", "--ctx", "16", "--batch", "64",
      "--arch", "topk", "--k", "4", "--d-sae", "64", "--lr", "3e-3", "--log-every", "5"];
    const logOf = (out: string) => readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    // CE: the next-token loss with the SAE spliced in. (This random model predicts the text
    // so badly that the SAE learns to beat the clean model, so CE loss recovered means little.)
    const ce = join(dir, "e2e-ce");
    expect(JSON.parse(saekit(...base, "--loss", "ce", "--steps", "20", "--out", ce))).toMatchObject({ loss_fn: "ce", architecture: "topk", steps: 20, tokens: 20 * 64 });
    const ceLog = logOf(ce);
    expect(ceLog.at(-1).ce_loss).toBeLessThan(ceLog[0].ce_loss - 0.05);
    // The reconstruction error is reported, not trained on.
    expect(Number.isFinite(ceLog[0].mse) && Number.isFinite(ceLog[0].fvu)).toBe(true);
    expect(JSON.parse(readFileSync(join(ce, "cfg.json"), "utf8")).saekit.training.data).toMatchObject({ loss_fn: "ce", hook: "blocks.0.hook_resid_post" });
    // KL from the clean model's predictions: it falls, and the splice evaluates far closer to the clean model than zero ablation.
    const kl = join(dir, "e2e-kl");
    saekit(...base, "--loss", "kl", "--steps", "30", "--eval-every", "15", "--eval-tokens", "45", "--out", kl);
    const klLog = logOf(kl);
    expect(klLog.at(-1).kl_loss).toBeLessThan(0.7 * klLog[0].kl_loss);
    // --eval-every splices it into the model on held-out contexts, as for any run on a model.
    const evals = klLog.filter((r: Record<string, number>) => r.kl_div_score !== undefined);
    expect(evals.map((r: Record<string, number>) => r.step)).toEqual([15, 30]);
    expect(evals[1].kl_div_score).toBeGreaterThan(evals[0].kl_div_score);
    const e = JSON.parse(saekit("eval", "--model", model, "--dataset", text, "--sae", kl, "--tokens", "160", "--ctx", "16"));
    expect(e.kl_div_score).toBeGreaterThan(0.5);
    // Fine-tuning (--from) starts from the SAE's weights: the KL-trained one's KL, not a fresh SAE's.
    const tuned = join(dir, "e2e-tuned");
    expect(JSON.parse(saekit(...base, "--loss", "kl", "--from", kl, "--steps", "2", "--log-every", "1", "--out", tuned))).toMatchObject({ loss_fn: "kl", steps: 2 });
    expect(logOf(tuned)[0].kl_loss).toBeLessThan(0.7 * klLog[0].kl_loss);
    // e2e+ds: the downstream blocks' distance from the clean model joins the loss, and the metrics.
    const ds = join(dir, "e2e-ds");
    saekit(...base, "--loss", "kl", "--downstream-mse", "0.01", "--steps", "5", "--out", ds);
    const dsLast = logOf(ds).at(-1);
    expect(dsLast.downstream_mse).toBeGreaterThan(0);
    expect(dsLast.loss).toBeCloseTo(dsLast.kl_loss + dsLast.downstream_mse + dsLast.aux, 6);
    expect(() => run(...base, "--downstream-mse", "0.1", "--steps", "1", "--out", join(dir, "e2e-w"))).toThrow(/give --loss ce or kl/);
    expect(() => run(...base, "--loss", "ce", "--batch", "40", "--steps", "1", "--out", join(dir, "e2e-x"))).toThrow(/--batch 40 must be a multiple of --ctx 16/);
    const noK = base.filter((a, i) => a !== "--k" && base[i - 1] !== "--k");
    expect(() => run(...noK, "--loss", "kl", "--arch", "vaease", "--steps", "1", "--out", join(dir, "e2e-y"))).toThrow(/trains relu, panneal, topk/);
    expect(() => run(...base, "--loss", "kl", "--exclude-bos", "--steps", "1", "--out", join(dir, "e2e-z"))).toThrow(/drop --exclude-bos/);
    // Mid-block in a sequential block, through soft caps and post norms: Gemma 2's attention output.
    const gemma2 = writeTinyGemma(join(dir, "gemma2"), { gemma2: true, seed: 3 });
    const midBlock = join(dir, "e2e-gemma2");
    saekit("train", "--model", gemma2, "--dataset", text, "--hook", "blocks.0.hook_attn_out", "--ctx", "16", "--batch", "64",
      "--arch", "topk", "--k", "4", "--d-sae", "64", "--lr", "3e-3", "--log-every", "5", "--loss", "kl", "--steps", "30", "--out", midBlock);
    const midLog = logOf(midBlock);
    expect(midLog.at(-1).kl_loss).toBeLessThan(0.7 * midLog[0].kl_loss);
  });

  it("harvests, trains an SAE on the store and splice-evaluates it", () => {
    const h = JSON.parse(saekit(...harvestArgs(store)));
    expect(h).toMatchObject({ hook: "blocks.0.hook_resid_post", d: 32, ctx: 16, tokens: 1600, shards: 10 });
    // Asked for fewer tokens than it holds, a rerun says so and leaves the store as it was.
    const before = readFileSync(join(store, "manifest.json"), "utf8");
    const again = run(...harvestArgs(store).map((a) => (a === "1600" ? "800" : a)));
    expect(again.stderr).toContain("already holds 1600 tokens, at least the 800 asked for; nothing to harvest");
    expect(JSON.parse(again.stdout)).toMatchObject({ tokens: 1600, shards: 10 });
    expect(readFileSync(join(store, "manifest.json"), "utf8")).toBe(before);
    const runDir = join(dir, "run");
    const trained = run("train", "--data", store, "--arch", "topk", "--k", "4", "--d-sae", "64", "--steps", "30",
      "--batch", "64", "--log-every", "10", "--save-steps", "10,20", "--out", runDir);
    const t = JSON.parse(trained.stdout);
    expect(t.steps).toBe(30);
    // 30 x 64 rows from a store of 1,600: the run says it goes over the data more than once.
    expect(trained.stderr).toContain("30 steps x 64 rows = 1,920 rows from 1,600: 1.2 passes over the data");
    const cfg = JSON.parse(readFileSync(join(runDir, "cfg.json"), "utf8"));
    expect(cfg.metadata).toMatchObject({ hook_name: "blocks.0.hook_resid_post", context_size: 16, model_name: model });
    const bench = join(dir, "core_eval.json");
    const e = JSON.parse(saekit("eval", "--model", model, "--dataset", text, "--sae", runDir, "--tokens", "150", "--ctx", "16", "--saebench", bench));
    const sb = JSON.parse(readFileSync(bench, "utf8"));
    expect(sb.eval_result_metrics.model_performance_preservation.ce_loss_score).toBe(e.ce_loss_recovered);
    expect(sb.eval_result_details).toHaveLength(64);
    expect(e.features).toBeUndefined(); // per-latent arrays only in the SAEBench file
    const report = join(dir, "analysis");
    const a = JSON.parse(saekit("analyze", "--sae", runDir, "--data", store, "--tokens", "400", "--iterations", "100", "--out", report));
    expect(a.saes[0]).toMatchObject({ name: "run", d_sae: 64 });
    expect(a.saes[0].living).toBeGreaterThan(0);
    expect(a.files).toContain("report.html");
    // Barnes-Hut t-SNE places every living latent; the angle is refused before any work where it could be wrong.
    expect(JSON.parse(readFileSync(join(report, "analysis.json"), "utf8"))[0].tsne.latent).toHaveLength(a.saes[0].living);
    // The run's snapshots (--save-steps), a folder of SAEs: each analyzed, named by its tokens.
    const snapshots = JSON.parse(saekit("analyze", "--sae", join(runDir, "checkpoints"), "--data", store, "--tokens", "400", "--iterations", "50", "--out", join(dir, "snapshot-report")));
    expect(snapshots.saes.map((r: { name: string }) => r.name)).toEqual(["640", "1280"]);
    expect(() => saekit("analyze", "--sae", runDir, "--data", store, "--angle", "0.9", "--out", join(dir, "no-report")))
      .toThrow(/Barnes-Hut angle 0.9 must be in \[0, 0.7\]/);
    expect(existsSync(join(dir, "no-report"))).toBe(false);
    const dash = join(dir, "dashboards");
    const b = JSON.parse(saekit("dashboard", "--model", model, "--dataset", text, "--sae", runDir, "--latents", "0-7", "--tokens", "150", "--ctx", "16",
      "--prompt", "Once upon a time a dog", "--out", dash));
    expect(b).toMatchObject({ hook: "blocks.0.hook_resid_post", latents: 8 });
    const written = JSON.parse(readFileSync(join(dash, "dashboards.json"), "utf8"));
    expect(written.latents).toHaveLength(8);
    expect(written.prompt[0].token).toBe(0); // BOS first, then the prompt's tokens, each with its latents
    expect(written.prompt.slice(1).every((t: { top: unknown[] }) => t.top.length === 4)).toBe(true);
    expect(readFileSync(join(dash, "dashboard.html"), "utf8")).toContain('<section id="latent-7">');
    // Every latent's dashboard as Neuronpedia batch files, named after the model and SAE folders.
    const np = join(dir, "neuronpedia");
    const npArgs = ["dashboard", "--model", model, "--dataset", text, "--sae", runDir, "--tokens", "150", "--ctx", "16",
      "--format", "neuronpedia", "--features-per-batch", "32", "--np-dataset", "stories/rex", "--out", np];
    expect(JSON.parse(saekit(...npArgs))).toEqual({ out: np, batches: 2, written: 2, skipped: 0, hook: "blocks.0.hook_resid_post", latents: 64 });
    const batch1 = JSON.parse(readFileSync(join(np, "batch-1.json"), "utf8"));
    expect(batch1).toMatchObject({ model_id: "model", layer: 0, sae_set: "run", sae_id_suffix: null });
    expect(batch1.features.map((f: { feature_index: number }) => f.feature_index)).toEqual(Array.from({ length: 32 }, (_, i) => 32 + i));
    expect(batch1.features[0]).toMatchObject({ dataset: "stories/rex", n_tokens_in_prompt: 16, n_prompts_total: 10 });
    expect(JSON.parse(saekit(...npArgs))).toMatchObject({ written: 0, skipped: 2 });
    expect(() => saekit(...npArgs, "--prompt", "Once")).toThrow(/Neuronpedia files have none/);
    expect(e.hook).toBe("blocks.0.hook_resid_post"); // from the SAE's cfg.json
    for (const key of ["ce_loss_clean", "ce_loss_with_sae", "ce_loss_zero_ablated", "ce_loss_recovered", "kl_div_score"]) {
      expect(Number.isFinite(e[key]), key).toBe(true);
    }
    expect(e.reconstruction.fvu).toBeGreaterThan(0);
    expect(e.sparsity.l0).toBeLessThanOrEqual(4);
    expect(e.sparsity.density_histogram.counts).toHaveLength(50);
    // Several inference k in one pass: a line each, L0 at most that k.
    const atK = saekit("eval", "--model", model, "--dataset", text, "--sae", runDir, "--tokens", "150", "--ctx", "16", "--sae-k", "1,2,8")
      .trim().split("\n").map((l) => JSON.parse(l));
    expect(atK.map((r) => r.sae_k)).toEqual([1, 2, 8]);
    atK.forEach((r) => expect(r.sparsity.l0).toBeLessThanOrEqual(r.sae_k));
    expect(atK[0].sparsity.l0).toBeLessThan(atK[2].sparsity.l0);
  });

  it("harvests input/target pairs for every layer, trains a transcoder on one and evaluates it at the output hook", async () => {
    const out = join(dir, "pairs");
    const lines = saekit("harvest", "--model", model, "--dataset", text, "--hook", "blocks.*.ln2.hook_normalized",
      "--target-hook", "blocks.*.hook_mlp_out", "--tokens", "480", "--ctx", "16", "--out", out).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    const pairs = join(out, "blocks.1.ln2.hook_normalized");
    expect(lines[1]).toEqual({ out: pairs, model, hook: "blocks.1.ln2.hook_normalized", target_hook: "blocks.1.hook_mlp_out",
      d: 32, ctx: 16, dtype: "F32", tokens: 480, shards: 1 });
    expect(readManifest(join(out, "blocks.0.ln2.hook_normalized")).target_hook).toBe("blocks.0.hook_mlp_out");
    // The folder of stores trains one transcoder per store, each in a folder of the same name.
    const runs = join(dir, "transcoders");
    const trained = saekit("train", "--data", out, "--arch", "topk", "--k", "4", "--d-sae", "64", "--steps", "20", "--batch", "64", "--out", runs,
      "--eval-every", "10", "--eval-tokens", "45").trim().split("\n").map((l) => JSON.parse(l));
    // --eval-every on stores: each transcoder spliced into the manifest's model on the text after the store's.
    for (const t of trained) expect(Number.isFinite(t.ce_loss_recovered), JSON.stringify(t)).toBe(true);
    expect(trained.map((t) => t.out)).toEqual([0, 1].map((i) => join(runs, `blocks.${i}.ln2.hook_normalized`)));
    const run = trained[1].out;
    // The folder of transcoders evaluates each at its own hooks, one JSON line and file apiece.
    const evals = join(dir, "evals");
    const each = saekit("eval", "--model", model, "--dataset", text, "--sae", runs, "--tokens", "60", "--ctx", "16", "--out", evals)
      .trim().split("\n").map((l) => JSON.parse(l));
    expect(each.map((e) => [e.hook, e.hook_out])).toEqual([0, 1].map((i) => [`blocks.${i}.ln2.hook_normalized`, `blocks.${i}.hook_mlp_out`]));
    expect(JSON.parse(readFileSync(join(evals, "blocks.1.ln2.hook_normalized.json"), "utf8")).ce_loss_recovered).toBe(each[1].ce_loss_recovered);
    // Memory for one transcoder at a time: a pass over the same contexts each, the same results.
    expect(saekit("eval", "--model", model, "--dataset", text, "--sae", runs, "--tokens", "60", "--ctx", "16", "--sae-memory", "1e-9")
      .trim().split("\n").map((l) => JSON.parse(l))).toEqual(each);
    const refused = spawnSync(process.execPath, [bin, "eval", "--model", model, "--dataset", text, "--sae", runs, "--hook", "blocks.0.hook_resid_post"], { encoding: "utf8" });
    expect(refused.stderr).toMatch(/holds 2 SAEs, each read at the hook its config names/);
    await expect(openActivationSource(out)).rejects.toThrow(/holds 2 activation stores \(blocks.0.ln2.hook_normalized, blocks.1.ln2.hook_normalized\), not one/);
    const cfg = JSON.parse(readFileSync(join(run, "cfg.json"), "utf8"));
    expect(cfg).toMatchObject({ apply_b_dec_to_input: false, hook_name_out: "blocks.1.hook_mlp_out", d_out: 32 });
    expect(cfg.metadata).toMatchObject({ hook_name: "blocks.1.ln2.hook_normalized", hook_name_out: "blocks.1.hook_mlp_out" });
    const e = JSON.parse(saekit("eval", "--model", model, "--dataset", text, "--sae", run, "--tokens", "150", "--ctx", "16"));
    expect(e).toMatchObject({ hook: "blocks.1.ln2.hook_normalized", hook_out: "blocks.1.hook_mlp_out" });
    expect(Number.isFinite(e.ce_loss_recovered)).toBe(true);
    // Evals that compare decoder directions with the input hook's activations refuse it.
    const r = spawnSync(process.execPath, [bin, "absorption", "--model", model, "--sae", run], { encoding: "utf8" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/this transcoder writes to blocks.1.hook_mlp_out/);
  });

  it("autointerp asks an OpenAI-compatible server to explain and score latents, retrying what is passing and resuming from its journal", async () => {
    const { createServer } = await import("node:http");
    let seen: string[] = [];
    // Which request (1-based, counted per run) gets which error status.
    let failures = new Map<number, number>();
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const { messages } = JSON.parse(body);
        seen.push(`${req.url} ${req.headers.authorization}`);
        const status = failures.get(seen.length);
        if (status) {
          res.statusCode = status;
          res.end("not now");
          return;
        }
        const reply = messages[1].content.startsWith("The activating") ? "This neuron activates on parks." : "2";
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: reply } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const run = join(dir, "autointerp-sae");
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: 32, d_sae: 16, k: 3 }));
    for (const t of sae.params.values()) t.data.forEach((_, i) => (t.data[i] = Math.sin(i * 1.7 + t.numel)));
    saveSae(run, sae, { metadata: { hook_name: "blocks.0.hook_resid_post" } });
    const out = join(dir, "autointerp.json");
    const journal = join(dir, "autointerp.journal.jsonl");
    const autointerp = async (...extra: string[]) => {
      const child = spawn(process.execPath, [bin, "autointerp", "--model", model, "--dataset", text, "--sae", run, "--tokens", "1600",
        "--ctx", "32", "--latents", "0-3", "--llm-url", `http://127.0.0.1:${port}/v1`, "--llm-model", "local", "--api-key-env", "SAEKIT_TEST_KEY",
        "--journal", journal, ...extra], { env: { ...process.env, SAEKIT_THREADS: "1", SAEKIT_TEST_KEY: "secret" } });
      let stdout = "", stderr = "";
      child.stdout.on("data", (c) => (stdout += c));
      child.stderr.on("data", (c) => (stderr += c));
      const code = await new Promise<number | null>((r) => child.on("close", r));
      return { code, stdout, stderr };
    };
    // Latents 0, 1 and 3 fire often enough to interpret (2 does not). The endpoint refuses
    // the fifth request outright (a 400 is not retried): the run fails after two latents,
    // which its journal keeps.
    failures = new Map([[5, 400]]);
    const failed = await autointerp("--concurrency", "1");
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/chat\/completions: HTTP 400 not now/);
    expect(readFileSync(journal, "utf8").trim().split("\n")).toHaveLength(3); // settings + 2 latents
    // The rerun asks only for the last one, and waits out a 503 instead of failing.
    seen = [];
    failures = new Map([[2, 503]]);
    const ok = await autointerp("--saebench", out);
    server.close();
    expect(ok.code, ok.stderr).toBe(0);
    const r = JSON.parse(ok.stdout);
    expect(r.chosen).toEqual([0, 1, 2, 3]);
    expect(r.skipped).toEqual([2]);
    expect(r.latents.map((l: { latent: number }) => l.latent)).toEqual([0, 1, 3]);
    for (const l of r.latents) expect(l).toMatchObject({ explanation: "parks", predictions: [2] });
    expect(seen.every((s) => s === "/v1/chat/completions Bearer secret")).toBe(true);
    expect(seen.length).toBe(2 + 1); // one latent, two calls, one of them twice
    expect(JSON.parse(readFileSync(out, "utf8")).eval_result_metrics.autointerp.autointerp_score).toBe(r.autointerp_score);
    // Other settings are refused rather than mixed into the journal.
    const other = await autointerp("--seed", "7");
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/journals a run with other settings \(seed\)/);
  });

  it("pretokenize writes a dataset of contexts that reads back as one context per row", async () => {
    const file = join(dir, "tokens.parquet");
    const r = JSON.parse(saekit("pretokenize", "--model", model, "--dataset", text, "--ctx", "16", "--tokens", "100", "--out", file));
    expect(r).toEqual({ out: file, rows: 7, ctx: 16, tokens: 112 });
    const { readItems } = await import("../../src/data/text.js");
    const rows: Int32Array[] = [];
    for await (const item of readItems(file)) rows.push(item as Int32Array);
    expect(rows.map((row) => row.length)).toEqual(Array(7).fill(16));
    expect(rows.every((row) => row[0] === 0)).toBe(true); // GPT-NeoX's BOS first, as harvest packs them
  });

  it("a harvest of text sampled from the model loads it whole (sampling runs to its logits)", () => {
    // A harvest otherwise reads only the blocks up to its hook: here that would leave sampling without logits.
    const h = JSON.parse(saekit("harvest", "--model", model, "--dataset", "sampled:3:1", "--hook", "blocks.0.hook_resid_post",
      "--tokens", "48", "--ctx", "16", "--out", join(dir, "sampled-store")));
    expect(h).toMatchObject({ tokens: 48, shards: 1 });
  });

  it("a harvest killed with SIGKILL and rerun ends with the same store as one clean run", async () => {
    const killed = join(dir, "killed");
    const child = spawn(process.execPath, [bin, ...harvestArgs(killed), "--threads", "1"], { stdio: "ignore" });
    const exited = new Promise<void>((res) => child.on("exit", () => res()));
    while (!existsSync(join(killed, "shard-00002.safetensors"))) await new Promise((r) => setTimeout(r, 2));
    child.kill("SIGKILL");
    await exited;
    saekit(...harvestArgs(killed));
    const files = readdirSync(store).sort();
    expect(readdirSync(killed).sort()).toEqual(files); // no temporaries: the rerun removed any the kill left
    for (const f of files) {
      const a = readFileSync(join(store, f));
      const b = readFileSync(join(killed, f));
      if (f === "manifest.json") expect(JSON.parse(b.toString())).toEqual(JSON.parse(a.toString()));
      else expect(b.equals(a), f).toBe(true);
    }
    expect(readManifest(killed).complete).toBe(true);
  });

  it("writes full-vocabulary logits and prints a greedy continuation", async () => {
    const out = join(dir, "logits.safetensors");
    saekit("logits", "--model", model, "--tokens", "5,17,200,3", "--out", out);
    const t = SafetensorsFile.open(out).read("logits");
    expect(t.shape).toEqual([4, 300]);
    const { model: m } = await loadModel(model);
    expect(t.data).toEqual(m.forward(Int32Array.from([5, 17, 200, 3]), 1, 4).logits);
    // --model-dtype bf16 runs on bfloat16 weights: the library's model loaded that way.
    const half = join(dir, "logits-bf16.safetensors");
    saekit("logits", "--model", model, "--model-dtype", "bf16", "--tokens", "5,17,200,3", "--out", half);
    const { model: mb } = await loadModel(model, { weights: "bf16" });
    expect(SafetensorsFile.open(half).read("logits").data).toEqual(mb.forward(Int32Array.from([5, 17, 200, 3]), 1, 4).logits);
    const g1 = saekit("generate", "--model", model, "--prompt", "Once upon", "--max-new", "6");
    const g2 = saekit("generate", "--model", model, "--prompt", "Once upon", "--max-new", "6");
    expect(g1).toBe(g2);
    expect(g1.startsWith("Once upon")).toBe(true);
  });
});

describe("hf: model specs", () => {
  /** A stand-in for huggingface.co serving a folder with HTTP range requests. */
  function fakeHub(root: string, repo: string, token?: string): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      // A gated repository answers only requests that carry the user's token.
      if (token && new Headers(init?.headers).get("Authorization") !== `Bearer ${token}`) {
        return new Response("gated", { status: 401, headers: { "X-Error-Message": "Access to this model is restricted" } });
      }
      const m = new RegExp(`^/${repo}/resolve/main/(.+)$`).exec(url.pathname);
      return serveHubFile(root, m ? join(root, decodeURIComponent(m[1]!)) : null, init);
    }) as typeof fetch;
  }

  it("downloads a model once into the cache and loads it from there", async () => {
    const cache = join(dir, "cache");
    const fetch = fakeHub(model, "tiny-org/tiny-neox");
    const local = await resolveHubModel("hf:tiny-org/tiny-neox", { cacheDir: cache, fetch, progress: false });
    expect(readFileSync(join(local, "model.safetensors")).equals(readFileSync(join(model, "model.safetensors")))).toBe(true);
    const failing = (() => { throw new TypeError("fetch failed"); }) as unknown as typeof fetch;
    expect(await resolveHubModel("hf:tiny-org/tiny-neox", { cacheDir: cache, fetch: failing })).toBe(local); // cached
    const loaded = await loadModel("hf:tiny-org/tiny-neox", { cacheDir: cache, fetch: failing });
    expect(loaded.model.cfg.nLayers).toBe(2);
    expect(loaded.tokenizer).not.toBeNull();
  });

  it("a download cut off mid-file resumes where it stopped, unless the file changed meanwhile", async () => {
    const cache = join(dir, "cache-resume");
    const weights = readFileSync(join(model, "model.safetensors"));
    const half = Math.floor(weights.length / 2);
    const ranges: string[] = [];
    const hub = fakeHub(model, "tiny-org/tiny-neox");
    const watching = (cut: boolean) => (async (input: string | URL | Request, init?: RequestInit) => {
      const res = await hub(input, init);
      if (!String(input).endsWith("/model.safetensors")) return res;
      const range = new Headers(init?.headers).get("Range") ?? "all";
      ranges.push(range);
      if (!cut || range === "bytes=0-0") return res;
      // The connection drops after half of the file, which arrives 4 KiB at a time.
      const bytes = new Uint8Array(await res.arrayBuffer());
      let at = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 1));
          if (at >= half) return c.error(new TypeError("terminated"));
          c.enqueue(bytes.slice(at, Math.min(half, at + 4096)));
          at += 4096;
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    }) as typeof fetch;
    await expect(resolveHubModel("hf:tiny-org/tiny-neox", { cacheDir: cache, fetch: watching(true), progress: false })).rejects.toThrow(/terminated/);
    const folder = join(cache, "tiny-org--tiny-neox", "main");
    const kept = readFileSync(join(folder, "model.safetensors.part")).length; // what reached the disk
    expect(kept).toBeGreaterThan(half / 2);
    expect(kept).toBeLessThanOrEqual(half);
    ranges.length = 0;
    const local = await resolveHubModel("hf:tiny-org/tiny-neox", { cacheDir: cache, fetch: watching(false), progress: false });
    expect(ranges.at(-1)).toBe(`bytes=${kept}-${weights.length - 1}`); // only the rest
    expect(readFileSync(join(local, "model.safetensors")).equals(weights)).toBe(true);
    expect(existsSync(join(folder, "model.safetensors.part.json"))).toBe(false);
    // A .part of another version of the file (its ETag differs) is not continued.
    const again = join(dir, "cache-resume-2");
    await expect(resolveHubModel("hf:tiny-org/tiny-neox", { cacheDir: again, fetch: watching(true), progress: false })).rejects.toThrow(/terminated/);
    const meta = join(again, "tiny-org--tiny-neox", "main", "model.safetensors.part.json");
    writeFileSync(meta, JSON.stringify({ ...JSON.parse(readFileSync(meta, "utf8")), etag: "\"an-older-version\"" }));
    ranges.length = 0;
    const fresh = await resolveHubModel("hf:tiny-org/tiny-neox", { cacheDir: again, fetch: watching(false), progress: false });
    expect(ranges.at(-1)).toBe("all"); // from the start
    expect(readFileSync(join(fresh, "model.safetensors")).equals(weights)).toBe(true);
  });

  it("loading for early hooks downloads only the shards they read; a whole load later fetches the rest", async () => {
    // A sharded checkpoint: the embedding and block 0 in one shard, block 1, the final norm and embed_out in another.
    const sharded = join(dir, "sharded-repo");
    mkdirSync(sharded, { recursive: true });
    for (const f of ["config.json", "tokenizer.json"]) copyFileSync(join(model, f), join(sharded, f));
    const file = SafetensorsFile.open(join(model, "model.safetensors"));
    const first = (n: string) => n === "gpt_neox.embed_in.weight" || n.startsWith("gpt_neox.layers.0.");
    const map: Record<string, string> = {};
    for (const [shard, names] of [["model-00001-of-00002.safetensors", file.names().filter(first)], ["model-00002-of-00002.safetensors", file.names().filter((n) => !first(n))]] as const) {
      writeSafetensors(join(sharded, shard), Object.fromEntries(names.map((n) => [n, file.read(n)])));
      for (const n of names) map[n] = shard;
    }
    writeFileSync(join(sharded, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: map }));
    const requested: string[] = [];
    const hub = fakeHub(sharded, "org/sharded");
    const counting = (async (input: string | URL | Request, init?: RequestInit) => {
      requested.push(String(input instanceof Request ? input.url : input).split("/").pop()!);
      return hub(input, init);
    }) as typeof fetch;
    const opts = { cacheDir: join(dir, "cache-sharded"), fetch: counting, progress: false };
    const early = await loadModel("hf:org/sharded", { ...opts, hooks: ["blocks.0.hook_resid_post"] });
    expect(requested).toContain("model-00001-of-00002.safetensors");
    expect(requested).not.toContain("model-00002-of-00002.safetensors");
    const { model: local } = await loadModel(model);
    const tokens = Int32Array.from([5, 17, 200, 3, 9, 11]);
    expect(early.model.activationAt(tokens, 1, 6, "blocks.0.hook_resid_post")).toEqual(local.activationAt(tokens, 1, 6, "blocks.0.hook_resid_post"));
    const whole = await loadModel("hf:org/sharded", opts);
    expect(requested).toContain("model-00002-of-00002.safetensors");
    expect(whole.model.forward(tokens, 1, 6).logits).toEqual(local.forward(tokens, 1, 6).logits);
    // Complete now: no more requests.
    requested.length = 0;
    await loadModel("hf:org/sharded", opts);
    expect(requested).toEqual([]);
  });

  it("falls back to pytorch_model.bin for repositories without safetensors", async () => {
    const root = join(import.meta.dirname, "..", "fixtures", "torch", "gpt2");
    const local = await resolveHubModel("hf:old-org/tiny-gpt2", { cacheDir: join(dir, "cache-bin"), fetch: fakeHub(root, "old-org/tiny-gpt2"), progress: false });
    expect(readFileSync(join(local, "pytorch_model.bin")).equals(readFileSync(join(root, "pytorch_model.bin")))).toBe(true);
    expect((await loadModel(local)).model.cfg.architecture).toBe("gpt2");
  });

  it("downloads an SAE from a folder of a hub repository, in any format saekit reads", async () => {
    // A release repository: a SAELens SAE in blocks.0/ and a dictionary_learning one in dl/topk/.
    const release = join(dir, "release");
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: 8, d_sae: 16, k: 2 }));
    saveSae(join(release, "blocks.0"), sae, { metadata: { hook_name: "blocks.0.hook_resid_post" } });
    mkdirSync(join(release, "dl", "topk"), { recursive: true });
    const dl = join(import.meta.dirname, "..", "fixtures", "torch", "dictionary_learning", "topk");
    for (const f of ["ae.pt", "config.json"]) copyFileSync(join(dl, f), join(release, "dl", "topk", f));
    const opts = { cacheDir: join(dir, "cache-sae"), fetch: fakeHub(release, "org/saes"), progress: false };
    const lens = await fetchSae("hf:org/saes/blocks.0", opts);
    expect(lens.format).toBe("saelens");
    expect(lens.metadata.hook_name).toBe("blocks.0.hook_resid_post");
    const dict = await fetchSae("hf:org/saes/dl/topk", opts);
    expect(dict).toMatchObject({ format: "dictionary_learning", sae: { cfg: { architecture: "topk", k: 3 } } });
    await expect(fetchSae("hf:org/saes/nothing", opts)).rejects.toThrow(/downloading org\/saes\/nothing@main: no SAE here/);
    await expect(fetchSae("hf:org/saes/../x", opts)).rejects.toThrow(/not a hub spec/);
    // A Goodfire repository: one file at its root, named after the repository.
    const goodfire = join(dir, "goodfire-release");
    mkdirSync(goodfire, { recursive: true });
    copyFileSync(join(import.meta.dirname, "..", "fixtures", "torch", "goodfire", "Llama-3.1-8B-Instruct-SAE-l19.pth"), join(goodfire, "Llama-3.1-8B-Instruct-SAE-l19.pth"));
    const fire = await fetchSae("hf:Goodfire/Llama-3.1-8B-Instruct-SAE-l19", { ...opts, fetch: fakeHub(goodfire, "Goodfire/Llama-3.1-8B-Instruct-SAE-l19") });
    expect(fire).toMatchObject({ format: "goodfire", sae: { cfg: { architecture: "relu", d_in: 6, d_sae: 10 } }, metadata: { hook_name: "blocks.19.hook_resid_post" } });
  });

  it("downloads a GemmaScope SAE (params.npz) and a gated repository with HF_TOKEN", async () => {
    const release = join(import.meta.dirname, "..", "fixtures", "gemma-scope", "gemma-scope-2b-pt-res");
    const spec = "hf:google/gemma-scope-2b-pt-res/layer_3/width_16k/average_l0_5";
    const fetchGated = fakeHub(release, "google/gemma-scope-2b-pt-res", "hf_test");
    const saved = process.env.HF_TOKEN;
    try {
      delete process.env.HF_TOKEN;
      await expect(fetchSae(spec, { cacheDir: join(dir, "cache-gs-denied"), fetch: fetchGated, progress: false })).rejects.toThrow(/downloading/);
      process.env.HF_TOKEN = "hf_test";
      const gs = await fetchSae(spec, { cacheDir: join(dir, "cache-gs"), fetch: fetchGated, progress: false });
      expect(gs.format).toBe("gemma_scope");
      expect(gs.metadata).toMatchObject({ model_name: "gemma-2-2b", hook_name: "blocks.3.hook_resid_post" });
      expect(gs.sae.cfg).toMatchObject({ architecture: "jumprelu", d_in: 6, d_sae: 10 });
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
  });

  it("says where to put the files when the hub cannot be reached", async () => {
    const failing = (async () => { throw new TypeError("fetch failed"); }) as unknown as typeof fetch;
    await expect(resolveHubModel("hf:EleutherAI/pythia-70m@v0", { cacheDir: join(dir, "c2"), fetch: failing }))
      .rejects.toThrow(/cannot reach the Hugging Face hub.*put the model's config.json.*c2\/EleutherAI--pythia-70m\/v0/);
    await expect(resolveHubModel("hf:not a repo", {})).rejects.toThrow(/not a hub spec/);
  });
});
