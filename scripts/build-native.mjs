#!/usr/bin/env node
// Builds the native addon (native/) with node-gyp during `npm ci` / `npm install`.
//
// A failed build must not fail the install: saekit then runs on its TypeScript reference
// kernels (correct, much slower) and says so once at run time. So this script reports the
// failure clearly and exits 0. Set SAEKIT_REQUIRE_NATIVE=1 to make a failed build fatal.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");

if (process.env.SAEKIT_SKIP_NATIVE === "1") {
  console.log("saekit: SAEKIT_SKIP_NATIVE=1, not building the native addon");
  process.exit(0);
}

// npm points npm_config_node_gyp at the node-gyp it bundles; outside npm look for that
// bundled copy next to node, then for node-gyp on PATH.
const bundledGyp = join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
const gypScript = [process.env.npm_config_node_gyp, bundledGyp].find((p) => p && existsSync(p));
const [cmd, args] = gypScript
  ? [process.execPath, [gypScript, "rebuild"]]
  : ["node-gyp", ["rebuild"]];

// Build against locally installed Node headers when present, so no download is needed.
const env = { ...process.env };
const localHeaders = join(dirname(process.execPath), "..", "include", "node", "node_api.h");
if (!env.npm_config_nodedir && existsSync(localHeaders)) {
  env.npm_config_nodedir = join(dirname(process.execPath), "..");
}

console.log("saekit: building the native addon (native/) with node-gyp ...");
const result = spawnSync(cmd, args, { cwd: nativeDir, stdio: "inherit", env });
if (result.status === 0) {
  console.log("saekit: native addon built");
  process.exit(0);
}
const why = result.error ? result.error.message : `node-gyp exited with status ${result.status}`;
console.warn(
  `\nsaekit: WARNING: the native addon did not build (${why}).\n` +
    "saekit will run on its TypeScript reference kernels: correct, but much slower.\n" +
    "Install a C++17 compiler, python3 and make, then run `npm rebuild saekit` (or `npm run build`).\n",
);
if (process.env.SAEKIT_REQUIRE_NATIVE === "1") process.exit(1);
process.exit(0);
