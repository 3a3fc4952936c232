/** Training curves from a real run's metrics.jsonl. */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { svgToPng } from "../../src/analysis/png.js";
import { readRunMetrics, readRunsIn, writeTrainingReport } from "../../src/analysis/training-report.js";
import { defaultConfig } from "../../src/sae/config.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { trainSae } from "../../src/train/trainer.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();

describe("training curves", () => {
  it("plot every metric of every run against tokens, and list the last record of each", () => {
    const runs = ["a", "b"].map((name, i) => {
      const out = join(dir, name);
      trainSae(defaultConfig(i === 0 ? { architecture: "topk", d_in: 16, d_sae: 32, k: 2 } : { architecture: "vsae", d_in: 16, d_sae: 32, k: 2, beta: 0.1 }),
        new SuperpositionSource({ d: 16, nFeatures: 24, seed: i }), { steps: 30, batchSize: 64, lr: 1e-3, logEvery: 5, outDir: out, progress: false });
      return readRunMetrics(out);
    });
    expect(runs[0]!.records).toHaveLength(6);
    const files = writeTrainingReport(join(dir, "plots"), runs);
    expect(files).toEqual(expect.arrayContaining(["loss.svg", "mse.svg", "fvu.svg", "l0.svg", "dead_frac.svg", "lr.svg", "kl.svg", "training.html"]));
    // Both runs have an FVU curve of 6 points; only the vSAE has a KL curve.
    const fvu = readFileSync(join(dir, "plots", "fvu.svg"), "utf8");
    const lines = [...fvu.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1]!.split(" ").length);
    expect(lines).toEqual([6, 6]);
    expect(readFileSync(join(dir, "plots", "kl.svg"), "utf8").match(/<polyline /g)).toHaveLength(1);
    // Each figure also as a PNG, rendered from the same SVG.
    const png = readFileSync(join(dir, "plots", "fvu.png"));
    expect(files).toContain("fvu.png");
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    expect(png.equals(Buffer.from(svgToPng(fvu)))).toBe(true);
    const html = readFileSync(join(dir, "plots", "training.html"), "utf8");
    expect(html).toContain("<td>a</td><td>30</td><td>1920</td>");
  });

  it("plots the evaluations logged every few steps through the records between them", () => {
    const out = join(dir, "evaluated");
    trainSae(defaultConfig({ architecture: "topk", d_in: 16, d_sae: 32, k: 2 }), new SuperpositionSource({ d: 16, nFeatures: 24, seed: 3 }), {
      steps: 30, batchSize: 64, lr: 1e-3, logEvery: 5, evalEvery: 10, outDir: out, progress: false,
      evaluate: () => ({ ce_loss_recovered: 0.9, kl_div_score: 0.8 }),
    });
    const files = writeTrainingReport(join(dir, "eval-plots"), [readRunMetrics(out)]);
    expect(files).toEqual(expect.arrayContaining(["ce_loss_recovered.svg", "kl_div_score.svg"]));
    const svg = readFileSync(join(dir, "eval-plots", "ce_loss_recovered.svg"), "utf8");
    expect(svg).toContain("CE loss recovered (spliced into the model)");
    // Steps 10, 20 and 30 only: the records without an evaluation are left out, not drawn as gaps.
    expect([...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1]!.split(" ").length)).toEqual([3]);
  });

  it("takes a folder of runs (a sweep's) as each run in it, named folder/run", () => {
    // The first test's runs a and b sit in `dir`, beside folders that are not runs.
    const runs = readRunsIn(dir);
    expect(runs.map((r) => r.name)).toEqual(expect.arrayContaining([`${basename(dir)}/a`, `${basename(dir)}/b`]));
    expect(runs.find((r) => r.name.endsWith("/a"))!.records).toEqual(readRunMetrics(join(dir, "a")).records);
    expect(readRunsIn(join(dir, "a")).map((r) => r.name)).toEqual(["a"]);
    mkdirSync(join(dir, "no-runs"));
    expect(() => readRunsIn(join(dir, "no-runs"))).toThrow(/no-runs: no metrics.jsonl/);
  });

  it("names the folder that has no metrics", () => {
    expect(() => readRunMetrics(join(dir, "nothing"))).toThrow(/nothing: no metrics.jsonl/);
    mkdirSync(join(dir, "empty"));
    writeFileSync(join(dir, "empty", "metrics.jsonl"), "not json\n");
    expect(() => readRunMetrics(join(dir, "empty"))).toThrow(/no metrics records yet/);
  });
});
