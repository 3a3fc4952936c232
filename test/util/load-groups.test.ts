/** Loading SAEs in groups that fit a memory budget: group boundaries, order, and what is held at once. */
import { describe, expect, it } from "vitest";
import { loadInGroups } from "../../src/util/load-groups.js";

/** The groups of item sizes `sizes` under `budget`, and the most items loaded and not yet handed back at once. */
async function grouped(sizes: number[], budget: number) {
  const groups: number[][] = [];
  let loaded = 0, handed = 0, mostHeld = 0;
  const load = async (i: number) => {
    loaded++;
    mostHeld = Math.max(mostHeld, loaded - handed);
    return { i, size: sizes[i]! };
  };
  for await (const group of loadInGroups(sizes.length, load, (item) => item.size, budget)) {
    expect(group.map((item) => item.i)).toEqual(group.map((_, j) => groups.flat().length + j)); // in order, none skipped
    groups.push(group.map((item) => item.size));
    handed += group.length;
  }
  return { groups, mostHeld };
}

describe("loadInGroups", () => {
  it("closes a group before the item that would take it past the budget", async () => {
    expect((await grouped([3, 3, 3, 5, 1], 6)).groups).toEqual([[3, 3], [3], [5, 1]]);
    expect((await grouped([2, 2, 2], 6)).groups).toEqual([[2, 2, 2]]); // exactly the budget fits
  });

  it("gives an item larger than the budget a group of its own", async () => {
    expect((await grouped([1, 10, 1], 4)).groups).toEqual([[1], [10], [1]]);
  });

  it("holds at most one group and the next item at once", async () => {
    const { groups, mostHeld } = await grouped([1, 1, 1, 1, 1, 1, 1], 2);
    expect(groups).toEqual([[1, 1], [1, 1], [1, 1], [1]]);
    expect(mostHeld).toBe(3);
  });

  it("yields nothing for no items", async () => {
    expect((await grouped([], 8)).groups).toEqual([]);
  });
});
