/**
 * The stories260K worked example at a small scale (a few thousand tokens): harvest from a
 * real pretrained model, train every architecture on the store, splice-evaluate on held-out
 * text, write results. The full-size run is `saekit example stories260k`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readManifest } from "../../src/data/store.js";
import { runStories260kExample } from "../../src/examples/stories260k.js";
import { loadSae } from "../../src/sae/saelens.js";
import { sharedData, tempDir } from "../helpers.js";

const dataDir = sharedData("stories260K") ? join(sharedData("stories260K")!, "..") : null;

describe.skipIf(!dataDir)("saekit example stories260k (small)", () => {
  const out = tempDir();
  it("runs harvest -> train (topk, vsae all/active, abstopk, batchtopk, matryoshka, mp, vaease, vae) -> eval end to end", async () => {
    const { rows, levels, probing } = await runStories260kExample({
      dataDir: dataDir!, outDir: out, harvestTokens: 4000, ctx: 64, ks: [8], steps: 40, batch: 256,
      vaeaseSteps: 20, evalTokens: 630, progress: false,
    });
    expect(rows.map((r) => r.run)).toEqual([
      "topk-k8", "vsae-all-k8", "vsae-active-k8", "abstopk-k8", "vsae-all-k8-beta0.01", "vsae-active-k8-beta0.01",
      "batchtopk-k8", "matryoshka-k8", "mp-k8", "vaease", "vae",
    ]);
    const m = readManifest(join(out, "store"));
    expect(m.hook).toBe("blocks.2.hook_resid_post");
    expect(m.tokens).toBeGreaterThanOrEqual(4000);
    for (const r of rows) {
      for (const key of ["fvu", "l0", "frac_alive", "ce_loss_recovered", "kl_div_score", "ce_clean"] as const) {
        expect(Number.isFinite(r[key]), `${r.run} ${key}`).toBe(true);
      }
      expect(existsSync(join(out, "runs", r.run, "sae_weights.safetensors"))).toBe(true);
      expect(existsSync(join(out, "runs", r.run, "eval.json"))).toBe(true);
    }
    // TopK codes keep at most k latents (BatchTopK only on average in training; at
    // inference it thresholds); VAEase reports active dimensions instead.
    for (const r of rows.slice(0, 6)) expect(r.l0).toBeLessThanOrEqual(8);
    expect(rows.find((r) => r.run === "mp-k8")).toMatchObject({ architecture: "mp", k: 8 });
    expect(rows.find((r) => r.run === "mp-k8")!.l0).toBeLessThanOrEqual(8); // at most k pursuit steps
    for (const vae of rows.slice(-2)) {
      expect(vae.l0).toBeGreaterThan(0);
      expect(vae.l0).toBeLessThanOrEqual(512);
    }
    expect(loadSae(join(out, "runs", "vae")).sae.cfg).toMatchObject({ architecture: "vaease", gate: false });
    // Matryoshka's nested levels (d_sae / 16 ... d_sae / 2), each spliced on its own.
    expect(levels.map((l) => [l.run, l.width])).toEqual([32, 64, 128, 256].map((w) => ["matryoshka-k8", w]));
    for (let i = 1; i < levels.length; i++) expect(levels[i]!.l0).toBeGreaterThanOrEqual(levels[i - 1]!.l0);
    // The clean loss is the model's: the same for every run (same held-out contexts).
    expect(new Set(rows.map((r) => r.ce_clean.toFixed(6))).size).toBe(1);
    expect(rows[0]!.ce_clean).toBeLessThan(3); // a trained model on its own data
    expect(readFileSync(join(out, "results.md"), "utf8")).toMatch(/^\| run \| k \| FVU[^]*\| run \| level width \|[^]*\| probe on \| top 1 \| top 2 \| top 5 \| all \|/);
    // k-sparse probing of the model's channels and every run on the story-setting task.
    expect(probing.map((p) => p.run)).toEqual(["model", ...rows.map((r) => r.run)]);
    for (const p of probing) {
      for (const acc of [...Object.values(p.top_k), p.all]) {
        expect(acc).toBeGreaterThanOrEqual(0);
        expect(acc).toBeLessThanOrEqual(1);
      }
    }
    // The model's own activations tell the settings apart well above chance (0.5).
    expect(probing[0]!.all).toBeGreaterThan(0.6);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    expect(results.probing.classes).toEqual(["beach", "forest", "garden", "park", "school"]);
    // The vSAE paper's latent analyses of every run.
    const analysis = JSON.parse(readFileSync(join(out, "analysis", "analysis.json"), "utf8"));
    expect(analysis.map((a: { name: string }) => a.name)).toEqual(rows.map((r) => r.run));
    for (const a of analysis) expect(a.living).toBe(a.max_activation.filter((v: number) => v > 0).length);
    expect(existsSync(join(out, "analysis", "report.html"))).toBe(true);
    expect(existsSync(join(out, "training", "training.html"))).toBe(true);
  });
});
