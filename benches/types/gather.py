#!/usr/bin/env python3
"""Gather labelled commit subjects and pull-request titles from public repositories and train the
task-type model.

Round 8 adds rows for words the table's features lack, from word vectors learned from the same
repositories' whole commit messages (`word_vectors`, `rows_by_vectors`); that step needs numpy and
scipy (`pip install numpy scipy`), and `--no-vectors` skips it.

Usage (from the repository root; the mirrors are bare git directories, one per repository):

    python3 benches/types/gather.py --mirrors /work/.mirror            # check sources.tsv, train, write
    python3 benches/types/gather.py --mirrors /work/.mirror --pin      # first rewrite sources.tsv's commits

`benches/types/sources.tsv` lists each repository and the commit its history is read from
(`git log <commit>`, merges included), in a bare clone at `<mirrors>/<owner>+<name>/repo`. The script
writes `src/prompt/types_model.tsv` (the weight table `classify.rs` includes) and prints the
corpus's size and the model's accuracy on the 10% of the corpus it holds out (every tenth subject
by a hash of its text, so the split does not depend on the order of the repositories).

Labels come from the prefix: feat -> feature, fix -> bug-fix, docs -> documentation,
test/tests -> test-coverage, perf -> performance, refactor -> refactor, build/ci -> configuration,
and any prefix whose scope names dependencies, a release, CI, the build or docs takes that type
(`chore(deps):`, `fix(deps):`, `chore(release):`, `chore(ci):`, `chore(docs):`). Plain `chore:`,
`chore(<component>):`, `style:` and `revert:` are dropped: people use them for refactors,
version bumps, docs and tooling alike, so they carry no label. NumPy-style upper-case prefixes
label too (BUG, ENH, DOC, PERF, TST, BLD, CI, REF, CLN; MAINT and the rest are dropped). A merge
`Merge pull request #N from owner/branch` labels the pull request's title (the first line of its
body) by the title's own prefix, else by the branch's first word (fix-..., feature/..., docs_...;
HashiCorp's b-, f-, d-). Texts that appear in the hand-labelled sets (tests/data/task-types*.tsv)
are dropped.

`--changelogs benches/types/changelogs.tsv` (round 5, tried and not kept: the shipped table is built
without it) also reads the changelog files listed there: each entry of a list under a heading that
names one type (SECTION below: "Bug Fixes"/"Fixed"/"BUG FIXES:" -> bug-fix, "Features"/"Added"/
"Enhancements" -> feature, "Performance" -> performance, "Documentation"/"Documented" ->
documentation, "Code Refactoring" -> refactor, "Tests" -> test-coverage, "Build System"/"Continuous
Integration"/"Packaging"/"Dependencies" -> configuration) is labelled by it, its first sentence kept
without markdown, links, issue and pull-request references, commit hashes, authors and a leading
scope (`**parser:**`, `net:`, `[rule]`); entries of under 3 or over 30 words and version bumps are
dropped, as are texts already taken and those of the hand-labelled sets; at most 1,500 of one type
from one repository. docs/accuracy.md (round 5) gives the figures with and without it.
"""

import argparse
import collections
import hashlib
import math
import os
import random
import re
import subprocess
import sys

# The order of PRECEDENCE in src/prompt/classify.rs: the table's columns.
TYPES = ["documentation", "test-coverage", "performance", "bug-fix", "refactor", "configuration", "feature"]
PREFIX = re.compile(r"^\s*([A-Za-z]+)(?:\(([^)]*)\))?!?:\s*(.*)$")
HEAD = {
    "feat": "feature",
    "feature": "feature",
    "fix": "bug-fix",
    "bugfix": "bug-fix",
    "docs": "documentation",
    "doc": "documentation",
    "test": "test-coverage",
    "tests": "test-coverage",
    "perf": "performance",
    "refactor": "refactor",
    "build": "configuration",
    "ci": "configuration",
}
SCOPE = {
    "deps": "configuration",
    "deps-dev": "configuration",
    "dev-deps": "configuration",
    "dependencies": "configuration",
    "release": "configuration",
    "ci": "configuration",
    "build": "configuration",
    "docker": "configuration",
    "version": "configuration",
    "bump": "configuration",
    "docs": "documentation",
    "doc": "documentation",
    "test": "test-coverage",
    "tests": "test-coverage",
}
PER_REPO_TYPE = 1500  # at most this many subjects of one type from one repository

