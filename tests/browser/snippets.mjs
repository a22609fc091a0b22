// Extracts every TypeScript snippet (```ts blocks) of README.md, docs/*.md and
// clients/typescript/README.md into OUT_DIR, one module per snippet, for run.sh to
// type-check with `tsc --strict` against the code `wirecall gen ts` generates for the
// example interfaces (OUT_DIR/gen): a snippet that drifts from the API fails the run.
//
//   node tests/browser/snippets.mjs OUT_DIR
//
// As tests/build.rs does for the Rust snippets, an HTML comment right above a block (not
// shown where the Markdown is rendered) says how it becomes a module:
// - none: the block is a module of its own (top-level `await` allowed);
// - `<!-- compile: continues -->`: the block goes on the previous snippet's module;
// - `<!-- compile: skip WHY -->`: not checked (say why);
// - `<!-- compile:` lines `-->`: the lines go before the block (imports, declarations of
//   what the snippet assumes).
// Snippets import the generated code as `./gen/NAME.js` (calculator, chat), the runtime as
// `./gen/wirecall.js` or `@wirecall/client`, and may import the `ws` package.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const out = process.argv[2];
if (out === undefined) {
  console.error("usage: node tests/browser/snippets.mjs OUT_DIR");
  process.exit(2);
}

const files = [
  "README.md",
  ...readdirSync(path.join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
  "clients/typescript/README.md",
];

/** Snippets as `{ file, line, code: string[] }`, in document order. */
function extract(file, text) {
  const snippets = [];
  const lines = text.split("\n");
  let directive;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const trimmed = line.trimStart();
    if (trimmed.startsWith("<!-- compile:")) {
      let body = trimmed.slice("<!-- compile:".length);
      while (!body.includes("-->")) {
        i++;
        if (i >= lines.length) throw new Error(`${file}:${i}: unclosed \`<!-- compile:\``);
        body += `\n${lines[i]}`;
      }
      directive = body.slice(0, body.indexOf("-->")).trim();
      continue;
    }
    if (trimmed.startsWith("```")) {
      const info = trimmed.slice(3).trim();
      const start = i + 2; // 1-based line of the block's first line
      const code = [];
      for (i++; i < lines.length && !lines[i].trimStart().startsWith("```"); i++) code.push(lines[i]);
      const taken = directive;
      directive = undefined;
      const lang = info.split(/[\s,]/)[0];
      if (lang !== "ts" && lang !== "typescript") continue;
      if (taken?.startsWith("skip")) continue;
      if (taken === "continues") {
        const previous = snippets.at(-1);
        if (previous === undefined) throw new Error(`${file}:${start}: \`continues\` with no snippet before it`);
        previous.code.push(`// ${file}:${start}`, ...code);
        continue;
      }
      snippets.push({ file, line: start, code: [...(taken === undefined ? [] : taken.split("\n")), `// ${file}:${start}`, ...code] });
      continue;
    }
    if (line.trim() !== "") directive = undefined;
  }
  return snippets;
}

mkdirSync(out, { recursive: true });
let count = 0;
for (const file of files) {
  const text = readFileSync(path.join(root, file), "utf8");
  for (const s of extract(file, text)) {
    const name = `${s.file.replace(/[^A-Za-z0-9]/g, "_")}_${s.line}.ts`;
    writeFileSync(path.join(out, name), `// ${s.file}:${s.line}, extracted by tests/browser/snippets.mjs\n${s.code.join("\n")}\nexport {};\n`);
    count++;
  }
}
writeFileSync(
  path.join(out, "tsconfig.json"),
  `${JSON.stringify(
    {
      "//": "Written by tests/browser/snippets.mjs: the documentation's TypeScript snippets, as a user with strict settings compiles them (browser and Node.js).",
      compilerOptions: {
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "bundler",
        lib: ["ES2022", "DOM"],
        types: [],
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        isolatedModules: true,
        noEmit: true,
        paths: { "@wirecall/client": ["./gen/wirecall.ts"] },
      },
      include: ["*.ts", "gen/*.ts"],
    },
    null,
    2,
  )}\n`,
);
console.log(`${count} snippets`);
