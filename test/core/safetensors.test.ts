import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeFileAtomic } from "../../src/core/atomic.js";
import { decodeFloats, encodeFloats, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/core/dtype.js";
import { Rng } from "../../src/core/rng.js";
import {
  SafetensorsError, SafetensorsFile, encodeSafetensors, readSafetensors, writeSafetensors,
} from "../../src/core/safetensors.js";
import { float32ToBf16 } from "../../src/core/bf16.js";
import { bytesSource, readFloatsInto } from "../../src/core/byte-source.js";
import { Tensor } from "../../src/core/tensor.js";
import { randn, tempDir } from "../helpers.js";

const dir = tempDir();

/** Builds a safetensors file by hand from a header object and a data section. */
function handMade(name: string, header: unknown, data: Uint8Array, lenOverride?: bigint): string {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

describe("safetensors", () => {
  it("round-trips F32, F16, BF16, I64, I32 and metadata", () => {
    const rng = new Rng(1);
    const w = new Tensor([3, 5], randn(rng, 15));
    const path = join(dir, "rt.safetensors");
    writeSafetensors(path, {
      w,
      h: { dtype: "F16", shape: [15], data: w.data },
      b: { dtype: "BF16", shape: [5, 3], data: w.data },
      ids: { dtype: "I64", shape: [4], data: [0, -1, 2 ** 40, 7] },
      small: { dtype: "I32", shape: [2], data: [5, -6] },
      empty: { shape: [0, 4], data: new Float32Array(0) },
    }, { format: "pt", note: "saekit" });
    const f = SafetensorsFile.open(path);
    expect(f.metadata).toEqual({ format: "pt", note: "saekit" });
    expect(f.names().sort()).toEqual(["b", "empty", "h", "ids", "small", "w"]);
    expect([...f.read("w").data]).toEqual([...w.data]);
    expect(f.read("w").shape).toEqual([3, 5]);
    expect([...f.read("h").data]).toEqual([...w.data].map((v) => f16BitsToF32(f32ToF16Bits(v))));
    expect(f.read("b").shape).toEqual([5, 3]);
    for (let i = 0; i < 15; i++) expect(Math.abs(f.read("b").data[i]! - w.data[i]!)).toBeLessThanOrEqual(Math.abs(w.data[i]!) / 128);
    expect(f.readInts("ids").data).toEqual([0, -1, 2 ** 40, 7]);
    expect(f.readInts("small").data).toEqual([5, -6]);
    expect(f.read("empty").shape).toEqual([0, 4]);
    // As bfloat16 bits: a BF16 tensor's own, the others rounded, as float32ToBf16 rounds them.
    expect(f.readBf16("b")).toEqual(float32ToBf16(f.read("b").data));
    expect(f.readBf16("w")).toEqual(float32ToBf16(w.data));
    expect(f.readBf16("h")).toEqual(float32ToBf16(f.read("h").data));
    // The data section starts 8-byte aligned, as the reference writer pads it.
    const bytes = readFileSync(path);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);
    expect([...readSafetensors(path).tensors.keys()].sort()).toEqual(["b", "empty", "h", "w"]); // float tensors only
  });

  it("keeps every tensor aligned to its element size, whatever order they are given in", () => {
    const path = join(dir, "aligned.safetensors");
    // In this order, packed end to end, "ids" would start at byte 4 and "h" at byte 1.
    writeSafetensors(path, {
      one: Tensor.from([1], [0.5]),
      ids: { dtype: "I64", shape: [2], data: [3, -4] },
      byte: { dtype: "F16", shape: [3], data: Float32Array.of(1, 2, 3) },
      h: { dtype: "F16", shape: [1], data: Float32Array.of(-1) },
      two: Tensor.from([3], [1, 2, 3]),
    });
    const f = SafetensorsFile.open(path);
    expect(f.readInts("ids").data).toEqual([3, -4]);
    expect([...f.read("byte").data]).toEqual([1, 2, 3]);
    expect([...f.read("h").data]).toEqual([-1]);
    expect([...f.read("two").data]).toEqual([1, 2, 3]);
    expect([...f.read("one").data]).toEqual([0.5]);
    const header = JSON.parse(readFileSync(path).subarray(8, 8 + Number(readFileSync(path).readBigUInt64LE(0))).toString());
    const size: Record<string, number> = { I64: 8, F32: 4, F16: 2 };
    for (const [name, entry] of Object.entries(header) as Array<[string, { dtype: string; data_offsets: number[] }]>) {
      expect(entry.data_offsets[0]! % size[entry.dtype]!, name).toBe(0);
    }
  });

  it("reads a file laid out exactly like the reference writer's", () => {
    // {"a": F32 [2] at 0..8, "b": F16 [1] at 8..10} written by hand.
    const data = new Uint8Array(10);
    new DataView(data.buffer).setFloat32(0, 1.5, true);
    new DataView(data.buffer).setFloat32(4, -2, true);
    new DataView(data.buffer).setUint16(8, 0x3c00, true); // 1.0 in half
    const path = handMade("ref.safetensors", {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F16", shape: [1], data_offsets: [8, 10] },
    }, data);
    const f = SafetensorsFile.open(path);
    expect([...f.read("a").data]).toEqual([1.5, -2]);
    expect([...f.read("b").data]).toEqual([1]);
  });

  const bad: Array<[string, unknown, Uint8Array, RegExp, bigint?]> = [
    ["huge header", {}, new Uint8Array(0), /exceeds the 100000000-byte limit/, 1n << 40n],
    ["header past end", {}, new Uint8Array(0), /runs past the end/, 500n],
    ["not json", "{not json", new Uint8Array(0), /not valid JSON/],
    ["array header", "[1,2]", new Uint8Array(0), /not a JSON object/],
    ["bad dtype", { a: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1), /unknown dtype/],
    ["FP8-quantized weights", { a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1),
      /tensor "a": dtype F8_E4M3 \(8-bit float, an FP8-quantized checkpoint\) is not supported: .* use the model's bfloat16 or float32 release/],
    ["bad shape", { a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4), /shape must be/],
    ["bad offsets", { a: { dtype: "F32", shape: [1], data_offsets: [0] } }, new Uint8Array(4), /data_offsets must be/],
    ["past data", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4), /run past the end of the data/],
    ["size mismatch", { a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4), /which needs 8/],
    ["overlap", {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, new Uint8Array(8), /overlaps/],
    ["gap", { a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8), /gap in the data section/],
    ["trailing", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8), /tensors cover 4/],
    ["misaligned", { a: { dtype: "F16", shape: [1], data_offsets: [1, 3] }, p: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(3), /misaligned/],
    ["metadata type", { __metadata__: { a: 1 } }, new Uint8Array(0), /__metadata__.a is not a string/],
  ];
  for (const [label, header, data, pattern, len] of bad) {
    it(`refuses a malformed file: ${label}`, () => {
      const path = handMade(`${label.replace(/ /g, "_")}.safetensors`, header, data, len);
      expect(() => SafetensorsFile.open(path)).toThrow(SafetensorsError);
      expect(() => SafetensorsFile.open(path)).toThrow(pattern);
      expect(() => SafetensorsFile.open(path)).toThrow(path);
    });
  }

  it("names the file for a missing file, a short file and a missing tensor", () => {
    expect(() => SafetensorsFile.open(join(dir, "nope.safetensors"))).toThrow(/nope.safetensors: no such file/);
    const short = join(dir, "short.safetensors");
    writeFileSync(short, Buffer.from([1, 2, 3]));
    expect(() => SafetensorsFile.open(short)).toThrow(/too short/);
    const ok = join(dir, "ok.safetensors");
    writeSafetensors(ok, { a: Tensor.from([1], [1]) });
    expect(() => SafetensorsFile.open(ok).read("zzz")).toThrow(/no tensor named "zzz"/);
  });

  it("fuzz: truncations, bit flips and absurd lengths give SafetensorsError, never a crash", () => {
    const rng = new Rng(3);
    const bytes = Buffer.concat(encodeSafetensors({
      w: new Tensor([4, 6], randn(rng, 24)),
      b: { dtype: "BF16", shape: [6], data: randn(rng, 6) },
      i: { dtype: "I64", shape: [3], data: [1, 2, 3] },
    }, { k: "v" }));
    const path = join(dir, "fuzz.safetensors");
    let refused = 0;
    for (let trial = 0; trial < 400; trial++) {
      const mutated = Buffer.from(bytes);
      const kind = trial % 4;
      let cut = mutated.length;
      if (kind === 0) cut = rng.int(mutated.length);
      else if (kind === 1) for (let f = 0; f < 1 + rng.int(4); f++) mutated[rng.int(mutated.length)]! ^= 1 << rng.int(8);
      else if (kind === 2) mutated.writeBigUInt64LE(BigInt(rng.int(2 ** 31)) * BigInt(1 + rng.int(2 ** 20)), 0);
      else { const at = 8 + rng.int(Number(bytes.readBigUInt64LE(0))); mutated[at] = "{}[],:\"0-e".charCodeAt(rng.int(10)); }
      writeFileSync(path, mutated.subarray(0, cut));
      try {
        const f = SafetensorsFile.open(path);
        for (const name of f.names()) {
          const info = f.info(name);
          if (info.dtype === "I64" || info.dtype === "I32") f.readInts(name);
          else if (["F32", "F16", "BF16", "F64"].includes(info.dtype)) f.read(name);
        }
      } catch (err) {
        expect(err).toBeInstanceOf(SafetensorsError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(200);
  });

  it("a write that fails midway (a full disk) leaves the previous file intact and no temporary", () => {
    const sub = join(dir, "atomic");
    const path = join(sub, "keep.safetensors");
    writeSafetensors(path, { a: Tensor.from([2], [1, 2]) });
    const before = readFileSync(path);
    function* failing() {
      yield new Uint8Array(1000);
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    }
    expect(() => writeFileAtomic(path, failing())).toThrow(/keep.safetensors: the disk is full \(any previous version of the file is intact\)/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(sub)).toEqual(["keep.safetensors"]);
  });

  it("a write removes the temporaries of that file left by killed writers, not a live writer's", () => {
    const sub = join(dir, "orphans");
    mkdirSync(sub, { recursive: true });
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!; // exited and reaped: no such process now
    const orphan = `.shard-00003.safetensors.tmp-${dead}-1700000000000-0`;
    const live = `.shard-00003.safetensors.tmp-${process.ppid}-1700000000000-0`; // our parent runs
    const otherFile = `.manifest.json.tmp-${dead}-1700000000000-1`;
    for (const f of [orphan, live, otherFile]) writeFileSync(join(sub, f), "partial");
    writeFileAtomic(join(sub, "shard-00003.safetensors"), "complete");
    expect(readdirSync(sub).sort()).toEqual([live, otherFile, "shard-00003.safetensors"].sort());
    writeFileAtomic(join(sub, "manifest.json"), "{}");
    expect(readdirSync(sub).sort()).toEqual([live, "manifest.json", "shard-00003.safetensors"].sort());
  });
});

describe("dtype conversions", () => {
  it("f16 and bf16 round to nearest even, keep specials", () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up to inf
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -26)).toBe(0); // below half the smallest subnormal
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    for (let h = 0; h < 0x7c00; h += 7) expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h); // exact round trip
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
  });

  it("float32 bytes decode wherever they start, and encode as a copy unless asked for a view", () => {
    const values = Float32Array.from([1.5, -0, NaN, Infinity, 3e-45, -123456.789]);
    const bytes = encodeFloats(values, "F32");
    expect(bytes.buffer).not.toBe(values.buffer);
    // The same bytes at every misalignment, as a file's data section or an .npy body can be.
    for (let shift = 0; shift < 4; shift++) {
      const padded = new Uint8Array(bytes.length + shift + 3);
      padded.set(bytes, shift);
      const got = decodeFloats(padded.subarray(shift), "F32", values.length);
      expect(new Uint8Array(got.buffer)).toEqual(bytes); // to the bit, NaN and -0 included
    }
    expect(() => decodeFloats(bytes.subarray(1), "F32", values.length)).toThrow(/6 F32 values need 24 bytes, got 23/);
    const view = encodeFloats(values, "F32", false);
    values[0] = 7;
    expect(new Float32Array(view.buffer, view.byteOffset, 1)[0]).toBe(7);
    expect(new Float32Array(bytes.buffer, bytes.byteOffset, 1)[0]).toBe(1.5);
  });

  it("a float32 tensor read from a file equals what was written, bit for bit", () => {
    const data = Float32Array.from([NaN, -0, 1e-40, 65504, -2.5, 1 / 3, 7, 8, 9]);
    const path = join(dir, "f32-bits.safetensors");
    writeSafetensors(path, { t: { shape: [3, 3], data } });
    data[0] = 1; // written before writeSafetensors returned: the file keeps NaN
    const got = SafetensorsFile.open(path).read("t");
    expect(got.shape).toEqual([3, 3]);
    expect(Number.isNaN(got.data[0])).toBe(true);
    expect(new Uint8Array(got.data.buffer, 4)).toEqual(new Uint8Array(Float32Array.from([-0, 1e-40, 65504, -2.5, 1 / 3, 7, 8, 9]).buffer));
    // Into a slice of a larger buffer, touching nothing around it; a wrong size is refused.
    const big = new Float32Array(13).fill(5);
    SafetensorsFile.open(path).readInto("t", big.subarray(2, 11));
    expect([...big.subarray(0, 2), ...big.subarray(11)]).toEqual([5, 5, 5, 5]);
    expect(new Uint8Array(big.buffer, 12, 32)).toEqual(new Uint8Array(got.data.buffer, 4));
    expect(() => SafetensorsFile.open(path).readInto("t", new Float32Array(8))).toThrow(/has 9 values, the destination 8/);
  });
});

describe("readFloatsInto", () => {
  it("reads in chunks, at any offset, straight into float32 or through a decode, to the bits of one whole read", () => {
    const values = randn(new Rng(5), 100);
    const bytes = new Uint8Array(3 + 8 * 100); // values start at an odd offset
    for (const dtype of ["F32", "F16", "BF16", "F64"] as const) {
      const encoded = dtype === "F64" ? new Uint8Array(Float64Array.from(values).buffer) : encodeFloats(values, dtype);
      bytes.set(encoded, 3);
      const whole = decodeFloats(encoded, dtype, 100);
      const memory = bytesSource(bytes);
      // A source that can fill a target (files can), or only hand out bytes (memory).
      const direct = { ...memory, readInto: (at: number, target: Uint8Array) => target.set(bytes.subarray(at, at + target.length)) };
      for (const source of [memory, direct]) {
        for (const perRead of [7, 100, 1 << 26]) {
          const got = readFloatsInto(source, 3, dtype, new Float32Array(100), (why) => { throw new Error(why); }, perRead);
          expect(got, `${dtype} ${perRead}`).toEqual(whole);
        }
      }
    }
    expect(() => readFloatsInto(bytesSource(bytes), 3, "F64", new Float32Array(101), (why) => { throw new Error(why); }, 7))
      .toThrow(/file ended while reading bytes 787..811/);
  });
});
