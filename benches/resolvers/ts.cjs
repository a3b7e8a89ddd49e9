// Module-level import edges of a JS/TS repository as the TypeScript compiler resolves them in a
// developer's working checkout.
// Usage: NODE_PATH=<dir with node_modules/typescript 5.x> node ts.cjs REPO
// (TypeScript 7 has no JavaScript API; install `typescript@5`.)
//
// For each tracked source file: its closest tsconfig.json/jsconfig.json (extends applied by the
// compiler), the module specifiers in the compiler's syntax tree (import/export declarations,
// `import x = require()`, `import()` calls and types, `require()` calls, module augmentations;
// ts.preProcessFile's lighter scanner misses `export * as ns from`, and stderr counts the
// differences), and ts.resolveModuleName with the real file system.
//
// The checkout must be installed and built as its developers do. For a pnpm workspace:
//   pnpm install --frozen-lockfile --ignore-scripts
//   pnpm <the repository's build scripts, as its CI runs them>
// Workspace packages imported by name then resolve as they do for the developers: through
// node_modules links to the package's `exports`/`types`, usually build output (dist/). Without
// node_modules those imports do not resolve at all, and the script says so on stderr.
//
// Two kinds of resolved file are not tracked files but stand for one, and are mapped to it:
// - Build output inside the repository: mapped back to the source it was built from by the
//   compiler's own output layout (rootDir → outDir, the rule project references use to map an
//   output .d.ts to its source), applied to the package's build config (tsconfig.build.json,
//   else tsconfig.json, in the package folder): outputs in `declarationDir`/`outDir`, or in the
//   common folder of the source maps the build left (tsdown, rollup), mirror the sources below
//   `rootDir` or the common folder of the config's inputs: `<out>/a/b.d.mts` is
//   `<root>/a/b.{ts,tsx,mts,cts,js,…}`. (A bundled entry that only re-exports has no map of
//   its own, so its map cannot name it.) Without such a config or maps, the output is not
//   traced: the import is printed as unjudged (below), never guessed.
// - A pnpm copy of a `file:` dependency (pnpm injects those as copies in node_modules/.pnpm):
//   mapped to the tracked file it was copied from, which the lockfile names (`name@file:dir`);
//   the copy's folder name picks among same-named packages, and the two files must be
//   byte-identical.
//
// Prints `importer<TAB>imported` for JS/TS targets that are tracked files (an import of a JSON
// module is not a JS/TS module edge; a package installed from the registry is not the
// repository's), and `?<TAB>importer<TAB>package folder` for imports that end in build output
// it cannot trace to a source file.
const ts = require("typescript");
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const repo = fs.realpathSync(path.resolve(process.argv[2]));
const JS = /\.(ts|tsx|js|jsx|mjs|cjs|mts|cts)$/;
const tracked = new Set(
  execFileSync("git", ["-C", repo, "ls-files"], { maxBuffer: 1 << 28 }).toString().split("\n").filter(Boolean),
);
const files = [...tracked].filter((f) => JS.test(f) && !f.includes("node_modules/"));
if (!fs.existsSync(path.join(repo, "node_modules")) && fs.existsSync(path.join(repo, "package.json"))) {
  console.error("ts.cjs: no node_modules: workspace packages imported by name will not resolve (install first)");
}

