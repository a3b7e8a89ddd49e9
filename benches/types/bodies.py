#!/usr/bin/env python3
"""The fitted sets' commit subjects with their commit's body, read from the fetched repositories
(docs/accuracy.md, round 15): the data a fit that weighs a body against its title would learn
from, since every fitted text is a title and prompts have bodies.

    python3 benches/types/bodies.py --mirrors /work/.mirror --out DIR/commit-bodies.tsv
    TYPES_BODIES=DIR/commit-bodies.tsv cargo test --features test-fakes --test types \
        accuracy_on_commits_with_a_body -- --ignored --nocapture

It writes tests/data/task-types-bodies.tsv's four columns (the type, the commit, the subject, the
body), the body as that set has it: whitespace as single spaces, cut at about 600 characters at a
sentence end where there is one. Commits without a body, and repositories not fetched, are counted
and left out. It reads FITTED only: no blind set kept unseen.
"""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import combine as C  # noqa: E402
import gather  # noqa: E402

CUT = 600


def flatten(body):
    """A commit body as the labelled bodies are written: one line, cut near CUT at a sentence end."""
    text = re.sub(r"\s+", " ", body).strip()
    if len(text) <= CUT:
        return text
    end = max(text.rfind(". ", 0, CUT), text.rfind("! ", 0, CUT), text.rfind("? ", 0, CUT))
    return text[:end + 1] if end > CUT // 2 else text[:CUT]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--data", default="tests/data", help="the folder of the hand-labelled sets")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not os.path.isdir(args.mirrors):
        sys.exit(f"{args.mirrors}: no such folder of fetched repositories")
    # Fetched repositories by name, whatever the case a labelled source spells it in.
    fetched = {d.lower().replace("+", "/"): d.replace("+", "/") for d in os.listdir(args.mirrors)}
    written = unfetched = bare = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for name in C.FITTED:
            for cols in C.labelled(os.path.join(args.data, name)):
                if "@" not in cols[1]:
                    continue
                repo, commit = cols[1].split("@", 1)
                if repo.lower() not in fetched:
                    unfetched += 1
                    continue
                git_dir = gather.mirror(args.mirrors, fetched[repo.lower()])
                shown = subprocess.run(["git", "--git-dir", git_dir, "log", "-1", "--format=%b", commit],
                                       capture_output=True, text=True, errors="replace")
                if shown.returncode != 0:
                    sys.exit(f"{name}: {cols[1]} is not in {git_dir}: fetch the repository again")
                body = flatten(shown.stdout)
                if not body:
                    bare += 1
                    continue
                out.write(f"{cols[0]}\t{cols[1]}\t{cols[2]}\t{body}\n")
                written += 1
    print(f"wrote {args.out}: {written} commits with a body; {bare} without one, {unfetched} in repositories "
          "not fetched", file=sys.stderr)


if __name__ == "__main__":
    main()
