#!/bin/sh
# Package-level import edges of a Go repository as `go list` resolves them.
# Usage: sh go.sh REPO   Prints `importer-dir<TAB>imported-dir` (relative to REPO) for every import
# (including test imports) of a package of the repository by another; every go.mod is listed
# with its dependencies
# (a go.work covers the same modules). Offline: GOPROXY=off, -e keeps going past missing deps.
set -e
repo=$(cd "$1" && pwd)
cd "$repo"
for mod in $(git ls-files 'go.mod' '*/go.mod'); do
  d=$(dirname "$mod")
  # -deps: packages the module's own import but `./...` leaves out (testdata/ folders).
  (cd "$d" && GOFLAGS=-mod=mod GOPROXY=off GOWORK=off go list -e -json -deps ./... 2>/dev/null) || true
done | python3 -c '
import json, os, sys
repo = sys.argv[1]
dec, buf, pkgs = json.JSONDecoder(), sys.stdin.read(), []
i = 0
while i < len(buf):
    while i < len(buf) and buf[i].isspace(): i += 1
    if i >= len(buf): break
    obj, i = dec.raw_decode(buf, i); pkgs.append(obj)
by_path = {p["ImportPath"]: os.path.relpath(p["Dir"], repo) for p in pkgs if p.get("Dir", "").startswith(repo + "/") or p.get("Dir") == repo}
# Test-only imports are not in -deps; ask go list about those inside the repository modules.
import subprocess
mods = {p["Module"]["Path"]: p["Module"]["Dir"] for p in pkgs if p.get("Module") and p["Module"].get("Dir", "").startswith(repo)}
for p in list(pkgs):
    for imp in p.get("TestImports", []) + p.get("XTestImports", []):
        owner = max((m for m in mods if imp == m or imp.startswith(m + "/")), key=len, default=None)
        if owner and imp not in by_path:
            env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GOWORK="off")
            out = subprocess.run(["go", "list", "-e", "-f", "{{.Dir}}", imp], cwd=mods[owner], capture_output=True, text=True, env=env).stdout.strip()
            if out.startswith(repo):
                by_path[imp] = os.path.relpath(out, repo)
edges = set()
for p in pkgs:
    src = by_path.get(p["ImportPath"])
    if src is None: continue
    for imp in p.get("Imports", []) + p.get("TestImports", []) + p.get("XTestImports", []):
        dst = by_path.get(imp)
        if dst is not None and dst != src: edges.add((src, dst))
for a, b in sorted(edges): print(f"{a}\t{b}")
' "$repo"