# The upper-case prefixes of NumPy, SciPy and pandas (`BUG:`, `ENH:`, `PERF:`, `TST:`); `MAINT:`,
# `STY:`, `TYP:`, `DEP:`, `API:` and `REV:` name no one type and are dropped.
UPPER = {
    "BUG": "bug-fix",
    "ENH": "feature",
    "DOC": "documentation",
    "PERF": "performance",
    "TST": "test-coverage",
    "BLD": "configuration",
    "CI": "configuration",
    "REF": "refactor",
    "CLN": "refactor",
}
UPPER_PREFIX = re.compile(r"^\s*([A-Z]{2,5})(?:\s*[,/+]\s*[A-Z]{2,5})*\s*:\s*(.*)$")
# A merged pull request: `Merge pull request #N from owner/branch`, its title the body's first line.
MERGE = re.compile(r"^Merge pull request #\d+ from [^/\s]+/(\S+)")
# The first word of a pull request's branch (`fix-crash`, `feature/export`, `docs_typo`), and
# HashiCorp's one-letter prefixes (`b-` bug, `f-` feature, `d-` docs) in its repositories.
# Every commit-prefix word, and some only branches use.
BRANCH = {
    **HEAD,
    "bug": "bug-fix",
    "hotfix": "bug-fix",
    "performance": "performance",
    "deps": "configuration",
}
HASHICORP_BRANCH = {"b": "bug-fix", "f": "feature", "d": "documentation"}


def label(subject):
    m = PREFIX.match(subject)
    if m:
        head, scope, rest = m.group(1).lower(), (m.group(2) or "").lower().strip(), m.group(3)
        # A dependency, release, CI or docs scope names the work whatever the head says.
        if scope in SCOPE and head in HEAD.keys() | {"chore"}:
            return SCOPE[scope], rest
        if head in HEAD:
            return HEAD[head], rest
    m = UPPER_PREFIX.match(subject)
    if m and m.group(1) in UPPER:
        return UPPER[m.group(1)], m.group(2)
    return None


def label_merge(repo, subject, body):
    """A merged pull request's title and its label: the title's own prefix, else its branch's."""
    m = MERGE.match(subject)
    title = body.strip().split("\n")[0].strip()
    if not m or not title:
        return None
    got = label(title)
    if got:
        return got
    head = re.split(r"[/_-]", m.group(1))[0].lower()
    kind = BRANCH.get(head) or (HASHICORP_BRANCH.get(head) if repo.startswith("hashicorp/") else None)
    return (kind, title) if kind else None


# Text cleaning shared with classify.rs: code spans, paths and identifiers are not words.
CODE = re.compile(r"(?s)```.*?(?:```|$)|`[^`]*`")
PATH = re.compile(
    r"[\w.\-]*(?:/[\w.\-]+)+/?|[\w\-]+(?:\.[A-Za-z0-9]{1,5})+\b|\B\.[A-Za-z][\w-]*|\w+_\w+|\w+(?:::\w+)+|\w+\(\)"
)
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PR = re.compile(r"\s*\((?:#\d+|[\w./-]*#\d+)\)\s*")


def clean(text):
    """The text a subject is trained on: without pull-request numbers, code spans and paths."""
    text = PR.sub(" ", text.replace("\u2019", "'"))
    text = CODE.sub(" ", text)

    def path(m):
        s = m.group(0)
        return " " if any(c in s for c in "/_:(") or not s.endswith(".") else s

    return PATH.sub(path, text)


# Every prompt git-parallel plans is a task: the word names no type, so the model never sees it
# (in commits it leans to build tooling, and a title like "Task b" would be a refactor).
IGNORED = {"task", "tasks"}


