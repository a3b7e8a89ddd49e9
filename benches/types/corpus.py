#!/usr/bin/env python3
"""Unlabelled commit subjects for a student of the fine-tuned model (docs/accuracy.md, rounds 13
and 14): up to 1,500 non-merge subjects of each repository in corpus-sources.tsv, read from the
pinned commit, in an order fixed by a seed, with every text of a hand-labelled set dropped.

    python3 benches/types/corpus.py --mirrors /work/.mirror --out DIR/corpus.tsv

It writes combine.py's three columns (`other`, the commit as owner/name@short-hash, the subject),
ready to be dumped like a labelled set and labelled by `finetune.py --label`. It refuses a source
repository that an unseen blind set (combine.py's UNSEEN) sampled: its commits would teach the
student about text it is to be measured on.
"""

import argparse
import glob
import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import combine as C  # noqa: E402
import gather  # noqa: E402

PER_REPO = 1500
SEED = 12


def norm(text):
    """How a subject is compared with the labelled texts: case and numbers aside."""
    return re.sub(r"\d+", "0", text.strip().lower())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--sources", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-sources.tsv"))
    ap.add_argument("--data", default="tests/data", help="the folder of the hand-labelled sets")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    labelled, unseen = set(), set()
    for path in sorted(glob.glob(os.path.join(args.data, "task-types*.tsv"))):
        for cols in C.labelled(path):
            labelled.add(norm(cols[2]))
            if os.path.basename(path) in C.UNSEEN:
                unseen.add(re.split(r"[@#]", cols[1])[0].lower())

    sources = [l.rstrip("\n").split("\t")[:2] for l in open(args.sources, encoding="utf-8") if l.strip() and not l.startswith("#")]
    refused = [repo for repo, _ in sources if repo.lower() in unseen]
    if refused:
        sys.exit(f"{args.sources}: an unseen blind set sampled {', '.join(refused)}: drop them")
    total = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for repo, commit in sources:
            log = subprocess.run(["git", "-C", gather.mirror(args.mirrors, repo), "log", "--no-merges", "--format=%h%x09%s", commit],
                                 check=True, capture_output=True, text=True, errors="replace").stdout
            lines = [l for l in log.splitlines() if "\t" in l]
            random.Random(SEED).shuffle(lines)
            kept = 0
            for line in lines:
                short, subject = line.split("\t", 1)
                subject = subject.replace("\t", " ").strip()
                if not subject or norm(subject) in labelled:
                    continue
                out.write(f"other\t{repo}@{short}\t{subject}\n")
                kept += 1
                if kept == PER_REPO:
                    break
            total += kept
    print(f"wrote {args.out}: {total} subjects of {len(sources)} repositories", file=sys.stderr)


if __name__ == "__main__":
    main()
