#!/usr/bin/python3
"""make_folds_golden: scikit-learn StratifiedKFold(shuffle=False) fold ids for several label vectors.

Writes folds_golden.txt: per case a line "case N K", a line of labels (one char each), a line of fold
ids (one base-36 char each). tests/test_folds.c checks data/folds.c against it.
Run: /usr/bin/python3 tests/ref/make_folds_golden.py   (scikit-learn 1.2.1 from Debian)
"""
import os

import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def labels(n, ratio, classes, seed):
    rng = np.random.default_rng(seed)
    if classes == 2:
        y = (rng.random(n) < ratio).astype(int)
    else:
        y = rng.integers(0, classes, n)
    return y


def main():
    cases = []
    seed = 1
    for n in (10, 23, 57, 100, 333, 1000, 2017, 5000):
        ratios = (0.05, 0.1, 0.222, 0.35, 0.5) if n < 1000 else (0.05, 0.222, 0.5)
        for ratio in ratios:
            for k in (5,) if n < 300 or n > 1000 else (5, 3):
                cases.append((n, ratio, 2, k, seed))
                seed += 1
    cases += [(40, 0, 3, 4, 901), (1000, 0, 4, 10, 902), (12, 0.5, 2, 2, 903), (300, 0.3, 2, 7, 904)]
    out = ["# scikit-learn %s StratifiedKFold(n_splits=K, shuffle=False) test-fold id per sample" % sklearn.__version__]
    written = 0
    for n, ratio, classes, k, seed in cases:
        y = labels(n, ratio, classes, seed)
        if np.bincount(y).max() < k:
            continue
        fold = np.full(n, -1)
        for f, (_, test) in enumerate(StratifiedKFold(n_splits=k, shuffle=False).split(np.zeros(n), y)):
            fold[test] = f
        assert (fold >= 0).all()
        out.append("case %d %d" % (n, k))
        out.append("".join(str(v) for v in y))
        out.append("".join(DIGITS[v] for v in fold))
        written += 1
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "folds_golden.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %d cases to %s" % (written, path))


if __name__ == "__main__":
    main()
