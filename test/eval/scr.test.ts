/**
 * Spurious correlation removal: quadrant sampling, the metric on pooled vectors where the
 * attribute has latents of its own (SCR high) or shares them with the target (SCR low), and
 * `saekit scr` end to end.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { Rng } from "../../src/core/rng.js";
import type { LabeledText } from "../../src/data/labeled.js";
import { quadrantTexts, scrQuadrants, spuriousCorrelationRemoval } from "../../src/eval/scr.js";
import type { ClassRows } from "../../src/eval/sparse-probing.js";
import { tempDir } from "../helpers.js";
import { writeTinyModelAndSae } from "./tiny-task.js";

const dir = tempDir();
const pair = { target: ["professor", "nurse"] as [string, string], attribute: ["male", "female"] as [string, string] };

describe("SCR quadrants", () => {
  it("splits texts by class and attribute and takes 2q of the biased quadrants, q of the others", () => {
    const items: LabeledText[] = [];
    for (const [label, attribute, n] of [["professor", "male", 30], ["professor", "female", 12], ["nurse", "male", 11], ["nurse", "female", 25], ["chef", "male", 5]] as const) {
      for (let i = 0; i < n; i++) items.push({ text: `${label}-${attribute}-${i}`, label, attribute });
    }
    const quads = scrQuadrants(items, pair, 1);
    expect([quads.pp.length, quads.pn.length, quads.np.length, quads.nn.length]).toEqual([30, 12, 11, 25]);
    expect(quads.pn.every((t) => t.startsWith("professor-female"))).toBe(true);
    const texts = quadrantTexts(quads, 10, pair);
    expect([...texts.keys()]).toEqual(["pp", "pn", "np", "nn"]);
    expect([...texts.values()].map((t) => t.length)).toEqual([20, 10, 10, 20]);
    expect(() => quadrantTexts(quads, 12, pair)).toThrow(/needs 12 texts of nurse \+ male, the dataset has 11/);
  });
});

describe("SCR on pooled vectors", () => {
  // d = 6: dims 0-1 carry the target (professor +, nurse -), dims 2-3 the attribute (male +,
  // female -), louder, so a probe trained where they coincide leans on the attribute.
  const d = 6;
  function quadrants(seed: number, q: number): ClassRows {
    const rng = new Rng(seed);
    const classes = new Map<string, Float32Array>();
    for (const [key, t, a, n] of [["pp", 1, 1, 2 * q], ["pn", 1, -1, q], ["np", -1, 1, q], ["nn", -1, -1, 2 * q]] as const) {
      const x = new Float32Array(n * d).map(() => 0.5 * rng.normal());
      for (let i = 0; i < n; i++) {
        x[i * d]! += 0.5 * t; x[i * d + 1]! += 0.5 * t;
        x[i * d + 2]! += 1.5 * a; x[i * d + 3]! += 1.5 * a;
      }
      classes.set(key, x);
    }
    return { width: d, classes };
  }
  /** ReLU codes of an SAE with these decoder rows (projections onto them). */
  function codes(split: ClassRows, W: number[][]): ClassRows {
    const classes = new Map<string, Float32Array>();
    for (const [key, x] of split.classes) {
      const n = x.length / d;
      classes.set(key, Float32Array.from({ length: n * W.length }, (_, e) => {
        const i = Math.floor(e / W.length), j = e % W.length;
        return Math.max(0, W[j]!.reduce((s, w, k) => s + w * x[i * d + k]!, 0));
      }));
    }
    return { width: W.length, classes };
  }
  const h = Math.SQRT1_2;
  const run = (W: number[][]) => {
    const train = quadrants(1, 150), test = quadrants(2, 100);
    return spuriousCorrelationRemoval({ model: train, sae: codes(train, W) }, { model: test, sae: codes(test, W) }, 150, 100,
      Float32Array.from(W.flat()), { nValues: [2] });
  };

  it("recovers the target when the attribute has latents of its own, not when they are shared", () => {
    // Separate: +-target and +-attribute latents. Mixed: each latent carries both signals.
    const separate = run([[h, h, 0, 0, 0, 0], [-h, -h, 0, 0, 0, 0], [0, 0, h, h, 0, 0], [0, 0, -h, -h, 0, 0]]);
    const mixed = run([[0.5, 0.5, 0.5, 0.5, 0, 0], [-0.5, -0.5, -0.5, -0.5, 0, 0], [0.5, 0.5, -0.5, -0.5, 0, 0], [-0.5, -0.5, 0.5, 0.5, 0, 0]]);
    for (const r of [separate, mixed]) {
      // The biased probe is good on its own data, worse on target data than on attribute data.
      expect(r.accuracy.biased).toBeGreaterThan(0.95);
      expect(r.accuracy.biased_on_target).toBeLessThan(r.accuracy.biased_on_spurious);
      expect(r.metric_direction).toBe(1);
      expect(r.scr_metric["2"]).toBe(r.scr_dir1["2"]);
    }
    // Ablating the two attribute latents leaves the biased probe the target signal alone.
    expect([...separate.dir1_latents["2"]!].sort()).toEqual([2, 3]);
    expect(separate.scr_dir1["2"]).toBeGreaterThan(0.5);
    expect(separate.scr_dir1["2"]!).toBeGreaterThan(mixed.scr_dir1["2"]! + 0.3);
  });
});