const configs = new Map();
function optionsFor(abs) {
  for (let dir = path.dirname(abs); dir.startsWith(repo); dir = path.dirname(dir)) {
    if (configs.has(dir)) return configs.get(dir);
    for (const name of ["tsconfig.json", "jsconfig.json"]) {
      const file = path.join(dir, name);
      if (ts.sys.fileExists(file)) {
        const parsed = ts.getParsedCommandLineOfConfigFile(file, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
        const opts = parsed ? parsed.options : {};
        configs.set(dir, opts);
        return opts;
      }
    }
    if (dir === repo) break;
  }
  return { allowJs: true, moduleResolution: ts.ModuleResolutionKind.Bundler, module: ts.ModuleKind.ESNext };
}

// Build output → tracked source.
function commonDir(paths) {
  if (paths.length === 0) return null;
  let parts = path.dirname(paths[0]).split(path.sep);
  for (const p of paths) {
    const q = path.dirname(p).split(path.sep);
    let n = 0;
    while (n < parts.length && n < q.length && parts[n] === q[n]) n++;
    parts = parts.slice(0, n);
  }
  return parts.join(path.sep);
}
function walk(dir, out) {
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    if (e.name === "node_modules") continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith(".map")) out.push(p);
  }
  return out;
}
// Where a package's build writes and what it compiles from: the compiler's own layout rule
// applied to the package's build config (tsconfig.build.json, else tsconfig.json): outputs in
// `declarationDir`/`outDir` mirror the sources below their common folder (`rootDir`, else the
// common folder of the config's input files). Build tools that write elsewhere (tsdown, tsup,
// rollup) leave source maps: their common folder is an output folder too.
const layouts = new Map();
function layoutOf(pkg) {
  if (layouts.has(pkg)) return layouts.get(pkg);
  let layout = null;
  const maps = walk(pkg, []).filter((m) => !tracked.has(path.relative(repo, m)));
  for (const name of ["tsconfig.build.json", "tsconfig.json", "jsconfig.json"]) {
    const file = path.join(pkg, name);
    if (!fs.existsSync(file)) continue;
    const parsed = ts.getParsedCommandLineOfConfigFile(file, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
    if (!parsed || parsed.fileNames.length === 0) break;
    const root = path.resolve(ts.getCommonSourceDirectoryOfConfig(parsed, !ts.sys.useCaseSensitiveFileNames));
    const outs = [parsed.options.declarationDir, parsed.options.outDir].filter(Boolean).map((d) => path.resolve(d));
    if (maps.length) outs.push(commonDir(maps));
    layout = { outs, root };
    break;
  }
  if (!layout && maps.length) {
    const sources = [];
    for (const m of maps) {
      try {
        const j = JSON.parse(fs.readFileSync(m, "utf8"));
        for (const s of j.sources || []) {
          const abs = path.resolve(path.dirname(m), j.sourceRoot || "", s);
          if (tracked.has(path.relative(repo, abs)) && !abs.includes("node_modules")) sources.push(abs);
        }
      } catch {}
    }
    if (sources.length) layout = { outs: [commonDir(maps)], root: commonDir(sources) };
  }
  layouts.set(pkg, layout);
  return layout;
}
function packageOf(abs) {
  for (let dir = path.dirname(abs); dir.startsWith(repo); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (dir === repo) break;
  }
  return null;
}
const mapped = { edges: 0, unmapped: new Set() };
function sourceOf(abs) {
  const pkg = packageOf(abs);
  const layout = pkg && layoutOf(pkg);
  for (const out of layout ? layout.outs : []) {
    if (!abs.startsWith(out + path.sep)) continue;
    const stem = path.relative(out, abs).replace(/(\.d)?\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/, "");
    for (const ext of [".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"]) {
      const rel = path.relative(repo, path.join(layout.root, stem + ext));
      if (tracked.has(rel)) return rel;
    }
  }
  return null;
}

// The module specifiers of a file, from the compiler's parser: import/export declarations,
// `import x = require()`, `import()` calls and types, `require()` calls (in any file, as
// ts.preProcessFile with detectJavaScriptImports counts them). preProcessFile itself misses
// `export * as ns from` (a lightweight scanner), so the syntax tree is walked instead.
const kinds = { walked: 0, scanner: 0 };
function specifiers(abs, text) {
  const sf = ts.createSourceFile(abs, text, ts.ScriptTarget.Latest, false);
  const found = [];
  const str = (n) => n && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) && found.push(n.text);
  const visit = (n) => {
    if (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) str(n.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) str(n.moduleReference.expression);
    else if (ts.isCallExpression(n) && n.arguments.length === 1 && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === "require"))) str(n.arguments[0]);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) str(n.argument.literal);
    // `declare module "x" {}` in a module augments x, which the compiler resolves.
    else if (ts.isModuleDeclaration(n) && ts.isStringLiteral(n.name) && ts.isExternalModule(sf)) str(n.name);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  const scanned = new Set(ts.preProcessFile(text, true, true).importedFiles.map((i) => i.fileName));
  const walked = new Set(found);
  kinds.walked += [...walked].filter((x) => !scanned.has(x)).length;
  kinds.scanner += [...scanned].filter((x) => !walked.has(x)).length;
  return walked;
}

