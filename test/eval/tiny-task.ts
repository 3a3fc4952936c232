/** A tiny model and a random SAE at its blocks.0.hook_resid_post, for the eval commands' end-to-end tests. */
import { join } from "node:path";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import type { Sae } from "../../src/sae/sae.js";
import { saveSae } from "../../src/sae/saelens.js";
import { writeTinyNeox } from "../lm/fixtures.js";

/** An SAE with random weights (a TopK one at k = 4). */
export function randomSae(architecture: "topk" | "relu", d_in: number, d_sae: number, seed: number): Sae {
  const sae = createSae(defaultConfig({ architecture, d_in, d_sae, ...(architecture === "topk" ? { k: 4 } : {}) }));
  const rng = new Rng(seed);
  for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
  return sae;
}

/** A one-layer GPT-NeoX (d = 32) in dir/model and a random 48-latent ReLU SAE for it in dir/sae. */
export function writeTinyModelAndSae(dir: string): { modelDir: string; saeDir: string } {
  const modelDir = writeTinyNeox(join(dir, "model"), { vocab: 300, d: 32, layers: 1 });
  const saeDir = join(dir, "sae");
  saveSae(saeDir, randomSae("relu", 32, 48, 7), { metadata: { hook_name: "blocks.0.hook_resid_post", model_name: "tiny" } });
  return { modelDir, saeDir };
}
