#!/usr/bin/env python3
"""Fit the learned combination of a task's type evidence (src/prompt/combine.rs) to the
hand-labelled sets, and write its table, src/prompt/types_combine.tsv.

The evidence is what combine.rs computes: per type the rules' score, whether it is their best, the
model's log-probability; whether the rules are silent; whether the model knows a word;
and the title's words. The Rust code dumps it, so training and use read the same numbers:

    mkdir -p DIR
    for n in $(python3 benches/types/combine.py --list); do
      grep -v '^#' "tests/data/$n" > "DIR/$n"
      TYPES_DUMP="DIR/$n" cargo test --features test-fakes --test types dump_combination_features -- --ignored
    done
    python3 benches/types/vectors.py --out VECTORS
    python3 benches/types/combine.py --dumps DIR --vectors VECTORS [--cross]

`--list` prints FITTED, the sets the shipped table is fitted to: every hand-labelled set of titles
but UNSEEN, the blind sets no classifier has run on (each the measure of a round to come), the
blind sets run since the last refit (the eleventh to the thirteenth), the second annotators'
labels and the tasks with bodies (`*-bodies.tsv`, four columns: a measure of how a body weighs).

The fit is a multinomial logistic regression (8 classes: the 7 types and `other`) with an L2
penalty, by L-BFGS from zero (deterministic: the same dumps give the same table). Texts whose type
is settled before the combination is asked (a prefix naming a type, talk or a question no rule
finds work in, no word the model knows) are left out of the fit. A word is a feature if at least `--min-count`
fitted texts have it, with value WORD_VALUE (combine.rs), so a word learned from a few titles
moves a decision less than the rules and the model do. With `--vectors` (round 11) the fit also
weighs the title's mean word vector (vectors.py: each word embedded alone by a sentence-embedding
model; over all the title's words, VECTOR_VALUE each) and stores, for each word of the vectors'
vocabulary, its vector times those weights: `v WORD` rows that combine.rs adds up over the title's
word count. Since round 12 it also weighs the vector of the title's first word (mostly its verb;
`--first`, FIRST_VALUE) and stores `f WORD` rows the same way.

`--taught NAME --teacher FILE` (round 14; measured in round 15, not shipped: it reads titles
better and tasks with a body worse) also fits on a corpus of unlabelled texts dumped in DIR
(corpus.py), each weighing `--taught-weight` of a labelled text, towards the probabilities a
fine-tuned model gave them: a student of that model in the table's own words and rows (the words
are still those of the labelled texts). `--taught-words-only` lets the taught texts fit only the
word and vector rows. Round 15's teacher's labels are committed (teacher.tsv.gz; a name ending in
.gz is read and written gzipped), because fine-tuning repeats on one machine, not across machines.
Round 15's student, with the eleventh and twelfth blind sets fitted on as well:

    python3 benches/types/corpus.py --out DIR/corpus.tsv   # then dump it like a set
    R15="$(python3 benches/types/combine.py --list) task-types-blind11.tsv task-types-blind12.tsv"
    python3 benches/types/finetune.py --dumps DIR --vectors VECTORS --sets $R15 \
        --label DIR/corpus.tsv --out benches/types/teacher.tsv.gz
    python3 benches/types/combine.py --dumps DIR --vectors VECTORS --sets $R15 \
        --taught corpus.tsv --teacher benches/types/teacher.tsv.gz --out TABLE

`--cross` (not with `--taught`: each set's teacher was fitted on it) also prints, for each set, how
the combination fitted to the other sets does on it (leave one set out), beside what the shipped
classifier got (the `.scores` dump of `dump_rule_scores`, if present, decides as classify.rs did
before round 9; see compare.py). Needs numpy and scipy.
"""

import argparse
import collections
import functools
import gzip
import io
import os
import sys

# One BLAS thread: sums in another order round a weight the other way now and then, and the table
# must come out the same byte for byte on any machine.
for _var in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
    os.environ[_var] = "1"
import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

TYPES = ["documentation", "test-coverage", "performance", "bug-fix", "refactor", "configuration", "feature"]
CLASSES = TYPES + ["other"]
DENSE_NAMES = ([f"SCORE {t}" for t in TYPES] + [f"BEST {t}" for t in TYPES] + [f"LOGP {t}" for t in TYPES]
               + ["RULES-SILENT", "KNOWN", "BIAS"])