// pnpm installs a `file:` dependency as a copy in node_modules/.pnpm (injected, not linked).
// The lockfile names the folder each copy was made from; a resolved file inside such a copy is
// mapped to the tracked file it was copied from, byte for byte the same.
const copiedFrom = new Map();
try {
  const lock = fs.readFileSync(path.join(repo, "pnpm-lock.yaml"), "utf8");
  for (const m of lock.matchAll(/^ {2}'?((?:@[^@\s/']+\/)?[^@\s/']+)@file:([^'():\s]+)'?:/gm)) {
    if (!copiedFrom.has(m[1])) copiedFrom.set(m[1], new Set());
    copiedFrom.get(m[1]).add(m[2]);
  }
} catch {}
const copies = { edges: 0 };
function copyOf(abs) {
  const at = abs.lastIndexOf(path.sep + "node_modules" + path.sep);
  if (at < 0) return null;
  const parts = abs.slice(at + 14).split(path.sep);
  const n = parts[0].startsWith("@") ? 2 : 1;
  const name = parts.slice(0, n).join("/");
  const inside = parts.slice(n).join(path.sep);
  // The copy's folder in node_modules/.pnpm names its origin (`@x+y@file+playground+a+b`);
  // pnpm shortens very long names with a hash, and then only a single identical file decides.
  const store = abs.slice(0, at).split(path.sep + ".pnpm" + path.sep)[1] || "";
  const folder = store.split(path.sep)[0];
  const same = [];
  for (const dir of copiedFrom.get(name) || []) {
    const rel = path.join(dir, inside);
    if (!tracked.has(rel)) continue;
    try {
      if (!fs.readFileSync(abs).equals(fs.readFileSync(path.join(repo, rel)))) continue;
    } catch { continue; }
    if (folder === `${name}@file:${dir}`.replace(/[/:]/g, "+")) return rel;
    same.push(rel);
  }
  return same.length === 1 ? same[0] : null;
}

const out = new Set();
const unjudged = new Set();
for (const rel of files) {
  const abs = path.join(repo, rel);
  let text;
  try { text = fs.readFileSync(abs, "utf8"); } catch { continue; }
  const opts = { ...optionsFor(abs), allowJs: true };
  for (const spec of specifiers(abs, text)) {
    const r = ts.resolveModuleName(spec, abs, opts, ts.sys).resolvedModule;
    if (!r || !r.resolvedFileName.startsWith(repo + path.sep)) continue;
    let to = path.relative(repo, r.resolvedFileName);
    if (!JS.test(to)) continue;
    if (tracked.has(to)) {
      // A tracked file, also one a repository keeps inside a node_modules folder.
    } else if (to.includes("node_modules" + path.sep)) {
      to = copyOf(r.resolvedFileName);
      if (!to) continue;
      copies.edges++;
    } else if (!tracked.has(to)) {
      const src = sourceOf(r.resolvedFileName);
      if (!src) {
        // No build config or source map names the source: the edge is reported as unjudged,
        // importer and package, and the bench leaves ours into that package out as well.
        mapped.unmapped.add(to);
        const pkg = packageOf(r.resolvedFileName);
        if (pkg) unjudged.add("?\t" + rel + "\t" + path.relative(repo, pkg));
        continue;
      }
      mapped.edges++;
      to = src;
    }
    if (to !== rel) out.add(rel + "\t" + to);
  }
}
console.error(`ts.cjs: specifiers found by the parser but not ts.preProcessFile: ${kinds.walked}; the reverse: ${kinds.scanner}`);
console.error(`ts.cjs: ${copies.edges} imports resolved to pnpm copies of file: dependencies mapped to the tracked originals`);
console.error(`ts.cjs: ${mapped.edges} imports resolved to build output mapped to source; ${mapped.unmapped.size} untracked targets not mapped${[...mapped.unmapped].slice(0, 20).map((u) => "\n  " + u).join("")}`);
console.log([...out, ...unjudged].sort().join("\n"));
