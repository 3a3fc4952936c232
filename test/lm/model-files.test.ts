/**
 * Models from files in memory (modelFromFiles, what the browser build loads): the same
 * model and tokenizer as loading the folder from disk, for every layout, and errors that
 * name what is missing.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SafetensorsFile, writeSafetensors } from "../../src/core/safetensors.js";
import { loadModel } from "../../src/lm/load.js";
import { modelFromFiles } from "../../src/lm/model-files.js";
import { sharedData, tempDir } from "../helpers.js";
import { writeTinyGpt2, writeTinyLlama, writeTinyNeox } from "./fixtures.js";

const dir = tempDir();

/** Every file of a folder, keyed by name, as a page gets them from a dropped folder. */
function folderFiles(folder: string, skip: string[] = []): Map<string, Uint8Array> {
  return new Map(readdirSync(folder).filter((f) => !skip.includes(f)).map((f) => [f, new Uint8Array(readFileSync(join(folder, f)))]));
}

const tokens = Int32Array.from([5, 17, 3, 99, 42, 7]);

describe("models from files in memory", () => {
  for (const [name, write] of [["GPT-NeoX", writeTinyNeox], ["GPT-2", writeTinyGpt2], ["Llama", writeTinyLlama]] as const) {
    it(`${name}: the same logits and tokenizer as the folder on disk`, async () => {
      const folder = write(join(dir, name));
      const disk = await loadModel(folder);
      const mem = modelFromFiles(folderFiles(folder), { source: "dropped" });
      expect(mem.model.forward(tokens, 1, tokens.length).logits).toEqual(disk.model.forward(tokens, 1, tokens.length).logits);
      expect(mem.bosId).toBe(disk.bosId);
      expect(mem.tokenizer!.encode("Once upon a time")).toEqual(disk.tokenizer!.encode("Once upon a time"));
    });
  }

  it("keeps the weights as bfloat16 when asked, as loadModel does from disk", async () => {
    for (const write of [writeTinyNeox, writeTinyLlama]) {
      const folder = write(join(dir, `bf16-${write.name}`));
      const disk = await loadModel(folder, { weights: "bf16" });
      const mem = modelFromFiles(folderFiles(folder), { weights: "bf16" });
      expect(mem.model.weightDtype).toBe("bf16");
      expect(mem.model.weightBytes()).toBe(disk.model.weightBytes());
      expect(mem.model.forward(tokens, 1, tokens.length).logits).toEqual(disk.model.forward(tokens, 1, tokens.length).logits);
      expect(mem.model.weightBytes()).toBeLessThan(modelFromFiles(folderFiles(folder)).model.weightBytes());
    }
  });

  it("reads a sharded checkpoint from its index and names a shard that was not given", () => {
    const folder = writeTinyNeox(join(dir, "to-shard"));
    const file = SafetensorsFile.open(join(folder, "model.safetensors"));
    const names = file.names();
    const map: Record<string, string> = {};
    const files = folderFiles(folder, ["model.safetensors"]);
    for (const [i, part] of [names.slice(0, 5), names.slice(5)].entries()) {
      const shard = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, shard), Object.fromEntries(part.map((n) => [n, file.read(n)])));
      files.set(shard, new Uint8Array(readFileSync(join(dir, shard))));
      for (const n of part) map[n] = shard;
    }
    files.set("model.safetensors.index.json", new TextEncoder().encode(JSON.stringify({ weight_map: map })));
    const whole = modelFromFiles(folderFiles(folder)).model;
    expect(modelFromFiles(files).model.forward(tokens, 1, 6).logits).toEqual(whole.forward(tokens, 1, 6).logits);
    files.delete("model-00002-of-00002.safetensors");
    expect(() => modelFromFiles(files, { source: "dropped" }))
      .toThrow("dropped/model.safetensors.index.json: shard model-00002-of-00002.safetensors is not among the files given");
  });

  it("names what is missing or wrong", () => {
    const folder = writeTinyNeox(join(dir, "errors"));
    expect(() => modelFromFiles(folderFiles(folder, ["model.safetensors"]), { source: "dropped" }))
      .toThrow(/dropped\/: no model.safetensors or model.safetensors.index.json among the files/);
    const cut = folderFiles(folder);
    cut.set("model.safetensors", cut.get("model.safetensors")!.subarray(0, 100));
    expect(() => modelFromFiles(cut, { source: "dropped" })).toThrow(/dropped\/model.safetensors/);
    const badConfig = folderFiles(folder);
    badConfig.set("config.json", new TextEncoder().encode("{ nope"));
    expect(() => modelFromFiles(badConfig, { source: "dropped" })).toThrow(/dropped\/config.json: not valid JSON/);
    expect(() => modelFromFiles(new Map([["notes.txt", new Uint8Array(3)]]), { source: "dropped" }))
      .toThrow("dropped: neither a Hugging Face model (config.json) nor a llama2.c checkpoint (.bin) among notes.txt");
    // No tokenizer files: a model without one.
    expect(modelFromFiles(folderFiles(folder, ["tokenizer.json"])).tokenizer).toBeNull();
  });

  const stories = sharedData("stories260K");
  it.skipIf(!stories)("a llama2.c checkpoint and its tokenizer: the larger .bin is the model", async () => {
    const files = new Map([["stories260K.bin", "stories260K.bin"], ["tok512.bin", "tok512.bin"]]
      .map(([k, f]) => [k!, new Uint8Array(readFileSync(join(stories!, f!)))]));
    const mem = modelFromFiles(files);
    const disk = await loadModel(join(stories!, "stories260K.bin"), { tokenizer: join(stories!, "tok512.bin") });
    const ids = Int32Array.from([1, ...disk.tokenizer!.encode("Once upon a time")]);
    expect(mem.model.forward(ids, 1, ids.length).logits).toEqual(disk.model.forward(ids, 1, ids.length).logits);
    expect(mem.tokenizer!.encode("The cat sat.")).toEqual(disk.tokenizer!.encode("The cat sat."));
    expect(mem.bosId).toBe(1);
  });
});
