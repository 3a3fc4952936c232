/**
 * A journal of an autointerp run's finished latents, so that a run killed or failed part-way
 * (an endpoint down, a quota spent) loses none of its LLM calls: each latent's result is
 * appended as one JSON line the moment it arrives (and fsynced), and a rerun with the same
 * journal asks only for the latents not in it. The first line records the run's settings,
 * and a journal written under other settings is refused rather than mixed in. A last line
 * cut short by a kill is dropped; a damaged line before it is an error.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { changedSettings } from "../util/settings.js";
import type { LatentInterpretation } from "./autointerp.js";

export interface AutoInterpJournal {
  /** Latents finished before: the interpretation, or null where the latent was dropped. */
  done: Map<number, LatentInterpretation | null>;
  append(latent: number, result: LatentInterpretation | null): void;
  close(): void;
}

const KIND = "saekit autointerp journal";

export function openAutoInterpJournal(path: string, settings: Record<string, unknown>): AutoInterpJournal {
  const done = new Map<number, LatentInterpretation | null>();
  const fresh = !existsSync(path);
  if (!fresh) {
    const bytes = readFileSync(path);
    // What follows the last newline is "" or a line a kill cut short.
    const end = bytes.lastIndexOf(0x0a) + 1;
    const complete = bytes.subarray(0, end).toString("utf8").split("\n").slice(0, -1);
    const parse = (line: string, at: number): Record<string, unknown> => {
      try { return JSON.parse(line) as Record<string, unknown>; } catch {
        throw new Error(`${path}: line ${at + 1} is not JSON; the journal is damaged (remove it to start over)`);
      }
    };
    const head = complete.length > 0 ? parse(complete[0]!, 0) : null;
    if (!head || head.journal !== KIND) throw new Error(`${path} is not an autointerp journal`);
    if (JSON.stringify(head.settings) !== JSON.stringify(settings)) {
      throw new Error(`${path} journals a run with other settings (${changedSettings(head.settings, settings).join(", ")}); use another journal or the same settings`);
    }
    complete.slice(1).forEach((line, i) => {
      const entry = parse(line, i + 1) as { latent: number; result: LatentInterpretation | null };
      done.set(entry.latent, entry.result);
    });
    // Only now that it is known to be this run's journal: drop a torn last line.
    if (end < bytes.length) truncateSync(path, end);
  }
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a");
  const write = (text: string) => {
    const bytes = Buffer.from(text, "utf8");
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  };
  if (fresh) write(JSON.stringify({ journal: KIND, settings }) + "\n");
  return {
    done,
    append: (latent, result) => write(JSON.stringify({ latent, result }) + "\n"),
    close: () => closeSync(fd),
  };
}