describe("saekit scr", () => {
  it("runs on a dataset with a class and an attribute field and writes SAEBench's scr output", () => {
    const { modelDir, saeDir } = writeTinyModelAndSae(dir);
    const rng = new Rng(7);
    const words = { professor: ["lecture", "exam"], nurse: ["ward", "care"], male: ["he", "his"], female: ["she", "her"] };
    const lines: string[] = [];
    for (let i = 0; i < 60; i++) {
      for (const job of ["professor", "nurse"] as const) {
        for (const gender of ["male", "female"] as const) {
          const text = [...words[job], ...words[gender]].map((w) => `${w}${rng.int(3) ? "" : "s"}`).join(" ");
          lines.push(JSON.stringify({ bio: text, job, gender: gender === "male" ? 0 : 1 }));
        }
      }
    }
    const data = join(dir, "bios.jsonl");
    writeFileSync(data, lines.join("\n"));
    const bench = join(dir, "scr-saebench.json");
    const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "scr", "--model", modelDir, "--sae", saeDir,
      "--dataset", data, "--text-field", "bio", "--label-field", "job", "--attribute-field", "gender", "--attribute", "0:1",
      "--pairs", "professor:nurse", "--train-per-quadrant", "20", "--test-per-quadrant", "5", "--n", "2,5", "--ctx", "8",
      "--saebench", bench], { encoding: "utf8", env: { ...process.env, SAEKIT_THREADS: "1" } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.pairs).toHaveLength(1);
    expect(out.pairs[0]).toMatchObject({ target: ["professor", "nurse"], attribute: ["0", "1"] });
    expect(Object.keys(out.scr_dir1)).toEqual(["2", "5"]);
    expect(out.pairs[0].dir1_latents["5"].length).toBeLessThanOrEqual(5);
    const sb = JSON.parse(readFileSync(bench, "utf8"));
    expect(sb.eval_type_id).toBe("scr");
    expect(sb.eval_config).toMatchObject({ perform_scr: true, n_values: [2, 5], train_set_size: 80, test_set_size: 20 });
    expect(sb.eval_result_metrics.scr_metrics.scr_dir1_threshold_2).toBe(out.scr_dir1["2"]);
    expect(sb.eval_result_details[0].dataset_name).toBe(`${data}_scr_professor_nurse_results`);
    // Too few texts in a quadrant is a clear error.
    const few = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "scr", "--model", modelDir, "--sae", saeDir,
      "--dataset", data, "--text-field", "bio", "--label-field", "job", "--attribute-field", "gender", "--attribute", "0:1",
      "--pairs", "professor:nurse", "--train-per-quadrant", "200"], { encoding: "utf8" });
    expect(few.status).toBe(1);
    expect(few.stderr).toMatch(/SCR needs 400 texts of professor \+ 0/);
  }, 60_000);
});
