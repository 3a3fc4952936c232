/**
 * PyTorch (torch.save zip) checkpoints, against files written by real torch.save
 * (test/fixtures/torch/make_fixtures.py, python3-torch 1.13): every value is recomputed
 * here from the closed form the script used.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { BARE_TENSOR, TorchCheckpoint, TorchCheckpointError } from "../../src/core/torch-checkpoint.js";
import { tempDir } from "../helpers.js";

const fixtures = join(import.meta.dirname, "..", "fixtures", "torch");
const statePath = join(fixtures, "state.bin");
const dir = tempDir();

describe("torch.save checkpoints", () => {
  it("reads every tensor kind: f32/f16/bf16/f64, strided views, storage offsets, shared storage, parameters, scalars", () => {
    const ck = TorchCheckpoint.open(statePath);
    expect(ck.names()).toEqual(["f32", "transposed", "f16", "bf16", "f64", "offset", "shared", "param", "int64", "scalar"]);
    const f32 = ck.read("f32");
    expect(f32.shape).toEqual([2, 3]);
    expect([...f32.data]).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25]);
    // arange(12).reshape(3, 4).t(): element [i, j] = 4 j + i.
    const t = ck.read("transposed");
    expect(t.shape).toEqual([4, 3]);
    expect([...t.data]).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect([...ck.read("f16").data]).toEqual([1.5, -2, 65504, 2 ** -24]);
    expect([...ck.read("bf16").data]).toEqual([1, -3.140625, 2 ** 100]);
    expect([...ck.read("f64").data]).toEqual([Math.fround(0.1), -0.25]);
    expect([...ck.read("offset").data]).toEqual([4, 5, 6]);
    expect(ck.read("shared").data).toEqual(f32.data);
    expect([...ck.read("param").data]).toEqual([7, 7]);
    const scalar = ck.read("scalar");
    expect(scalar.shape).toEqual([]);
    expect([...scalar.data]).toEqual([3]);
    expect(() => ck.read("int64")).toThrow(/state.bin: tensor "int64" has dtype I64, expected a float dtype/);
    expect(ck.readInts("int64")).toEqual([1, 2]);
    expect(() => ck.readInts("f32")).toThrow(/tensor "f32" has dtype F32, expected an integer dtype/);
    expect(() => ck.read("nope")).toThrow(/no tensor named "nope"/);
  });

  it("keeps a state dict's plain entries (strings, numbers, nested dicts) beside its tensors", () => {
    // OpenAI's Autoencoder.state_dict(): the activation's name and settings among the tensors.
    const ck = TorchCheckpoint.open(join(fixtures, "openai", "topk.pt"));
    expect(ck.names()).toEqual(["pre_bias", "latent_bias", "stats_last_nonzero", "latents_activation_frequency",
      "latents_mean_square", "encoder.weight", "decoder.weight"]);
    expect(ck.valueNames()).toEqual(["activation.k", "activation.postact_fn", "activation", "activation_state_dict"]);
    expect(ck.value("activation")).toBe("TopK");
    expect(ck.value("activation.k")).toBe(3);
    expect(ck.value("activation_state_dict")).toEqual({ k: 3, postact_fn: "ReLU" });
    expect(ck.value("nothing")).toBeUndefined();
    expect(() => ck.read("activation")).toThrow(/no tensor named "activation"/);
  });

  it("reads a file of one bare tensor (torch.save(t)) as a dict holding it under BARE_TENSOR", () => {
    const ck = TorchCheckpoint.open(join(fixtures, "acts.pt"));
    expect(ck.names()).toEqual([BARE_TENSOR]);
    expect([ck.shape(BARE_TENSOR), ck.dtype(BARE_TENSOR)]).toEqual([[6, 5], "F32"]);
    expect(ck.read(BARE_TENSOR).data[7]).toBe(Math.fround(0.3 * Math.sin(0.37 * 7 + 9)));
  });

  it("reads zip64 archives (sizes and offsets in zip64 records) the same", () => {
    const classic = TorchCheckpoint.open(statePath);
    const zip64 = TorchCheckpoint.open(join(fixtures, "state-zip64.bin"));
    expect(zip64.names()).toEqual(classic.names());
    for (const name of classic.names()) {
      if (name === "int64") expect(zip64.readInts(name)).toEqual(classic.readInts(name));
      else expect(zip64.read(name)).toEqual(classic.read(name));
    }
  });

  it("refuses a pickle that calls anything but the state-dict rebuilders", () => {
    // Same length as "collections\nOrderedDict", so the archive stays well-formed.
    const bytes = readFileSync(statePath);
    const from = Buffer.from("collections\nOrderedDict");
    const at = bytes.indexOf(from);
    expect(at).toBeGreaterThan(0);
    Buffer.from("subprocess\ncheck_output").copy(bytes, at);
    const evil = join(dir, "evil.bin");
    writeFileSync(evil, bytes);
    expect(() => TorchCheckpoint.open(evil)).toThrow(/evil.bin: data.pkl calls subprocess.check_output, which a state dict of tensors never does/);
  });

  it("names the legacy format and files that are not checkpoints", () => {
    const legacy = join(dir, "legacy.bin");
    writeFileSync(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46]));
    expect(() => TorchCheckpoint.open(legacy)).toThrow(/legacy \(pre-1.6\) format/);
    const text = join(dir, "text.bin");
    writeFileSync(text, "hello world");
    expect(() => TorchCheckpoint.open(text)).toThrow(/text.bin: not a PyTorch checkpoint/);
    expect(() => TorchCheckpoint.open(join(dir, "missing.bin"))).toThrow(/missing.bin: no such file/);
  });

  it("fuzz: truncations and bit flips give TorchCheckpointError or a readable file, never a crash", () => {
    const rng = new Rng(21);
    const bytes = readFileSync(statePath);
    const path = join(dir, "fuzz.bin");
    let refused = 0;
    for (let trial = 0; trial < 300; trial++) {
      const mutated = Buffer.from(bytes);
      let cut = mutated.length;
      if (trial % 2 === 0) cut = rng.int(mutated.length);
      else for (let f = 0; f < 1 + rng.int(4); f++) mutated[rng.int(mutated.length)]! ^= 1 << rng.int(8);
      writeFileSync(path, mutated.subarray(0, cut));
      try {
        const ck = TorchCheckpoint.open(path);
        for (const name of ck.names()) if (name === "int64") ck.readInts(name); else ck.read(name);
      } catch (err) {
        expect(err).toBeInstanceOf(TorchCheckpointError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(150); // every truncation loses the zip directory
  });
});