def words(text):
    out = []
    for t in TOKEN.findall(text.lower()):
        if t in IGNORED:
            continue
        if any(c.isdigit() for c in t):
            t = "0"
        out.append(t)
    return out


def features(text):
    """Unigrams, bigrams (with a start mark, so the first word counts on its own too) of a text
    without its conventional-commit prefix."""
    m = PREFIX.match(text)
    w = words(clean(m.group(3) if m else text))
    f = set(w)
    prev = "^"
    for t in w:
        f.add(prev + " " + t)
        prev = t
    return f


# Changelogs: a file's sections name the type of each entry under them. Only headings that name one
# type are read (lower case, emoji and `:emoji:` codes and punctuation removed); "Changed",
# "Changes", "Improvements", "Internal", "Chores", "Other", "Breaking changes", "Removed",
# "Deprecated", "Security", "Polish" and the like name several kinds of work and are skipped, as is
# everything under them.
SECTION = {
    "features": "feature",
    "feature": "feature",
    "new features": "feature",
    "new feature": "feature",
    "features added": "feature",
    "added": "feature",
    "enhancements": "feature",
    "bug fixes": "bug-fix",
    "bug fix": "bug-fix",
    "bugfixes": "bug-fix",
    "bugs fixed": "bug-fix",
    "fixes": "bug-fix",
    "fixed": "bug-fix",
    "performance": "performance",
    "performance improvements": "performance",
    "documentation": "documentation",
    "docs": "documentation",
    "documented": "documentation",
    "improved documentation": "documentation",
    "code refactoring": "refactor",
    "refactor": "refactor",
    "refactoring": "refactor",
    "tests": "test-coverage",
    "testing": "test-coverage",
    "build system": "configuration",
    "continuous integration": "configuration",
    "packaging": "configuration",
    "dependencies": "configuration",
}
MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
CAPS_HEADING = re.compile(r"^([A-Z][A-Z ]{2,30}):\s*$")  # HashiCorp's `BUG FIXES:`
RST_UNDERLINE = re.compile(r"^([-=~^\"'`#*+])\1{2,}\s*$")
BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+\.)\s+(.*)$")
MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\[[^\]]*\]")
REF_ONLY = re.compile(r"^\s*(?:#|GH-|gh-|@)?[\w.-]*\d[\w.-]*\s*$|^\s*@[\w-]+\s*$")
RST_ROLE = re.compile(r":[a-z:]+:`([^`]*)`")
URL = re.compile(r"<?https?://\S+>?")
ISSUE = re.compile(r"(?:\b[\w.-]+/[\w.-]+)?(?:#|\bGH-|\bgh-)\d+\b|\b[0-9a-f]{7,40}\b|@[\w-]+")
EMPTY_BRACKETS = re.compile(r"\(\s*[,;&]*\s*(?:(?:by|thanks to|and)\s*)*[,;&\s]*\)|\[\s*[,;]*\s*\]")
BOLD_SCOPE = re.compile(r"^\s*\*\*[^*]{1,60}\*\*:?\s*")
LEAD_SCOPE = re.compile(r"^\s*[\w`'\"./\-]{1,30}:\s+(?=\S)")
VERSION_BUMP = re.compile(
    r"^\W*(?:bump|bumps|bumped|update|updated|upgrade|upgraded|pin|pinned)\b.*\b(?:to|from)\b\s*v?\d", re.I)
MIN_WORDS, MAX_WORDS = 3, 30


def section_type(heading):
    h = re.sub(r":[a-z_\\]+:", " ", heading.lower())
    h = re.sub(r"[^a-z ]+", " ", h)
    return SECTION.get(" ".join(h.split()))


