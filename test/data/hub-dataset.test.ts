/**
 * hf: datasets against a stand-in for the hub's API (the tree listing and file downloads):
 * the same documents as the local files, each file fetched only when reading reaches it,
 * and the cache read without a network.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { hubFolderDir, parseHubSpec } from "../../src/lm/hub.js";
import { readDocuments } from "../../src/data/text.js";
import { serveHubFile, tempDir } from "../helpers.js";

const dir = tempDir();
const root = join(dir, "repo");
mkdirSync(join(root, "data"), { recursive: true });
writeFileSync(join(root, "data", "a-train.jsonl"), ["one", "two"].map((text) => JSON.stringify({ text })).join("\n") + "\n");
writeFileSync(join(root, "data", "b-train.txt"), "three<|endoftext|>four");
writeFileSync(join(root, "README.md"), "# a dataset card, not data");

/** The hub's dataset tree API and file downloads for one repository, counting downloads. */
function fakeHub(repo: string, downloads: string[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const tree = new RegExp(`^/api/datasets/${repo}/tree/main(?:/(.*))?$`).exec(url.pathname);
    if (tree) {
      const files = ["README.md", "data/a-train.jsonl", "data/b-train.txt"].filter((f) => !tree[1] || f.startsWith(`${tree[1]}/`));
      return Response.json(files.map((path) => ({ type: "file", path, size: readFileSync(join(root, path)).length, oid: path })));
    }
    const m = new RegExp(`^/datasets/${repo}/resolve/main/(.+)$`).exec(url.pathname);
    const path = m ? join(root, decodeURIComponent(m[1]!)) : null;
    if (path && existsSync(path) && !new Headers(init?.headers).get("Range")) downloads.push(relative(root, path));
    return serveHubFile(root, path, init);
  }) as typeof fetch;
}

const collect = async (docs: AsyncIterable<string>, limit = Infinity) => {
  const out: string[] = [];
  for await (const d of docs) if (out.push(d) >= limit) break;
  return out;
};

describe("hf: datasets", () => {
  it("reads the repository's text files in name order, fetching each when reading reaches it", async () => {
    const cacheDir = join(dir, "cache");
    const downloads: string[] = [];
    const hub = { cacheDir, fetch: fakeHub("org/stories", downloads), progress: false };
    // One document needs only the first file.
    expect(await collect(readDocuments("hf:org/stories", { hub }), 1)).toEqual(["one"]);
    const local = hubFolderDir(parseHubSpec("hf:org/stories", "dataset"), cacheDir);
    expect(existsSync(join(local, "data", "a-train.jsonl"))).toBe(true);
    expect(existsSync(join(local, "data", "b-train.txt"))).toBe(false);
    expect(await collect(readDocuments("hf:org/stories", { hub }))).toEqual(["one", "two", "three", "four"]);
    expect(downloads.filter((f) => f.endsWith(".txt"))).toHaveLength(1);
    // A folder of the repository, and the cache read back without a network.
    const offline = { cacheDir, fetch: (() => { throw new TypeError("fetch failed"); }) as unknown as typeof fetch, progress: false };
    expect(await collect(readDocuments("hf:org/stories", { hub: offline }))).toEqual(["one", "two", "three", "four"]);
    expect(await collect(readDocuments("hf:org/stories/data", { hub: { ...hub, cacheDir: join(dir, "cache-data") } }))).toEqual(["one", "two", "three", "four"]);
  });

  it("without a network says which folder to fill", async () => {
    const offline = { cacheDir: join(dir, "cache-empty"), fetch: (() => { throw new TypeError("fetch failed"); }) as unknown as typeof fetch, progress: false };
    await expect(collect(readDocuments("hf:org/stories", { hub: offline }))).rejects.toThrow(/cannot reach the Hugging Face hub to download dataset org\/stories@main .*Without a network, put its .parquet \/ .jsonl \/ .txt files in .*datasets/);
    // Listed, but a file missing from the cache: the error names where it goes.
    const cacheDir = join(dir, "cache-partial");
    await collect(readDocuments("hf:org/stories", { hub: { cacheDir, fetch: fakeHub("org/stories", []), progress: false } }), 1);
    await expect(collect(readDocuments("hf:org/stories", { hub: { ...offline, cacheDir } }))).rejects.toThrow(/put data\/b-train.txt at /);
    await expect(collect(readDocuments("hf:org/nothing-here", { hub: { cacheDir, fetch: fakeHub("org/other", []), progress: false } }))).rejects.toThrow(/downloading dataset org\/nothing-here@main/);
  });
});
