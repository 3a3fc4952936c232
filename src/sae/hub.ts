/**
 * SAEs on the Hugging Face hub, `hf:ORG/NAME/FOLDER[@revision]`: one SAE of a release is a
 * folder of its repository, in any format openSae reads (SAELens: cfg.json +
 * sae_weights.safetensors; sparsify: cfg.json + sae.safetensors; dictionary_learning:
 * ae.pt + config.json; GemmaScope: params.npz, Gemma Scope 2: params.safetensors; Goodfire:
 * <repository name>.pth or .pt at the repository's root). It is downloaded once into the
 * cache and read from there.
 */
import { type HubOptions, resolveHubFolder } from "../lm/hub.js";

export function resolveHubSae(specText: string, opts: HubOptions = {}): Promise<string> {
  return resolveHubFolder(specText,
    "the SAE's files (cfg.json and sae_weights.safetensors, or cfg.json and sae.safetensors, or ae.pt and config.json, or params.npz, or params.safetensors, or a Goodfire <name>-SAE-l<layer>.pth)", opts,
    async (get, _dir, spec) => {
      if (await get("cfg.json", false)) {
        if (await get("sae_weights.safetensors", false)) {
          await get("sparsity.safetensors", false);
          return;
        }
        if (await get("sae.safetensors", false)) return;
        throw new Error("cfg.json but neither sae_weights.safetensors (SAELens) nor sae.safetensors (sparsify)");
      }
      if (await get("ae.pt", false)) {
        await get("config.json", false);
        return;
      }
      if (await get("params.npz", false)) return;
      if (await get("params.safetensors", false)) {
        await get("config.json", false);
        return;
      }
      // Goodfire's repositories hold one file named after themselves (8B: .pth, 70B: .pt).
      const release = spec.repo.split("/")[1]!;
      if (!spec.path && ((await get(`${release}.pth`, false)) || (await get(`${release}.pt`, false)))) return;
      throw new Error(`no SAE here: no cfg.json (SAELens, sparsify), ae.pt (dictionary_learning), params.npz or params.safetensors (GemmaScope 1, 2)${spec.path ? "" : `, or ${release}.pth (Goodfire)`}`);
    });
}
