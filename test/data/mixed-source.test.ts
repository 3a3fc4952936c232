/** The mixing buffer shared by stores and on-the-fly activations: what it says when a group cannot be held. */
import { describe, expect, it } from "vitest";
import { MixedSource } from "../../src/data/mixed-source.js";

/** A source whose units are far too wide to hold: its group allocation fails. */
class Oversized extends MixedSource {
  readonly d = 2 ** 20;
  readonly dTarget = undefined;
  constructor() {
    super(0, 4, 4);
    this.begin();
  }
  protected loadRows(units: number[]): Float32Array {
    return new Float32Array(units.length * 2 ** 40);
  }
  protected where(): string {
    return "a huge model at blocks.*.hook_resid_post";
  }
  describe() {
    return {};
  }
}

describe("mixing buffer", () => {
  it("names the source and the setting to lower when a group does not fit in memory", () => {
    expect(() => new Oversized()).toThrow(/a huge model at blocks\.\*\.hook_resid_post: a mixing buffer of 4 units of rows 1048576 floats wide does not fit in memory \(.*\); lower --buffer-rows/);
  });
});
