// Module-level import edges of a JS/TS repository as the TypeScript compiler resolves them.
// Usage: NODE_PATH=<dir with node_modules/typescript> node ts.cjs REPO
// For each source file: its closest tsconfig.json/jsconfig.json (extends applied by the compiler),
// the specifiers the compiler's own scanner finds (ts.preProcessFile), and ts.resolveModuleName.
// Prints `importer<TAB>imported` for targets inside the repository and outside node_modules.
const ts = require("typescript");
const path = require("path");
const { execFileSync } = require("child_process");
const repo = path.resolve(process.argv[2]);
const files = execFileSync("git", ["-C", repo, "ls-files"], { maxBuffer: 1 << 28 })
  .toString().split("\n").filter((f) => /\.(ts|tsx|js|jsx|mjs|cjs|mts|cts)$/.test(f) && !f.includes("node_modules/"));
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
const out = new Set();
for (const rel of files) {
  const abs = path.join(repo, rel);
  let text;
  try { text = require("fs").readFileSync(abs, "utf8"); } catch { continue; }
  const opts = { ...optionsFor(abs), allowJs: true };
  for (const imp of ts.preProcessFile(text, true, true).importedFiles) {
    const r = ts.resolveModuleName(imp.fileName, abs, opts, ts.sys).resolvedModule;
    if (!r || !r.resolvedFileName.startsWith(repo + path.sep) || r.resolvedFileName.includes("node_modules")) continue;
    const to = path.relative(repo, r.resolvedFileName);
    if (to !== rel) out.add(rel + "\t" + to);
  }
}
console.log([...out].sort().join("\n"));
