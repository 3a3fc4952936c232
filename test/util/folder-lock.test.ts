/** One writer per folder: claims, stale claims of killed processes, and the runs that take them. */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../src/sae/config.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { trainSae } from "../../src/train/trainer.js";
import { LOCK_FILE, claimFolders } from "../../src/util/folder-lock.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();

describe("folder claims", () => {
  it("a claim holds this process's pid until released, and a second claim of the folder is refused", () => {
    const a = join(dir, "a"), b = join(dir, "b");
    const release = claimFolders([a, b], "training");
    expect(readFileSync(join(a, LOCK_FILE), "utf8").trim()).toBe(String(process.pid));
    expect(() => claimFolders([b], "training")).toThrow(/b is being written already, by this process/);
    release();
    expect(existsSync(join(a, LOCK_FILE)) || existsSync(join(b, LOCK_FILE))).toBe(false);
    claimFolders([b], "training")(); // free again
  });

  it("a live process's claim is refused, naming it; a killed one's (or our reused pid's) is taken over", () => {
    const held = join(dir, "held");
    mkdirSync(held, { recursive: true });
    writeFileSync(join(held, LOCK_FILE), `${process.ppid}\n`); // our parent runs
    expect(() => claimFolders([held], "harvesting")).toThrow(new RegExp(`held is being written by process ${process.ppid}; wait for it to finish \\(or stop it\\) before harvesting there again`));
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    for (const pid of [dead, process.pid]) {
      writeFileSync(join(held, LOCK_FILE), `${pid}\n`);
      const release = claimFolders([held], "harvesting");
      expect(readFileSync(join(held, LOCK_FILE), "utf8").trim()).toBe(String(process.pid));
      release();
    }
    // A claim of several folders that fails on one leaves none of the others claimed.
    writeFileSync(join(held, LOCK_FILE), `${process.ppid}\n`);
    expect(() => claimFolders([join(dir, "free"), held], "training")).toThrow(/being written by process/);
    expect(existsSync(join(dir, "free", LOCK_FILE))).toBe(false);
  });

  it("training refuses a run folder another process is writing, and leaves no claim behind when done", () => {
    const out = join(dir, "run");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, LOCK_FILE), `${process.ppid}\n`);
    const cfg = defaultConfig({ architecture: "topk", d_in: 16, d_sae: 32, k: 2 });
    const train = () => trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 20, seed: 1 }), { steps: 3, batchSize: 64, lr: 1e-3, outDir: out, progress: false });
    expect(train).toThrow(/run is being written by process/);
    writeFileSync(join(out, LOCK_FILE), `${spawnSync(process.execPath, ["-e", ""]).pid}\n`);
    train();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    expect(existsSync(join(out, "sae_weights.safetensors"))).toBe(true);
  });
});
