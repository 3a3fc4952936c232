/**
 * Loading many large things (SAEs) for work that runs them together over the same data, in
 * groups that fit a memory budget instead of all at once. A folder of snapshots or a sweep
 * of wide SAEs can outgrow the machine's memory; each group then takes its own pass over
 * the data.
 */
import { totalmem } from "node:os";

/**
 * Loads `count` items in order, one at a time, and yields them in groups whose sizes
 * (`bytesOf`) sum to at most `budget` bytes; a group holds at least one item however large.
 * While a full group is out, the item that did not fit it is already loaded: the peak is
 * the budget plus one item.
 */
export async function* loadInGroups<T>(count: number, load: (index: number) => Promise<T>,
  bytesOf: (item: T) => number, budget: number): AsyncGenerator<T[]> {
  let group: T[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const item = await load(i);
    const size = bytesOf(item);
    if (group.length > 0 && bytes + size > budget) {
      yield group;
      group = [];
      bytes = 0;
    }
    group.push(item);
    bytes += size;
  }
  if (group.length > 0) yield group;
}

/** The default budget for SAEs held together: a quarter of this machine's memory. */
export function defaultGroupMemory(): number {
  return Math.floor(totalmem() / 4);
}