WORD_VALUE = 0.3  # combine.rs's WORD_VALUE
VECTOR_VALUE = 2.0  # how much the mean word vector weighs against the L2 penalty (round 11)
FIRST_VALUE = 1.0  # how much the first word's vector weighs (round 12)
SCALE = 1000  # weights are stored as integers of 1/SCALE
# The `v` and `f` rows as integers of 1/VECTOR_SCALE: coarser, they change no decision on the fitted
# sets (round 12: none of 4,626 texts) and keep the table 137 KB smaller (723 KB against 860 KB).
VECTOR_SCALE = 100
# The parts every figure is given for (a commit's source is owner/name@hash, an issue's owner/name#N).
PARTS = [("whole", lambda r: True), ("commit subjects", lambda r: "@" in r["source"]),
         ("issue titles", lambda r: "#" in r["source"])]
# The blind sets no classifier has been fitted on or tuned with, nor run by: the measures of the
# rounds to come: the fourteenth, and the second set of tasks with a body (round 15, the measure of
# a fit that weighs bodies; the first is tuning data once such a fit is chosen on it). The eleventh
# and twelfth were each run once (rounds 12 and 13, on frozen tables) and are tuning data since, not
# fitted on by the shipped table (round 15's student, not shipped, was fitted on them); the
# thirteenth ran in round 15; the tenth, run in round 11, is fitted on from round 12.
UNSEEN = ["task-types-blind14.tsv", "task-types-bodies2.tsv"]
# The sets (in tests/data) the shipped table is fitted to: since round 12, every labelled set of
# titles up to the tenth blind set (round 9 fitted 11 of them; round 10's refit on 15 gained
# nothing without word vectors, docs/accuracy.md).
FITTED = ["task-types.tsv"] + [f"task-types-blind{n}.tsv" for n in ["", 2, 3, 4, 5, 6, 7, 8, 9, 10]] + [
    f"task-types-fit-{kind}.tsv" for kind in ["commits", "commits2", "commits3", "issues", "issues2", "issues3"]]


def labelled(path):
    """The columns of each text of a hand-labelled set as tests/data holds it (type, source, text,
    and a body where the set has one), its header left out."""
    for line in open(path, encoding="utf-8"):
        cols = line.rstrip("\n").split("\t")
        if not line.startswith("#") and len(cols) >= 3:
            yield cols


def read_set(dumps, name):
    """Rows (type, source, text, settled, dense, words) of one dumped set."""
    texts = [line.rstrip("\n").split("\t", 2) for line in open(os.path.join(dumps, name), encoding="utf-8")]
    feats = [line.rstrip("\n").split("\t") for line in open(os.path.join(dumps, name + ".features"), encoding="utf-8")]
    if len(texts) != len(feats):
        sys.exit(f"{name}: {len(texts)} texts but {len(feats)} feature lines: dump it again")
    rows = []
    for (want, source, text), feat in zip(texts, feats):
        if want not in CLASSES:
            sys.exit(f"{name}: unknown type {want!r}")
        if len(feat) != 4:
            sys.exit(f"{name}: a feature line without its first word: dump it again")
        settled, dense, words, first = feat
        rows.append(dict(want=want, source=source, text=text, settled=settled,
                         dense=[float(x) for x in dense.split()], words=words.split(), first=first))
    return rows


def vocabulary(rows, min_count):
    counts = collections.Counter(w for r in rows for w in set(r["words"]))
    return sorted(w for w, n in counts.items() if n >= min_count)


def matrix(rows, vocab):
    index = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((len(rows), len(DENSE_NAMES) + len(vocab)))
    for i, r in enumerate(rows):
        x[i, :len(DENSE_NAMES)] = r["dense"]
        for w in set(r["words"]):
            if w in index:
                x[i, len(DENSE_NAMES) + index[w]] = WORD_VALUE
    return x


def read_vectors(folder):
    """vectors.py's word vectors, centred on the vocabulary's mean: (words, a row per word)."""
    words = open(os.path.join(folder, "vectors.words"), encoding="utf-8").read().split()
    v = np.load(os.path.join(folder, "vectors.npy")).astype(np.float64)
    return words, v - v.mean(0)


