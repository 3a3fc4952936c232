/** The terminal progress bar: what it writes, captured from stderr. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProgressBar } from "../../src/util/progress.js";

describe("ProgressBar", () => {
  afterEach(() => vi.restoreAllMocks());

  function capture(): string[] {
    const writes: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    return writes;
  }

  it("redraws in place, blanking what a longer earlier line left behind", () => {
    const writes = capture();
    const bar = new ProgressBar(10, "train", true);
    bar.update(10, "loss 11.95 L0 8.00"); // done = total: drawn at once, whatever the time
    bar.update(10, "loss 9");
    expect(writes).toHaveLength(2);
    expect(writes[0]!.startsWith("\rtrain [########################] 100% 10/10 ")).toBe(true);
    expect(writes[0]!.endsWith("loss 11.95 L0 8.00")).toBe(true);
    // Same length as the first line, so no "5 L0 8.00" stays on screen after "loss 9".
    expect(writes[1]!.length).toBe(writes[0]!.length);
    expect(writes[1]!.trimEnd().endsWith("loss 9")).toBe(true);
  });

  it("writes nothing when stderr is not a terminal, and ends its line when finished", () => {
    const writes = capture();
    const quiet = new ProgressBar(5, "harvest", false);
    quiet.update(5, "x");
    quiet.finish();
    expect(writes).toEqual([]);
    const bar = new ProgressBar(5, "harvest", true);
    bar.finish("done");
    expect(writes.at(-1)).toBe("\n");
    expect(writes.at(-2)!.endsWith("done")).toBe(true);
  });
});