def changelog_text(entry):
    """An entry as a title: its first sentence without markdown, links, references, hashes,
    authors and a leading scope (`**parser:**`, `net:`, `[rule]`)."""
    t = " ".join(entry.split())
    t = BOLD_SCOPE.sub("", t)
    t = RST_ROLE.sub(lambda m: "" if REF_ONLY.match(m.group(1)) else "`" + m.group(1) + "`", t)
    t = MD_LINK.sub(lambda m: "" if REF_ONLY.match(m.group(1) or m.group(2) or "") else (m.group(1) or m.group(2)), t)
    t = URL.sub(" ", t)
    t = ISSUE.sub(" ", t)
    t = re.sub(r"\b(?:thanks to|by|from)\s*(?=[,;)]|$)", " ", t)
    for _ in range(3):
        t = EMPTY_BRACKETS.sub(" ", t)
    t = t.replace("**", "").replace("__", "")
    # A leading `[rule]` or `[package]` (jest, ruff) and a leading scope word with a colon.
    t = re.sub(r"^\s*(?:\[[^\]]{1,60}\]\s*)+:?\s*", "", t)
    t = re.sub(r"^\s*(?:`[^`]{1,60}`\s*,?\s*)+:\s*", "", t)
    t = LEAD_SCOPE.sub("", t)
    t = re.sub(r"^[\s:;,.\-\u2013\u2014]+", "", t)
    # The first sentence only: a title is one.
    t = re.split(r"(?<=[a-z0-9)`'\"])\.\s+(?=[A-Z])", t)[0]
    t = " ".join(t.split()).rstrip(" .;,:")
    return t


def changelog_entries(text, rst):
    """(type, entry) for each top-level list item under a heading that names one type."""
    lines = text.split("\n")
    kind, entry, indent, out = None, None, 0, []

    def flush():
        if kind and entry:
            out.append((kind, " ".join(entry)))

    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        heading = None
        m = MD_HEADING.match(line)
        if m:
            heading = m.group(1)
        elif CAPS_HEADING.match(line):
            heading = CAPS_HEADING.match(line).group(1)
        elif rst and line.strip() and RST_UNDERLINE.match(nxt) and not BULLET.match(line):
            heading = line.strip()
        if heading is not None:
            flush()
            entry = None
            kind = section_type(heading)
            continue
        if rst and RST_UNDERLINE.match(line):
            continue
        b = BULLET.match(line)
        if b and (entry is None or len(b.group(1)) <= indent):
            flush()
            entry, indent = [b.group(2)], len(b.group(1))
        elif b and entry is not None and len(entry) == 1 and REF_ONLY.match(
                re.sub(r"[`\[\]()*:]", "", entry[0]).strip() or "0"):
            # babel: a package name, then its entries one level down.
            entry, indent = [b.group(2)], len(b.group(1))
        elif b:
            flush()
            entry, indent = [b.group(2)], len(b.group(1))
        elif line.strip() and entry is not None and line.startswith(" "):
            entry.append(line.strip())
        else:
            flush()
            entry = None
    flush()
    return out


def gather_changelogs(mirrors, changelogs, labelled, seen, cap=PER_REPO_TYPE, kinds=None):
    """Labelled entries of the changelog files of each repository (paths are fnmatch patterns)."""
    import fnmatch

    corpus = []
    for repo, commit, patterns in changelogs:
        git = mirror(mirrors, repo)
        files = subprocess.run(["git", "-C", git, "ls-tree", "-r", "--name-only", commit],
                               check=True, capture_output=True, text=True).stdout.split("\n")
        paths = sorted(f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns.split(",")))
        per_type = collections.Counter()
        dropped = collections.Counter()
        for path in paths:
            text = subprocess.run(["git", "-C", git, "show", f"{commit}:{path}"], check=True,
                                  capture_output=True).stdout.decode("utf-8", "replace")
            for kind, entry in changelog_entries(text, path.endswith(".rst")):
                if kinds and kind not in kinds:
                    continue
                t = changelog_text(entry)
                n = len(words(clean(t)))
                if n < MIN_WORDS or n > MAX_WORDS:
                    dropped["length"] += 1
                    continue
                if VERSION_BUMP.match(t):
                    dropped["bump"] += 1
                    continue
                key = " ".join(words(PR.sub(" ", t)))
                if not key or t.strip().lower() in labelled or key in seen:
                    dropped["seen"] += 1
                    continue
                seen.add(key)
                if per_type[kind] >= cap:
                    continue
                per_type[kind] += 1
                corpus.append((kind, repo, t))
        print(f"{repo} (changelog, {len(paths)} files)\t{sum(per_type.values())}\t" +
              " ".join(f"{t}={per_type[t]}" for t in TYPES) + f"\tdropped {dict(dropped)}", file=sys.stderr)
    return corpus