def mean_vectors(rows, vectors):
    """Each text's mean word vector, over all its words (a word without a vector counts as zero,
    so that combine.rs can leave out the words whose rows round to nothing)."""
    words, v = vectors
    index = {w: i for i, w in enumerate(words)}
    x = np.zeros((len(rows), v.shape[1]))
    for i, r in enumerate(rows):
        known = [index[w] for w in r["words"] if w in index]
        if known:
            x[i] = VECTOR_VALUE * v[known].sum(0) / len(r["words"])
    return x


def first_vectors(rows, vectors, value):
    """Each text's first word's vector (zero for a word without one)."""
    words, v = vectors
    index = {w: i for i, w in enumerate(words)}
    x = np.zeros((len(rows), v.shape[1]))
    for i, r in enumerate(rows):
        if r["first"] in index:
            x[i] = value * v[index[r["first"]]]
    return x


def fit(rows, min_count, l2, vectors=None, first=FIRST_VALUE, taught=None, words_only=False):
    """taught: (texts, their teacher's probabilities, how much each weighs against a labelled
    text) fitted on beside the labelled texts; the words stay the labelled texts' own, so the
    table keeps its size. words_only: the taught texts fit only the word and vector rows, and the
    rules' and the model's weights (DENSE_NAMES) stay as the labelled texts alone fit them."""
    fixed = fit_weights(rows, min_count, l2, vectors, first)[1][:len(DENSE_NAMES)] if taught and words_only else None
    return stored(*fit_weights(rows, min_count, l2, vectors, first, taught, fixed), vectors, first)


def fit_weights(rows, min_count, l2, vectors, first, taught=None, fixed=None):
    """The words and the fitted weights, a row per feature (dense, words, vector dimensions); with
    fixed, the dense rows are those and only the others are fitted."""
    rows = [r for r in rows if r["settled"] == "-"]
    vocab = vocabulary(rows, min_count)
    y = np.zeros((len(rows), len(CLASSES)))
    y[np.arange(len(rows)), [CLASSES.index(r["want"]) for r in rows]] = 1
    weight = np.ones(len(rows))
    if taught:
        rows = rows + taught[0]
        y = np.vstack([y, taught[1]])
        weight = np.concatenate([weight, np.full(len(taught[0]), taught[2])])
    x = matrix(rows, vocab)
    if vectors is not None:
        x = np.hstack([x, mean_vectors(rows, vectors)])
        if first:
            x = np.hstack([x, first_vectors(rows, vectors, first)])
    k = x.shape[1]
    wy = weight[:, None] * y
    free = np.arange(k) if fixed is None else np.arange(len(DENSE_NAMES), k)
    base = np.zeros((k, len(CLASSES)))
    if fixed is not None:
        base[:len(DENSE_NAMES)] = fixed

    def loss(flat):
        w = base.copy()
        w[free] = flat.reshape(len(free), len(CLASSES))
        z = x @ w
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1, keepdims=True))
        p = np.exp(z - lse)
        grad = x.T @ (weight[:, None] * p - wy) + l2 * w
        return -(wy * (z - lse)).sum() + 0.5 * l2 * (w * w).sum(), grad[free].ravel()

    res = minimize(loss, np.zeros(len(free) * len(CLASSES)), jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    w = base.copy()
    w[free] = res.x.reshape(len(free), len(CLASSES))
    return vocab, w


def stored(vocab, w, vectors, first):
    """The fitted weights as the table stores them: dense and word rows rounded to 1/SCALE, and
    the vector weights folded into a row per word of the vectors' vocabulary."""
    rows_of_words, rows_of_firsts = {}, {}
    if vectors is not None:
        # A word's part of a text's score is its vector times the vectors' weights, over the
        # text's word count: one row of CLASSES a word, which is what the table stores; the
        # same for the first word, whole.
        n = len(DENSE_NAMES) + len(vocab)
        d = vectors[1].shape[1]
        blocks = [(rows_of_words, VECTOR_VALUE, w[n:n + d])] + ([(rows_of_firsts, first, w[n + d:])] if first else [])
        for store, value, weights in blocks:
            per_word = np.round(value * vectors[1] @ weights * VECTOR_SCALE).astype(int)
            for word, row in zip(vectors[0], per_word):
                if row.any():
                    store[word] = row / VECTOR_SCALE
        w = w[:n]
    # The weights as the table stores them, so that every figure is the shipped table's.
    return vocab, np.round(w * SCALE) / SCALE, rows_of_words, rows_of_firsts


def scores(model, r):
    """The combination's score of each class for a text, as combine.rs adds them up."""
    vocab, w, rows_of_words, rows_of_firsts = model
    z = matrix([r], vocab)[0] @ w
    for word in r["words"]:
        if word in rows_of_words:
            z = z + rows_of_words[word] / len(r["words"])
    if r["first"] in rows_of_firsts:
        z = z + rows_of_firsts[r["first"]]
    return z


def decide(model, r):
    if r["settled"] != "-":
        return r["settled"]
    return CLASSES[int(np.argmax(scores(model, r)))]


def write(model, path, sets, min_count, l2, first, taught=""):
    vocab, w, rows_of_words, rows_of_firsts = model
    q = np.round(w * SCALE).astype(int)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# The learned combination of a task's type evidence (src/prompt/combine.rs): a weight per\n"
                  "# class (the 7 types in PRECEDENCE order, then other) for each dense feature and each word\n"
                  "# (`w WORD`), as integers of 1/SCALE. Written by benches/types/combine.py from\n"
                  f"# {', '.join(sets)} (--min-count {min_count}, --l2 {l2}, --first {first}{taught}).\n")
        if rows_of_words:
            out.write("# `v WORD` rows: the word's vector (benches/types/vectors.py) times the fitted weights of a\n"
                      "# title's mean word vector; combine.rs adds them up over the title's word count.\n")
        if rows_of_firsts:
            out.write("# `f WORD` rows: the same for the vector of the title's first word.\n")
        out.write(f"SCALE\t{SCALE}\n")
        if rows_of_words:
            out.write(f"VECTOR-SCALE\t{VECTOR_SCALE}\n")
        names = DENSE_NAMES + [f"w {v}" for v in vocab]
        for name, row in zip(names, q):
            if row.any():
                out.write(f"{name}\t{' '.join(str(v) for v in row)}\n")
        for kind, rows in [("v", rows_of_words), ("f", rows_of_firsts)]:
            for word, row in sorted(rows.items()):
                out.write(f"{kind} {word}\t{' '.join(str(int(round(v * VECTOR_SCALE))) for v in row)}\n")


