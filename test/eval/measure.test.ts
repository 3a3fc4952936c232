/** measureSae and `saekit measure`: the core metrics on stored activations, recounted by hand. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { packageRoot } from "../../src/core/native.js";
import { writeSafetensors } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { ArraySource } from "../../src/data/array-source.js";
import type { ActivationSource } from "../../src/data/source.js";
import { measureSae, measureSaes, measureSaesWithin } from "../../src/eval/measure.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { workingBytes } from "../../src/sae/sae.js";
import { saveSae } from "../../src/sae/saelens.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();
const d = 6, m = 12, rows = 300;
const data = new Rng(1).fillNormal(new Float32Array(rows * d));
const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 2 }));
for (const t of sae.params.values()) new Rng(2).fillNormal(t.data, 0.5);

/** FVU of `target` from the SAE's reconstruction of `inputs`, and L0, by hand over all rows. */
function byHand(inputs: Float32Array, target: Float32Array) {
  const f = toDense(sae.encode(inputs, rows));
  const xHat = sae.decode(sae.encode(inputs, rows), inputs);
  let sse = 0, sst = 0, active = 0;
  for (let c = 0; c < d; c++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += target[r * d + c]! / rows;
    for (let r = 0; r < rows; r++) {
      sse += (target[r * d + c]! - xHat[r * d + c]!) ** 2;
      sst += (target[r * d + c]! - mean) ** 2;
    }
  }
  for (const v of f) if (v !== 0) active++;
  return { fvu: sse / sst, l0: active / rows };
}