def mirror(mirrors, repo):
    """The bare clone of `repo` under `mirrors` (`owner+name/repo`, as fetched)."""
    return os.path.join(mirrors, repo.replace("/", "+"), "repo")


def commit_log(mirrors, repo, commit):
    """Every commit reachable from `commit`, merges too, as (parents, subject, body), the text as
    git wrote it (a carriage return kept: `gather` reads it as a line break, the word vectors as
    part of a line, as each did when it ran git itself)."""
    log = subprocess.run(
        ["git", "-C", mirror(mirrors, repo), "log", "-z", "--format=%P%x00%s%x00%b", commit],
        check=True,
        capture_output=True,
    ).stdout.decode("utf-8")
    # NUL cannot be in a commit message (a body can hold \x01: osu!'s merges list conflicts so).
    fields = log.split("\x00")
    return [tuple(fields[i : i + 3]) for i in range(0, len(fields) - 2, 3)]


def held_out(text):
    return hashlib.sha1(text.encode()).digest()[0] % 10 == 0


def gather(logs, labelled):
    """The labelled corpus of `logs` (repository -> `commit_log`), and the texts seen."""
    corpus = []
    seen = set(labelled)
    for repo, log in logs.items():
        per_type = collections.Counter()
        # Every commit, merges too: a merged pull request's title is labelled by its branch.
        for parents, subject, body in log:
            subject, body = (t.replace("\r\n", "\n").replace("\r", "\n") for t in (subject, body))
            if len(parents.split()) > 1:
                got = label_merge(repo, subject, body)
                subject = body.strip().split("\n")[0].strip()
            else:
                got = label(subject)
            if not got:
                continue
            kind, rest = got
            key = " ".join(words(PR.sub(" ", rest)))
            if not key or subject.strip().lower() in seen or rest.strip().lower() in seen or key in seen:
                continue
            seen.add(key)
            if per_type[kind] >= PER_REPO_TYPE:
                continue
            per_type[kind] += 1
            corpus.append((kind, repo, rest))
        print(f"{repo}\t{sum(per_type.values())}\t" + " ".join(f"{t}={per_type[t]}" for t in TYPES), file=sys.stderr)
    return corpus, seen


def train(examples, keep, epochs=10, l2=1e-6, rate=0.5, seed=1, power=0.5):
    """Multinomial logistic regression by AdaGrad SGD on the `keep` most frequent features (the
    table holds exactly these). Each class is weighted by the inverse of its frequency to the
    `power` (0.5: the square root), so that a type rare in commits (performance) is not drowned by
    the common ones, nor, as with the whole inverse (1), guessed for every text it hardly fits."""
    counts = collections.Counter(f for _, fs in examples for f in fs)
    # Ties broken by the feature's text, so that the table does not depend on hash order.
    vocab = set(sorted(counts, key=lambda f: (-counts[f], f))[:keep])
    k = len(TYPES)
    freq = collections.Counter(y for y, _ in examples)
    cw = {y: (len(examples) / (k * freq[y])) ** power for y in freq}
    w = collections.defaultdict(lambda: [0.0] * k)
    g2 = collections.defaultdict(lambda: [1e-8] * k)
    bias, gb = [0.0] * k, [1e-8] * k
    rnd = random.Random(seed)
    data = [(TYPES.index(y), [f for f in fs if f in vocab]) for y, fs in examples]
    for _ in range(epochs):
        rnd.shuffle(data)
        for y, fs in data:
            z = bias[:]
            for f in fs:
                wf = w[f]
                for c in range(k):
                    z[c] += wf[c]
            m = max(z)
            e = [math.exp(v - m) for v in z]
            s = sum(e)
            weight = cw[TYPES[y]]
            grad = [(e[c] / s - (1.0 if c == y else 0.0)) * weight for c in range(k)]
            for c in range(k):
                gb[c] += grad[c] ** 2
                bias[c] -= rate * grad[c] / math.sqrt(gb[c])
            for f in fs:
                wf, gf = w[f], g2[f]
                for c in range(k):
                    gc = grad[c] + l2 * wf[c]
                    gf[c] += gc * gc
                    wf[c] -= rate * gc / math.sqrt(gf[c])
    return dict(w), bias


