/**
 * The README's examples against the code as it is, so that one drifting from the API
 * fails here rather than in a user's hands:
 *   - the TypeScript: each section's ```ts blocks, in order, form one module (a later block
 *     may use what an earlier one of its section defined), type-checked strictly with
 *     "saekit" and "saekit/browser" resolved to this checkout's entry points;
 *   - the command lines: every `saekit ...` in a shell block or inline code names a
 *     command (and subcommand) the CLI has, and only options that command takes.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import ts from "typescript";
import { expect, it } from "vitest";
import { buildProgram } from "../src/cli/main.js";
import { tempDir } from "./helpers.js";

const root = resolve(import.meta.dirname, "..");
const readme = () => readFileSync(join(root, "README.md"), "utf8");

/** Per README section (by heading) the TypeScript of its ```ts blocks, joined in order. */
function examplesBySection(markdown: string): Map<string, string> {
  const sections = new Map<string, string>();
  let heading = "(top)";
  let inBlock = false;
  for (const line of markdown.split("\n")) {
    if (!inBlock && /^#{2,3} /.test(line)) heading = line.replace(/^#+ /, "");
    else if (!inBlock && line.trim() === "```ts") inBlock = true;
    else if (inBlock && line.trim() === "```") inBlock = false;
    else if (inBlock) sections.set(heading, `${sections.get(heading) ?? ""}${line}\n`);
  }
  return sections;
}

it("every TypeScript example in the README type-checks against the library", () => {
  const sections = examplesBySection(readme());
  expect(sections.size).toBeGreaterThanOrEqual(3);
  const dir = tempDir("saekit-readme-");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const files = [...sections].map(([heading, code], i) => {
    const file = join(dir, `example-${i}.ts`);
    writeFileSync(file, `// README: ${heading}\n${code}`);
    return file;
  });
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"], types: ["node"], typeRoots: [join(root, "node_modules/@types")],
    strict: true, noEmit: true, skipLibCheck: true, resolveJsonModule: true,
    paths: { saekit: [join(root, "src/index.ts")], "saekit/browser": [join(root, "src/browser.ts")] },
  });
  const problems = ts.getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || files.includes(resolve(d.file.fileName)))
    .map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
      const heading = d.file?.text.split("\n")[0] ?? "";
      return `${heading} line ${where ? where.line : "?"}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
  expect(problems).toEqual([]);
}, 60_000);

/**
 * The saekit command lines of the README: each line of its shell blocks (continuations
 * joined) from `saekit` on, comments cut, and each inline `saekit ...` code span.
 */
function commandLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.replace(/\\\n/g, " ").split("\n")) {
      const at = line.search(/\bsaekit /);
      if (at >= 0) lines.push(line.slice(at).replace(/\s#.*$/, ""));
    }
  }
  for (const span of markdown.matchAll(/`(saekit [^`]+)`/g)) lines.push(span[1]!.replace(/\s+/g, " "));
  return lines;
}

/** What is wrong with one command line, if anything: an unknown command or option. */
function checkCommandLine(program: Command, line: string): string | null {
  const words = line.split(/\s+/).slice(1);
  let command = program;
  while (words.length > 0 && !words[0]!.startsWith("-")) {
    const sub = command.commands.find((c) => c.name() === words[0]);
    if (!sub) break;
    command = sub;
    words.shift();
  }
  if (command === program) return words[0] === "--help" || words[0] === "--version" || words[0] === "..." ? null : "no such command";
  const known = new Set(command.options.map((o) => o.long).concat("--help"));
  const unknown = words.filter((w) => w.startsWith("--")).map((w) => w.split("=")[0]!).filter((f) => !known.has(f));
  return unknown.length > 0 ? `${command.name()} takes no ${unknown.join(", ")}` : null;
}

it("every saekit command line in the README names a command and options that exist", () => {
  const lines = commandLines(readme());
  expect(lines.length).toBeGreaterThan(40);
  const program = buildProgram();
  const problems = lines.map((line) => [line, checkCommandLine(program, line)]).filter(([, problem]) => problem !== null);
  expect(problems).toEqual([]);
});
