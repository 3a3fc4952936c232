/**
 * The autointerp journal: results survive a reopen, a line a kill cut short is dropped, and a
 * file that is not this run's journal is refused and left as it was.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openAutoInterpJournal } from "../../src/eval/autointerp-journal.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();
const settings = { model: "m", sae: "s", seed: 0, latents: [1, 2, 3] };
const result = (latent: number) => ({ latent, explanation: `thing ${latent}`, score: 0.5, logs: "..." });

describe("autointerp journal", () => {
  it("keeps each result across a reopen, including dropped latents", () => {
    const path = join(dir, "a.jsonl");
    const j = openAutoInterpJournal(path, settings);
    expect(j.done.size).toBe(0);
    j.append(1, result(1));
    j.append(3, null);
    j.close();
    const again = openAutoInterpJournal(path, settings);
    expect([...again.done.entries()]).toEqual([[1, result(1)], [3, null]]);
    again.append(2, result(2));
    again.close();
    expect(openAutoInterpJournal(path, settings).done.size).toBe(3);
  });

  it("drops a last line cut short by a kill, and goes on after it", () => {
    const path = join(dir, "torn.jsonl");
    const j = openAutoInterpJournal(path, settings);
    j.append(1, result(1));
    j.close();
    appendFileSync(path, '{"latent":2,"result":{"lat');
    const again = openAutoInterpJournal(path, settings);
    expect([...again.done.keys()]).toEqual([1]);
    again.append(2, result(2));
    again.close();
    expect([...openAutoInterpJournal(path, settings).done.keys()]).toEqual([1, 2]);
  });

  it("refuses other settings, a damaged line and a file that is no journal, leaving the file as it was", () => {
    const path = join(dir, "b.jsonl");
    openAutoInterpJournal(path, settings).close();
    expect(() => openAutoInterpJournal(path, { ...settings, seed: 1 })).toThrow(/journals a run with other settings \(seed\)/);
    appendFileSync(path, "not json\n{}\n");
    expect(() => openAutoInterpJournal(path, settings)).toThrow(/line 2 is not JSON; the journal is damaged/);
    const other = join(dir, "notes.txt");
    writeFileSync(other, "{\"my\": \"notes\"}\nno newline at the end");
    expect(() => openAutoInterpJournal(other, settings)).toThrow(/is not an autointerp journal/);
    expect(readFileSync(other, "utf8")).toBe("{\"my\": \"notes\"}\nno newline at the end");
  });
});
