/**
 * Loads the native addon built by node-gyp into native/build/Release during `npm ci`.
 * A load failure is not fatal: kernels.ts then falls back to the TypeScript reference.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Kernels } from "./kernel-api.js";

/** What the addon exports beyond the Kernels interface. */
export interface NativeAddon extends Kernels {
  info(): { isa: string; bestIsa: string; threads: number; gemmMR: number; gemmNR: number; bf16Dot: boolean };
  setThreads(n: number): void;
  /** Forces an instruction set at or below what the CPU has; false if the CPU lacks it. */
  setIsa(isa: "avx512" | "avx2" | "generic"): boolean;
}

export interface NativeLoad {
  addon: NativeAddon | null;
  error?: string;
}

let loaded: NativeLoad | null = null;

/** The package root: this file sits in src/core or dist/core, two levels below it. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

export function loadNativeAddon(): NativeLoad {
  if (loaded) return loaded;
  const path = join(packageRoot(), "native", "build", "Release", "saekit_native.node");
  try {
    const raw = createRequire(import.meta.url)(path) as Omit<NativeAddon, "kind">;
    loaded = { addon: Object.freeze({ ...raw, kind: "native" as const }) };
  } catch (err) {
    loaded = { addon: null, error: `cannot load ${path}: ${(err as Error).message.split("\n")[0]}` };
  }
  return loaded;
}