describe("measuring an SAE on stored activations", () => {
  it("over one epoch of a source, equals the FVU and L0 counted by hand", () => {
    const r = measureSae(sae, new ArraySource(data, d, 5), rows, 64);
    const want = byHand(data, data);
    expect(r.rows).toBe(rows);
    expect(r.reconstruction.fvu).toBeCloseTo(want.fvu, 6);
    expect(r.sparsity.l0).toBeCloseTo(want.l0, 10);
    // Asked for more rows than the source holds: each is measured once, not twice.
    const more = measureSae(sae, new ArraySource(data, d, 5), 3 * rows, 64);
    expect(more.rows).toBe(rows);
    expect(more.reconstruction.fvu).toBeCloseTo(want.fvu, 6);
  });

  it("measures a transcoder against the targets its source pairs with the inputs", () => {
    const targets = new Rng(3).fillNormal(new Float32Array(rows * d));
    let at = 0;
    const paired: ActivationSource = {
      d, dTarget: d, state: () => at, restore: () => {}, describe: () => ({}),
      next(out, batch) {
        for (let b = 0; b < batch; b++, at = (at + 1) % rows) {
          out.set(data.subarray(at * d, (at + 1) * d), b * 2 * d);
          out.set(targets.subarray(at * d, (at + 1) * d), b * 2 * d + d);
        }
      },
    };
    const r = measureSae(sae, paired, rows, 100);
    expect(r.reconstruction.fvu).toBeCloseTo(byHand(data, targets).fvu, 6);
    expect(() => measureSae(createSae(defaultConfig({ architecture: "topk", d_in: d + 1, d_sae: m, k: 2 })), paired, 10))
      .toThrow(/reads 7-dim activations, the data has 6/);
  });

  it("saekit measure prints the result as JSON for a saved SAE and an activation file", () => {
    const saeDir = join(dir, "sae");
    saveSae(saeDir, sae);
    const file = join(dir, "acts.safetensors");
    writeSafetensors(file, { activations: new Tensor([rows, d], data) });
    const bin = join(packageRoot(), "bin", "saekit.js");
    const r = spawnSync(process.execPath, [bin, "measure", "--sae", saeDir, "--data", file, "--tokens", String(rows), "--threads", "1"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ architecture: "topk", d_sae: m, transcoder: false, rows });
    expect(out.reconstruction.fvu).toBeCloseTo(byHand(data, data).fvu, 5);
  });

  it("measureSaes measures several SAEs on the same rows, read once, each as measureSae alone would", () => {
    const other = createSae(defaultConfig({ architecture: "relu", d_in: d, d_sae: 2 * m }));
    for (const t of other.params.values()) new Rng(4).fillNormal(t.data, 0.5);
    const together = measureSaes([sae, other], new ArraySource(data, d, 5), 200, 64);
    expect(together).toEqual([sae, other].map((s) => measureSae(s, new ArraySource(data, d, 5), 200, 64)));
    expect(together[0]).not.toEqual(together[1]);
    const wider = createSae(defaultConfig({ architecture: "topk", d_in: d + 1, d_sae: m, k: 2 }));
    expect(() => measureSaes([sae, wider], new ArraySource(data, d, 5), 10)).toThrow(/SAEs measured together read activations of one width: 6 and 7/);
  });

  it("measureSaesWithin measures SAEs past the memory budget in further passes over the same rows, with the same results", async () => {
    const saes = [2, 3, 4].map((k, i) => {
      const s = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k }));
      for (const t of s.params.values()) new Rng(10 + i).fillNormal(t.data, 0.5);
      return s;
    });
    const together = measureSaes(saes, new ArraySource(data, d, 5), 200, 64);
    let opened = 0;
    const openSource = async () => (opened++, new ArraySource(data, d, 5));
    // Room for two SAEs: two passes, the first measuring two SAEs, the second one.
    const two = 2 * workingBytes(saes[0]!, 64);
    expect(await measureSaesWithin(3, async (i) => saes[i]!, openSource, 200, two, 64)).toEqual(together);
    expect(opened).toBe(2);
    opened = 0;
    expect(await measureSaesWithin(3, async (i) => saes[i]!, openSource, 200, 1, 64)).toEqual(together);
    expect(opened).toBe(3);
    // workingBytes: the tensors, and a batch of dense pre-activations for each SAE sharing them.
    const tensors = [...saes[0]!.params.values()].reduce((sum, t) => sum + 4 * t.data.length, 0);
    expect(workingBytes(saes[0]!, 64, 3)).toBe(tensors + 3 * 64 * m * 4);
  });

  it("saekit measure on a folder of SAE folders prints one result each, in natural order, and writes one file each to --out", () => {
    const folder = join(dir, "snapshots");
    const late = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 3 }));
    for (const t of late.params.values()) new Rng(5).fillNormal(t.data, 0.5);
    saveSae(join(folder, "10240"), late);
    saveSae(join(folder, "2048"), sae);
    const file = join(dir, "acts-folder.safetensors");
    writeSafetensors(file, { activations: new Tensor([rows, d], data) });
    const bin = join(packageRoot(), "bin", "saekit.js");
    const out = join(dir, "measured");
    const r = spawnSync(process.execPath, [bin, "measure", "--sae", folder, "--data", file, "--tokens", String(rows), "--threads", "1", "--out", out], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.sae)).toEqual([join(folder, "2048"), join(folder, "10240")]);
    expect(lines[0].reconstruction.fvu).toBeCloseTo(byHand(data, data).fvu, 5);
    expect(lines[1].sparsity.l0).toBeCloseTo(measureSae(late, new ArraySource(data, d, 5), rows).sparsity.l0, 10);
    expect(JSON.parse(readFileSync(join(out, "10240.json"), "utf8"))).toEqual(lines[1]);
    // Memory for one SAE at a time: a pass over the same rows each, the same results.
    const oneByOne = spawnSync(process.execPath, [bin, "measure", "--sae", folder, "--data", file, "--tokens", String(rows), "--threads", "1", "--sae-memory", "1e-9"], { encoding: "utf8" });
    expect(oneByOne.status, oneByOne.stderr).toBe(0);
    expect(oneByOne.stdout).toBe(r.stdout);
  });
});
