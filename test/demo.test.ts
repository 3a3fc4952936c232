/** `saekit demo` end to end at a small fraction of its steps: every run scored and saved. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatDemoTable, runSuperpositionDemo } from "../src/demo/superposition-demo.js";
import { loadSae } from "../src/sae/saelens.js";
import { tempDir } from "./helpers.js";

describe("demo", () => {
  it("trains every architecture, scores it against the truth and writes SAELens folders", () => {
    const out = tempDir();
    const rows = runSuperpositionDemo({ outDir: out, stepScale: 0.05, progress: false });
    expect(rows.map((r) => r.name)).toEqual(["topk", "abstopk", "vsae-kl-all", "vsae-kl-active", "vaease", "mp"]);
    for (const r of rows) {
      expect(r.fvu).toBeGreaterThan(0);
      expect(r.fvu).toBeLessThan(1.5);
      expect(r.mmcs).toBeGreaterThan(0);
      expect(r.mmcs).toBeLessThanOrEqual(1);
      expect(existsSync(join(r.out, "cfg.json"))).toBe(true);
      expect(loadSae(r.out).sae.cfg.architecture).toBe(r.architecture);
    }
    // TopK-family codes have exactly k = 8 non-zero latents (or fewer after the ReLU).
    for (const r of rows.slice(0, 4)) expect(r.l0).toBeLessThanOrEqual(8);
    expect(rows[5]!.l0).toBeLessThanOrEqual(8); // at most 8 pursuit steps
    expect(JSON.parse(readFileSync(join(out, "demo.json"), "utf8")).rows).toHaveLength(6);
    const table = formatDemoTable(rows);
    expect(table.split("\n")).toHaveLength(8);
    expect(table).toMatch(/^run\s+FVU\s+L0\s+dead %\s+MMCS\s+recovered %\s+time/);
  });
});