def predict(w, bias, fs):
    z = bias[:]
    for f in fs:
        if f in w:
            for c, v in enumerate(w[f]):
                z[c] += v
    return z


def quantize(w, bias, scale):
    """Weights as integers of 1/scale; features whose weights all round to 0 are dropped."""
    q = {f: [round(v * scale) for v in w[f]] for f in w}
    q = {f: v for f, v in q.items() if any(v)}
    return q, [round(v * scale) for v in bias]


def accuracy(w, bias, rows):
    right = collections.Counter()
    total = collections.Counter()
    confusion = collections.Counter()
    for y, fs in rows:
        z = predict(w, bias, fs)
        got = TYPES[max(range(len(TYPES)), key=lambda c: z[c])]
        total[y] += 1
        right[y] += got == y
        confusion[(y, got)] += 1
    return right, total, confusion


# Word vectors (round 8): the table knows only the corpus's 4,000 most frequent words and pairs, and
# issue titles name symptoms and wishes in words commits seldom use ("freezes", "killed"). Vectors
# learned from the same repositories' whole commit messages (subjects and bodies, labelled or not)
# place each word near the words it is used like; a word the table lacks gets the mean of its
# nearest known words' rows, weighted by their similarity.
VECTOR_SKIP = re.compile(r"^\s*(signed-off-by|co-authored-by|reviewed-by|change-id|git-svn-id|cc:|see merge request)", re.I)
VECTOR_TOKEN = re.compile(r"[a-z][a-z']*[a-z]|[a-z]")


def commit_lines(logs):
    """Every line of the commit messages of `logs` (repository -> `commit_log`), as lowercase
    words (two or more a line)."""
    out = []
    for log in logs.values():
        for _, subject, body in log:
            for line in [subject] + body.split("\n"):
                if VECTOR_SKIP.match(line) or "http" in line:
                    continue
                tokens = VECTOR_TOKEN.findall(line.lower())
                if len(tokens) >= 2:
                    out.append(tokens)
    return out


