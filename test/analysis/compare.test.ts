/** Comparing dictionaries: best cosines against a brute-force count, and `saekit compare`. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { maxCosines, matchSummary } from "../../src/analysis/compare.js";
import { packageRoot } from "../../src/core/native.js";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { saveSae } from "../../src/sae/saelens.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();

describe("comparing dictionaries", () => {
  it("finds each row's best cosine with the other's rows, both ways, signed or by magnitude, in any block size", () => {
    const d = 5, n = 10, m = 7;
    const a = new Rng(1).fillNormal(new Float32Array(n * d));
    const b = new Rng(2).fillNormal(new Float32Array(m * d));
    const cos = (x: Float32Array, i: number, y: Float32Array, j: number) => {
      let xy = 0, xx = 0, yy = 0;
      for (let c = 0; c < d; c++) {
        xy += x[i * d + c]! * y[j * d + c]!;
        xx += x[i * d + c]! ** 2;
        yy += y[j * d + c]! ** 2;
      }
      return xy / Math.sqrt(xx * yy);
    };
    for (const abs of [false, true]) {
      const f = (v: number) => (abs ? Math.abs(v) : v);
      const r = maxCosines(a, b, d, { abs, block: 3 });
      for (let i = 0; i < n; i++) expect(r.aToB[i]).toBeCloseTo(Math.max(...Array.from({ length: m }, (_, j) => f(cos(a, i, b, j)))), 5);
      for (let j = 0; j < m; j++) expect(r.bToA[j]).toBeCloseTo(Math.max(...Array.from({ length: n }, (_, i) => f(cos(a, i, b, j)))), 5);
      expect(maxCosines(a, b, d, { abs })).toEqual(r);
    }
    expect(matchSummary(Float32Array.from([0.95, 0.5, 0.91, 0.2]), 0.9)).toEqual({ mmcs: expect.closeTo(0.64, 6), matched: 0.5 });
  });

  it("saekit compare: a dictionary reordered and rescaled matches itself exactly; another one does not", () => {
    const d = 8, m = 24;
    const make = (seed: number) => {
      const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 2 }));
      for (const t of sae.params.values()) new Rng(seed).fillNormal(t.data);
      return sae;
    };
    const a = make(3);
    const shuffled = make(4);
    const order = new Rng(5).shuffle(Array.from({ length: m }, (_, j) => j));
    const W = a.params.get("W_dec")!.data;
    order.forEach((j, i) => shuffled.params.get("W_dec")!.data.set(W.subarray(j * d, (j + 1) * d).map((v) => 2.5 * v), i * d));
    for (const [name, sae] of [["a", a], ["a-shuffled", shuffled], ["other", make(6)]] as const) saveSae(join(dir, name), sae);
    const bin = join(packageRoot(), "bin", "saekit.js");
    const run = (b: string, extra: string[] = []) => {
      const r = spawnSync(process.execPath, [bin, "compare", "--sae", join(dir, "a"), "--sae", join(dir, b), "--threads", "1", ...extra], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const same = run("a-shuffled", ["--out", join(dir, "cmp")]);
    expect(same.a_to_b.mmcs).toBeCloseTo(1, 5);
    expect(same.b_to_a.matched).toBe(1);
    expect(existsSync(join(dir, "cmp", "best-cos-a.png"))).toBe(true);
    const other = run("other");
    expect(other.a_to_b.mmcs).toBeLessThan(0.9);
    expect(other.a_to_b.matched).toBeLessThan(0.5);
  });
});
