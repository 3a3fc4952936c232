/** Folder listings shared by the commands that take a folder of stores or of SAEs. */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/**
 * The names of the subfolders of `dir` that `accept` takes, in natural order (blocks.2
 * before blocks.10); none when `dir` is not a folder.
 */
export function subfolders(dir: string, accept: (path: string) => boolean): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir).filter((name) => statSync(join(dir, name)).isDirectory() && accept(join(dir, name)))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}
