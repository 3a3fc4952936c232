/**
 * What the dashboard suites share: a tiny GPT-NeoX with its tokenizer, a TopK SAE with random
 * weights on blocks.0.hook_resid_post, and 40 short stories packed into 16-token contexts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/core/rng.js";
import { openContexts } from "../../src/lm/dataset.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { writeTinyNeox } from "../lm/fixtures.js";

export async function dashboardFixture(dir: string) {
  const textPath = join(dir, "stories.txt");
  writeFileSync(textPath, Array.from({ length: 40 }, (_, i) =>
    `Once upon a time there was a cat number ${i}. The cat sat on the mat and ate ${i % 7} fish.`).join("<|endoftext|>"));
  const loaded = await loadModel(writeTinyNeox(join(dir, "model"), { seed: 6 }));
  const ctx = 16;
  const sae = createSae(defaultConfig({ architecture: "topk", d_in: loaded.model.cfg.dModel, d_sae: 24, k: 4 }));
  const rng = new Rng(2);
  for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
  return {
    loaded, model: loaded.model, tokenizer: loaded.tokenizer, sae, ctx, hook: "blocks.0.hook_resid_post",
    contexts: () => openContexts(loaded, textPath, { ctx, prependBos: true }).contexts,
  };
}
