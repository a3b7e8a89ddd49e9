"""Module-level import edges of a Python repository, as Python's own import machinery finds them.

Usage: python3 python.py REPO [SOURCE_ROOT ...]   (roots relative to REPO, searched in order before
REPO; a root may be a glob, `*/src`, expanded in sorted order)
Prints `importer<TAB>imported` (paths relative to REPO) for every import statement whose module
is a file of the repository: `import a.b` names a.b; `from m import x` names m.x when x is a
submodule, else m. Finders (importlib.machinery.PathFinder) locate modules; nothing is executed.
Test suites run as pytest runs them (its default `prepend` import mode): a test file
(test_*.py, *_test.py, conftest.py) puts its basedir, the first folder above it without an
__init__.py, first on sys.path, and files of the same package tree import with it there. A file
under a source root searches that root first (a repository of several distributions runs each
with its own code first; it matters when two of them have a package of the same name).
"""
import ast, glob, importlib.machinery, importlib.util, os, subprocess, sys, types

repo = os.path.abspath(sys.argv[1])
# The repository top comes last: test suites run with it on sys.path (pytest's rootdir insertion
# for a `tests` package), and files outside the source roots are named from it.
roots = [d for r in sys.argv[2:] for d in sorted(glob.glob(os.path.join(repo, r))) if os.path.isdir(d)] + [repo]
files = subprocess.run(["git", "-C", repo, "ls-files", "*.py"], capture_output=True, text=True).stdout.split()
cache = {}
stand_ins = set()

def find(name, search):
    """The file of module `name` (dotted), searching `search` for its top package."""
    key = (name, tuple(search))
    if key in cache:
        return cache[key]
    path, origin, spec = search, None, None
    parts = name.split(".")
    for i in range(len(parts)):
        if i:
            # A namespace package's path (PEP 420) is recomputed from its parent's `__path__` in
            # sys.modules; nothing is imported, so the parent stands there as an empty module.
            parent = ".".join(parts[:i])
            if parent not in sys.modules:
                stand_ins.add(parent)
                sys.modules[parent] = types.ModuleType(parent)
            if parent in stand_ins:
                sys.modules[parent].__path__ = path
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), path)
        if spec is None:
            cache[key] = None
            return None
        if i < len(parts) - 1:
            path = list(spec.submodule_search_locations or [])
            if not path:
                cache[key] = None
                return None
    origin = spec.origin if spec and spec.has_location else None
    cache[key] = origin
    return origin

def basedir(rel):
    """pytest's basedir of a file: the first folder above it without an __init__.py."""
    d = os.path.dirname(os.path.join(repo, rel))
    while d != repo and os.path.exists(os.path.join(d, "__init__.py")):
        d = os.path.dirname(d)
    return d

def is_test(rel):
    name = os.path.basename(rel)
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")

test_basedirs = {basedir(f) for f in files if is_test(f)}

def search_of(rel):
    """The file's own source root first (each distribution runs with its own code first), after
    its basedir for the files of a test suite."""
    absf = os.path.join(repo, rel)
    first = [r for r in roots[:-1] if absf.startswith(r + os.sep)]
    first = [max(first, key=len)] if first else []
    b = basedir(rel)
    if b in test_basedirs:
        first.insert(0, b)
    return first + [r for r in roots if r not in first]

def module_name(rel, search):
    """The dotted name of a file under the first root of `search` that holds it."""
    absf = os.path.join(repo, rel)
    for r in search:
        r = os.path.abspath(r)
        if absf.startswith(r + os.sep):
            mod = os.path.relpath(absf, r)[:-3].replace(os.sep, ".")
            return mod[: -len(".__init__")] if mod.endswith(".__init__") else mod, absf.endswith("__init__.py")
    return None, False

edges = set()
for rel in files:
    try:
        tree = ast.parse(open(os.path.join(repo, rel), "rb").read())
    except (SyntaxError, ValueError):
        continue
    search = search_of(rel)
    me, is_pkg = module_name(rel, search)
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                hit = next((f for n in range(len(parts), 0, -1) if (f := find(".".join(parts[:n]), search))), None)
                targets.append(hit)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if me is None:
                    continue
                package = me if is_pkg else me.rpartition(".")[0]
                try:
                    base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                except (ImportError, ValueError):
                    continue
            else:
                base = node.module
            subs = [find(f"{base}.{a.name}", search) for a in node.names if a.name != "*"]
            subs = [s for s in subs if s]
            if subs:
                targets.extend(subs)
            else:
                parts = base.split(".")
                targets.append(next((f for n in range(len(parts), 0, -1) if (f := find(".".join(parts[:n]), search))), None))
    for t in targets:
        if t and t.startswith(repo + os.sep):
            t = os.path.relpath(t, repo)
            if t != rel:
                edges.add((rel, t))
for a, b in sorted(edges):
    print(f"{a}\t{b}")
