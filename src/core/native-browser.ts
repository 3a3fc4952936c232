/**
 * The browser's stand-in for native.ts (package.json's "browser" field swaps it in when a
 * bundler targets the browser): there is no addon to load, so kernels.ts runs on the
 * TypeScript reference kernels.
 */
import type { NativeLoad } from "./native.js";

export type { NativeAddon, NativeLoad } from "./native.js";

export function packageRoot(): string {
  return ".";
}

export function loadNativeAddon(): NativeLoad {
  return { addon: null, error: "native kernels are not available in the browser" };
}