def word_vectors(lines, dims=100, window=4, min_count=5, contexts=10000):
    """100-dimension vectors: the positive pointwise mutual information of each word with the
    10,000 most frequent words within 4 places on its line (nearer ones weigh more), reduced by a
    truncated SVD (deterministic start), rows normalized."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    counts = collections.Counter(t for line in lines for t in line)
    vocab = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    wid = {w: i for i, w in enumerate(vocab)}
    cid = {w: i for i, w in enumerate(vocab[:contexts])}
    ids = np.array([wid.get(t, -1) for line in lines for t in line], dtype=np.int64)
    cids = np.array([cid.get(t, -1) for line in lines for t in line], dtype=np.int64)
    lid = np.repeat(np.arange(len(lines)), [len(line) for line in lines])
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        for a, b, same in [(ids[:-d], cids[d:], lid[:-d] == lid[d:]), (ids[d:], cids[:-d], lid[:-d] == lid[d:])]:
            m = same & (a >= 0) & (b >= 0)
            rows.append(a[m])
            cols.append(b[m])
            vals.append(np.full(int(m.sum()), 1.0 / d))
    pairs = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(vocab), len(cid))).tocsr()  # sums repeated pairs
    row_sums = np.asarray(pairs.sum(1)).ravel()
    col_p = np.asarray(pairs.sum(0)).ravel() ** 0.75
    m = pairs.tocoo()
    col_p /= col_p.sum()
    pmi = np.log(m.data / (row_sums[m.row] * col_p[m.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (m.row[keep], m.col[keep])), shape=m.shape)
    u, s, _ = svds(ppmi, k=dims, v0=np.ones(min(ppmi.shape)) / math.sqrt(min(ppmi.shape)))
    vectors = u * np.sqrt(s)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    return vocab, counts, vectors


def rows_by_vectors(q, vocab, counts, vectors, neighbours=5, least=0.6, min_count=5):
    """Rows for words the table lacks: the similarity-weighted mean of the rows of their (at most
    5) nearest known words at cosine similarity 0.6 or more, rounded; words of 3 letters or more
    seen 5 times or more."""
    import numpy as np

    wid = {w: i for i, w in enumerate(vocab)}
    known = sorted(f for f in q if " " not in f and f in wid and len(f) >= 2)
    known_vectors = vectors[[wid[f] for f in known]]
    known_rows = np.array([q[f] for f in known], dtype=np.float64)
    out = {}
    for i, w in enumerate(vocab):
        if w in q or counts[w] < min_count or len(w) < 3 or "'" in w:
            continue
        sim = known_vectors @ vectors[i]
        top = np.argsort(-sim, kind="stable")[:neighbours]
        top = top[sim[top] >= least]
        if len(top) == 0:
            continue
        row = np.round((sim[top][:, None] * known_rows[top]).sum(0) / sim[top].sum()).astype(int)
        if row.any():
            out[w] = [int(v) for v in row]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--sources", default="benches/types/sources.tsv")
    ap.add_argument("--labelled", nargs="+", default=["tests/data/task-types.tsv", "tests/data/task-types-blind.tsv",
                             "tests/data/task-types-blind2.tsv", "tests/data/task-types-blind3.tsv"],
                    help="hand-labelled sets: their texts are dropped from the corpus")
    ap.add_argument("--changelogs", default="",
                    help="also read the changelogs this file lists (benches/types/changelogs.tsv: round 5's "
                         "experiment, not in the shipped table); none by default")
    ap.add_argument("--changelog-cap", type=int, default=PER_REPO_TYPE,
                    help="at most this many changelog entries of one type from one repository")
    ap.add_argument("--changelog-types", default="", help="comma-separated types read from changelogs (all if empty)")
    ap.add_argument("--seed", type=int, default=1,
                    help="the training shuffle's seed; compare two variants over several seeds each, since "
                         "the seed alone moves the hand-labelled sets by several texts (docs/accuracy.md, round 6)")
    ap.add_argument("--no-vectors", dest="vectors", action="store_false",
                    help="skip round 8's rows for words the table lacks (the step that needs numpy and scipy)")
    ap.add_argument("--out", default="src/prompt/types_model.tsv")
    ap.add_argument("--corpus", help="also write the corpus (type, repository, subject) here")
    ap.add_argument("--held-out", help="also write the held-out tenth of the corpus here (for TYPES_CORPUS)")
    ap.add_argument("--pin", action="store_true", help="rewrite sources.tsv with each mirror's HEAD")
    ap.add_argument("--keep", type=int, default=4000, help="features kept in the table")
    ap.add_argument("--power", type=float, default=0.5,
                    help="each type is weighted by the inverse of its frequency to this power")
    ap.add_argument("--scale", type=float, default=10.0, help="table weights are integers of 1/scale")
    args = ap.parse_args()

    lines = [l.rstrip("\n") for l in open(args.sources) if l.strip() and not l.startswith("#")]
    sources = [tuple(l.split("\t")[:2]) for l in lines]
    if args.pin:
        header = [l for l in open(args.sources) if l.startswith("#")]
        pinned = []
        for repo, _ in sources:
            head = subprocess.run(["git", "-C", mirror(args.mirrors, repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
            pinned.append((repo, head.stdout.strip()))
        with open(args.sources, "w") as f:
            f.writelines(header)
            for repo, commit in pinned:
                f.write(f"{repo}\t{commit}\n")
        sources = pinned

    labelled = set()
    for path in args.labelled:
        for l in open(path):
            if l.startswith("#") or not l.strip():
                continue
            text = l.rstrip("\n").split("\t", 2)[2]
            labelled.add(text.strip().lower())
            got = label(text)
            labelled.add(" ".join(words(PR.sub(" ", got[1] if got else text))))

    # Each log is read once: it gives the labelled corpus and the word vectors' text.
    logs = {repo: commit_log(args.mirrors, repo, commit) for repo, commit in sources}
    corpus, seen = gather(logs, labelled)
    if args.changelogs:
        rows = [l.rstrip("\n").split("\t") for l in open(args.changelogs) if l.strip() and not l.startswith("#")]
        corpus += gather_changelogs(args.mirrors, [tuple(r[:3]) for r in rows], labelled, seen,
                                    args.changelog_cap, set(args.changelog_types.split(",")) - {""})
    if args.corpus:
        with open(args.corpus, "w") as f:
            for kind, repo, text in corpus:
                f.write(f"{kind}\t{repo}\t{text}\n")
    if args.held_out:
        with open(args.held_out, "w") as f:
            for kind, repo, text in corpus:
                if held_out(text):
                    f.write(f"{kind}\t{repo}\t{text}\n")
    train_rows = [(y, features(t)) for y, _, t in corpus if not held_out(t)]
    test_rows = [(y, features(t)) for y, _, t in corpus if held_out(t)]
    print(f"corpus: {len(corpus)} subjects from {len(sources)} repositories; "
          f"{len(train_rows)} to train, {len(test_rows)} held out", file=sys.stderr)
    print("per type: " + ", ".join(f"{t} {sum(1 for y, _, _ in corpus if y == t)}" for t in TYPES), file=sys.stderr)

    w, bias = train(train_rows, args.keep, power=args.power, seed=args.seed)
    q, qb = quantize(w, bias, args.scale)
    if args.vectors:
        vocab, counts, vectors = word_vectors(commit_lines(logs))
        extra = rows_by_vectors(q, vocab, counts, vectors)
        print(f"word vectors: {len(vocab)} words; {len(extra)} rows added for words the table lacks",
              file=sys.stderr)
        q.update(extra)
    qw = {f: [v / args.scale for v in vs] for f, vs in q.items()}
    qbias = [v / args.scale for v in qb]
    for name, (ww, bb) in {"full": (w, bias), "table": (qw, qbias)}.items():
        right, total, confusion = accuracy(ww, bb, test_rows)
        n = sum(total.values())
        print(f"held-out corpus, {name} model ({len(ww)} features): {sum(right.values())}/{n} = "
              f"{sum(right.values()) / n:.3f}", file=sys.stderr)
        print("    " + ", ".join(f"{t} {right[t]}/{total[t]}" for t in TYPES), file=sys.stderr)
    print("confusion (rows: label, columns: table model):", file=sys.stderr)
    print("| label \\ model | " + " | ".join(TYPES) + " |", file=sys.stderr)
    for t in TYPES:
        print(f"| {t} | " + " | ".join(str(confusion[(t, g)]) for g in TYPES) + " |", file=sys.stderr)

    with open(args.out, "w") as f:
        f.write("# Task-type weights learned from labelled commit subjects and pull-request titles: written by\n")
        f.write("# `python3 benches/types/gather.py` from the repositories in benches/types/sources.tsv.\n")
        if args.vectors:
            f.write("# Rows of words the corpus's 4,000 features lack come from word vectors of the same\n")
            f.write("# repositories' commit messages: the weighted mean of their nearest known words' rows.\n")
        f.write(f"# Columns: feature, then one integer weight (of 1/{args.scale:g}) per type in this order:\n")
        f.write("# " + " ".join(TYPES) + "\n")
        # Upper case: no feature is (words are lowercased), so `scale` and `bias` stay features.
        f.write(f"SCALE\t{args.scale:g}\n")
        f.write("BIAS\t" + " ".join(map(str, qb)) + "\n")
        for feat in sorted(q):
            f.write(f"{feat}\t" + " ".join(map(str, q[feat])) + "\n")
    print(f"wrote {args.out}: {len(q)} features, {os.path.getsize(args.out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