@functools.lru_cache(maxsize=None)
def model_table():
    """The model's table (read once), and compare.py, which decides as round 8 did."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import compare  # noqa: E402
    return compare, compare.load(os.path.join(here, "../../src/prompt/types_model.tsv"))


def shipped(dumps, name):
    """What classify.rs decided before round 9, from the `.scores` dump (None if absent)."""
    if not os.path.exists(os.path.join(dumps, name + ".scores")):
        return None
    compare, table = model_table()
    return [compare.decide(table, text, rules, scores) for _, _, text, rules, scores in compare.rows(dumps, name)]


def open_text(path, mode="r"):
    """A text file, gzipped if its name ends in .gz (as the committed teacher's labels are); written
    without a time stamp, so the same labels give the same bytes."""
    if not path.endswith(".gz"):
        return open(path, mode, encoding="utf-8")
    return io.TextIOWrapper(gzip.GzipFile(path, mode + "b", compresslevel=9, mtime=0), encoding="utf-8")


def read_taught(dumps, name, teacher):
    """A dumped corpus's unsettled texts and their teacher's probabilities (matched by source)."""
    probs = {}
    for n, line in enumerate(open_text(teacher), 1):
        try:
            source, numbers = line.rstrip("\n").split("\t")
            probs[source] = [float(p) for p in numbers.split()]
        except ValueError:
            sys.exit(f"{teacher}:{n}: not a source, a tab, and numbers: label it again")
    rows = [r for r in read_set(dumps, name) if r["settled"] == "-"]
    missing = [r["source"] for r in rows if r["source"] not in probs]
    if missing:
        sys.exit(f"{teacher}: no probabilities for {len(missing)} texts of {name} (the first: {missing[0]}): label it again")
    if any(len(probs[r["source"]]) != len(CLASSES) for r in rows):
        sys.exit(f"{teacher}: a line without a probability for each of {len(CLASSES)} classes")
    return rows, np.array([probs[r["source"]] for r in rows])


def cross(sets, data, dumps, min_count, l2, vectors, first):
    total = collections.Counter()
    for held in sets:
        model = fit([r for s in sets if s != held for r in data[s]], min_count, l2, vectors, first)
        before = shipped(dumps, held)
        line = []
        for part, keep in PARTS:
            idx = [i for i, r in enumerate(data[held]) if keep(r)]
            if not idx:
                continue
            got = sum(decide(model, data[held][i]) == data[held][i]["want"] for i in idx)
            was = "" if before is None else f"{sum(before[i] == data[held][i]['want'] for i in idx)} -> "
            line.append(f"{part} {was}{got}/{len(idx)} ({got / len(idx):.3f})")
            total[part, "got"] += got
            total[part, "n"] += len(idx)
            if before is not None:
                total[part, "was"] += sum(before[i] == data[held][i]["want"] for i in idx)
        print(f"{held:34s} " + "; ".join(line))
    for part, _ in PARTS:
        n = total[part, "n"]
        print(f"{'all, ' + part:34s} {total[part, 'was']} -> {total[part, 'got']}/{n} ({total[part, 'got'] / n:.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="print the sets the shipped table is fitted to, and stop")
    ap.add_argument("--dumps", help="folder of the sets' lines and their .features dumps")
    ap.add_argument("--sets", nargs="*", default=FITTED, help="set files in DUMPS (default: FITTED)")
    ap.add_argument("--out", default="src/prompt/types_combine.tsv")
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--cross", action="store_true", help="also print each set left out of the fit")
    ap.add_argument("--vectors", help="vectors.py's folder of word vectors (without it, no `v` rows)")
    ap.add_argument("--first", type=float, default=FIRST_VALUE,
                    help="the first word's vector's value (0: no `f` rows)")
    ap.add_argument("--taught", metavar="NAME", help="a corpus dumped in DUMPS (corpus.py) to fit on as --teacher labelled it")
    ap.add_argument("--teacher", metavar="FILE", help="finetune.py --label's probabilities for --taught's texts")
    ap.add_argument("--taught-weight", type=float, default=0.3, help="how much a taught text weighs against a labelled one")
    ap.add_argument("--taught-words-only", action="store_true",
                    help="the taught texts fit only the word and vector rows; the rules' and the model's weights stay the labelled texts' own")
    args = ap.parse_args()
    if args.list:
        print("\n".join(FITTED))
        return
    if not args.dumps:
        ap.error("--dumps is required")
    sets = sorted(args.sets)
    kept = sorted(set(UNSEEN) & set(sets))
    if kept:
        sys.exit(f"{', '.join(kept)}: a blind set kept to measure a round must not be fitted on")
    data = {s: read_set(args.dumps, s) for s in sets}
    vectors = read_vectors(args.vectors) if args.vectors else None
    if bool(args.taught) != bool(args.teacher):
        ap.error("--taught and --teacher go together")
    if args.taught_words_only and not args.taught:
        ap.error("--taught-words-only needs --taught")
    if args.taught and args.cross:
        ap.error("--cross with --taught would score each set left out with a teacher fitted on it")
    taught = (*read_taught(args.dumps, args.taught, args.teacher), args.taught_weight) if args.taught else None
    if args.cross:
        cross(sets, data, args.dumps, args.min_count, args.l2, vectors, args.first)
    model = fit([r for s in sets for r in data[s]], args.min_count, args.l2, vectors, args.first, taught,
                args.taught_words_only)
    write(model, args.out, sets, args.min_count, args.l2, args.first,
          f", --taught {args.taught} --teacher {os.path.basename(args.teacher)} --taught-weight {args.taught_weight}"
          + (" --taught-words-only" if args.taught_words_only else "") if taught else "")
    right = {s: sum(decide(model, r) == r["want"] for r in data[s]) for s in sets}
    print(f"wrote {args.out}: {len(model[0])} words; on the texts it was fitted to: " +
          ", ".join(f"{s} {right[s]}/{len(data[s])}" for s in sets), file=sys.stderr)


if __name__ == "__main__":
    main()
