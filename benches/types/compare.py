#!/usr/bin/env python3
"""Compare task-type tables under the combination classify.rs used before round 9 (the rules'
best type, the model where they are silent or nearly tied). Since round 9 a fitted combination
decides (benches/types/combine.py, whose --cross compares against this one); a new model table is
judged by refitting the combination on it and running combine.py --cross.

Compare task-type tables on the hand-labelled sets and a held-out corpus without rebuilding the
binary: what the rules decide does not depend on the table, so it is dumped once, and the model is
applied in Python (as classify.rs does: the rules where they decide, else the model's type at
probability >= 0.3, else `other`). Round 5 chose with it; its figures match the Rust test's to
within 2 texts a set (f32 sums and Python's hash order break near-ties differently; run with
PYTHONHASHSEED=0 for repeatable counts).

    # each FILE: lines type<TAB>source<TAB>text, no comments (the sets' lines, or gather.py --held-out)
    TYPES_DUMP=FILE cargo test --features test-fakes --test types dump_rule_scores -- --ignored
    PYTHONHASHSEED=0 python3 benches/types/compare.py --dumps DIR TABLE [TABLE ...]

DIR holds set.tsv, set-blind.tsv, set-blind2.tsv, set-blind3.tsv and heldout.tsv with their
`.scores` beside them. Prints each part's accuracy per table (and how many of its rule-silent texts
the model gets right), then four types per issue-title and commit part.
"""

import argparse
import collections
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gather  # noqa: E402

TYPES = gather.TYPES


def load(path):
    scale, bias, w = 1.0, None, {}
    for line in open(path):
        if line.startswith("#"):
            continue
        f, v = line.rstrip("\n").split("\t")
        v = [float(x) for x in v.split()]
        if f == "SCALE":
            scale = v[0]
        elif f == "BIAS":
            bias = v
        else:
            w[f] = v
    return [b / scale for b in bias], {f: [x / scale for x in v] for f, v in w.items()}


# classify.rs's near tie: rule scores within NEAR_TIE of the best, no prefix naming the type.
NEAR_TIE, TIE_MIN_PROBABILITY = 3, 0.5
PREFIX_TYPE = re.compile(r"^\s*([A-Za-z][\w/-]*)(?:\(([^)]*)\))?!?:\s")


def probabilities(table, text):
    bias, w = table
    z = bias[:]
    for f in gather.features(text):
        if f in w:
            for c, v in enumerate(w[f]):
                z[c] += v
    m = max(z)
    e = [math.exp(x - m) for x in z]
    return [x / sum(e) for x in e]


def names_type(text):
    """Roughly classify.rs's prefix_type: a prefix whose head or scope is a type word."""
    m = PREFIX_TYPE.match(text)
    return bool(m) and any(gather.label(f"{w}: x") or w.lower() in gather.SCOPE
                           for w in [m.group(1)] + re.split(r"[,/]", m.group(2) or ""))


def decide(table, text, rules, scores):
    if rules == "other":
        return rules
    if rules != "-":
        top = max(scores)
        near = [c for c, s in enumerate(scores) if s > 0 and s + NEAR_TIE >= top]
        if len(near) > 1 and not names_type(text):
            p = probabilities(table, text)
            c = max(near, key=lambda c: p[c])
            # Never bug-fix over the rules' type (classify.rs's break_tie).
            if p[c] >= TIE_MIN_PROBABILITY and (TYPES[c] != "bug-fix" or rules == "bug-fix"):
                return TYPES[c]
        return rules
    words = gather.words(gather.clean(text))
    if not any(len(x) >= 2 and x in table[1] for x in words):
        return "other"
    p = probabilities(table, text)
    i = max(range(len(TYPES)), key=lambda c: p[c])
    return TYPES[i] if p[i] >= 0.3 else "other"


def rows(dumps, name):
    texts = [line.rstrip("\n").split("\t", 2) for line in open(os.path.join(dumps, name))]
    rules = [line.split() for line in open(os.path.join(dumps, name + ".scores"))]
    return [(t[0], t[1], t[2], r[0], [int(x) for x in r[1:8]]) for t, r in zip(texts, rules)]


def parts(dumps):
    out = {}
    labelled = rows(dumps, "set.tsv")
    issues = [r for r in labelled if "#" in r[1]]
    out["labelled, whole"] = labelled
    out["labelled, commit subjects"] = [r for r in labelled if "#" not in r[1]]
    out["labelled, issue titles"] = issues
    out["labelled, issue titles held out"] = [r for i, r in enumerate(issues) if (i + 1) % 3 == 0]
    for s in ["blind", "blind2", "blind3"]:
        got = rows(dumps, f"set-{s}.tsv")
        out[s + ", whole"] = got
        out[s + ", commit subjects"] = [r for r in got if "@" in r[1]]
        out[s + ", issue titles"] = [r for r in got if "#" in r[1]]
    out["corpus, held out"] = rows(dumps, "heldout.tsv")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dumps", required=True)
    ap.add_argument("tables", nargs="+")
    args = ap.parse_args()
    sets = parts(args.dumps)
    tables = [load(t) for t in args.tables]
    results = collections.defaultdict(list)
    for name, got in sets.items():
        for table in tables:
            right, total = collections.Counter(), collections.Counter()
            silent = [0, 0]
            for want, _, text, rules, scores in got:
                ok = decide(table, text, rules, scores) == want
                right[want] += ok
                total[want] += 1
                if rules == "-":
                    silent[0] += ok
                    silent[1] += 1
            results[name].append((right, total, silent))
        cells = [f"{sum(r.values())}/{sum(t.values())} {sum(r.values()) / max(1, sum(t.values())):.3f} "
                 f"(silent {s[0]}/{s[1]})" for r, t, s in results[name]]
        print(f"{name:34s} " + " | ".join(cells))
    for name in [n for n in sets if n.endswith("issue titles") or n.endswith("commit subjects")]:
        for t in ["performance", "refactor", "bug-fix", "feature"]:
            print(f"{name:34s} {t:12s} " + " | ".join(f"{r[t]}/{n[t]}" for r, n, _ in results[name]))


if __name__ == "__main__":
    main()
