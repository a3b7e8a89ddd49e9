#!/bin/sh
# Package-level import edges of a Go repository as `go list` resolves them.
# Usage: sh go.sh REPO   Prints `importer-dir<TAB>imported-dir` (relative to REPO) for every import
# (test imports included) of a package folder of the repository by another.
#
# Every folder holding tracked .go files is listed by name (testdata/ and other folders that
# `./...` leaves out included) from the module it belongs to (the nearest go.mod above it), and
# its imports are resolved in that module's build: in workspace mode when the nearest go.work
# above the module lists it (as the go command does), else with GOWORK=off and the module's own
# go.mod (its `replace` directives). An import of another module that is neither the module
# itself, nor replaced by a local folder, nor in the workspace, resolves to a downloaded version,
# not to the repository's folder: no edge. Offline: GOPROXY=off; -e keeps going past missing
# dependencies (the packages that load keep their `Imports`). Files excluded by build
# constraints count too: each module is listed once as is, once per build tag its constraints
# name (`-tags T`), and once per other GOOS they name; the edges are the union.
# Progress and the folders go list could not load go to stderr.
set -e
repo=$(cd "$1" && pwd)
cd "$repo"
python3 - "$repo" <<'EOF'
import json, os, re, subprocess, sys
repo = sys.argv[1]
tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.splitlines()
mods = {os.path.dirname(p) for p in tracked if os.path.basename(p) == "go.mod"}

def module_of(d):
    while True:
        if d in mods:
            return d
        if not d:
            return None
        d = os.path.dirname(d)

def norm(p):
    p = os.path.normpath(p)
    return "" if p == "." else p

# go.work files (parsed by the go command) and the module folders each lists.
works = {}
for p in tracked:
    if os.path.basename(p) == "go.work":
        w = os.path.dirname(p)
        out = subprocess.run(["go", "work", "edit", "-json", p], capture_output=True, text=True)
        uses = json.loads(out.stdout or "{}").get("Use") or []
        works[w] = {norm(os.path.join(w, u["DiskPath"])) for u in uses}

def workspace_of(m):
    d = m
    while True:
        if d in works:
            return os.path.join(repo, d, "go.work") if m in works[d] else "off"
        if not d:
            return "off"
        d = os.path.dirname(d)

oses = {}
for line in subprocess.run(["go", "tool", "dist", "list"], capture_output=True, text=True).stdout.split():
    o, a = line.split("/")
    if o not in oses or a == "amd64":
        oses[o] = a
arches = set(oses.values()) | {"386", "arm", "arm64", "amd64", "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le", "riscv64", "s390x", "loong64", "wasm"}
constraint = re.compile(r"^//(?:go:build|\s*\+build)\s(.*)$", re.M)
word = re.compile(r"[A-Za-z0-9_.]+")

dirs, tags, goos = {}, {}, {}
for p in tracked:
    if not p.endswith(".go"):
        continue
    d = os.path.dirname(p)
    m = module_of(d)
    if m is None:
        continue
    dirs.setdefault(m, set()).add(d)
    name = os.path.basename(p)[:-3].split("_")
    for part in name[1:]:
        if part in oses and part != "linux":
            goos.setdefault(m, set()).add(part)
    try:
        head = open(os.path.join(repo, p), encoding="utf-8", errors="replace").read().split("\npackage ", 1)[0]
    except OSError:
        continue
    for expr in constraint.findall(head):
        for w in word.findall(expr):
            if w in oses:
                if w != "linux":
                    goos.setdefault(m, set()).add(w)
            elif w not in arches and not re.fullmatch(r"go1\.\d+", w) and w != "gc":
                tags.setdefault(m, set()).add(w)

def go_list(m, patterns, env):
    out = subprocess.run(["go", "list", "-e", "-json", "-deps", "-test"] + patterns, cwd=os.path.join(repo, m),
                         capture_output=True, text=True, env=env).stdout
    dec, i, pkgs = json.JSONDecoder(), 0, []
    while i < len(out):
        while i < len(out) and out[i].isspace():
            i += 1
        if i >= len(out):
            break
        obj, i = dec.raw_decode(out, i)
        pkgs.append(obj)
    return pkgs

def rel(d):
    if d == repo:
        return ""
    return os.path.relpath(d, repo) if d.startswith(repo + "/") else None

edges = set()
for m in sorted(mods):
    patterns = sorted("./" + (os.path.relpath(d, m) if m else d) for d in dirs.get(m, ()))
    if not patterns:
        continue
    work = workspace_of(m)
    base = dict(os.environ, GOPROXY="off", GOWORK=work, GOFLAGS="-mod=mod" if work == "off" else "")
    configs = [{}] + [{"GOFLAGS": (base["GOFLAGS"] + " -tags=" + t).strip()} for t in sorted(tags.get(m, ()))]
    configs += [{"GOOS": o, "GOARCH": oses[o]} for o in sorted(goos.get(m, ()))]
    loaded = set()
    for config in configs:
        pkgs = go_list(m, patterns, dict(base, **config))
        # Import path (test variants: `p [q.test]`) to folder, in this build.
        by_path = {p["ImportPath"].split(" ")[0]: p.get("Dir", "") for p in pkgs if p.get("Dir")}
        for p in pkgs:
            src = rel(p.get("Dir", ""))
            if src is None or module_of(src) != m:
                continue
            if p.get("Name"):
                loaded.add(src)
            for imp in p.get("Imports") or []:
                dst = rel(by_path.get(imp.split(" ")[0], ""))
                if dst is not None and dst != src:
                    edges.add((src, dst))
    missing = sorted(dirs[m] - loaded)
    note = "; not: " + " ".join(missing[:4]) + (" …" if len(missing) > 4 else "") if missing else ""
    print("go.sh: module %s (GOWORK=%s, %d builds): %d of %d package folders loaded%s"
          % (m or ".", work, len(configs), len(dirs[m]) - len(missing), len(dirs[m]), note), file=sys.stderr)
for a, b in sorted(edges):
    print((a or ".") + "\t" + (b or "."))
EOF
