#!/usr/bin/python3
"""make_sched_golden: PyTorch's per-epoch learning rates for pneumoseg's --sched choices.

For each case an Adam optimizer on one parameter is driven the way the trainer does it: the lr of epoch e
is read before the epoch, and after the epoch's validation ReduceLROnPlateau.step(score) (plateau
phases) or scheduler.step() (the others) is called. "plateau-cosine" is the winner's recipe in one run:
ReduceLROnPlateau for the first `start` epochs, then CosineAnnealingLR built on the same optimizer (its
initial lr is whatever the plateau phase left) and stepped per epoch.
Writes sched_golden.txt, one case per line:
  kind base_lr epochs start period eta_min factor patience min_lr threshold | scores... | lrs...
Run: /usr/bin/python3 tests/ref/make_sched_golden.py
"""
import os

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR, ReduceLROnPlateau


def run(kind, base, scores, start=0, period=8, eta_min=1e-7, factor=0.1, patience=2, min_lr=1e-7,
        threshold=1e-4, milestones=(3, 5, 6, 7, 8, 9, 10, 11, 13, 15), gamma=0.75):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=base)
    if kind in ("plateau", "plateau-cosine"):
        sch = ReduceLROnPlateau(opt, mode="max", factor=factor, patience=patience, threshold=threshold,
                                min_lr=min_lr)
    elif kind == "cosine":
        sch = CosineAnnealingLR(opt, T_max=period, eta_min=eta_min)
    else:
        sch = MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    lrs = []
    for e, s in enumerate(scores):
        if kind == "plateau-cosine" and e == start:
            sch = CosineAnnealingLR(opt, T_max=period, eta_min=eta_min)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if isinstance(sch, ReduceLROnPlateau):
            sch.step(s)
        else:
            sch.step()
    head = f"{kind} {base!r} {len(scores)} {start} {period} {eta_min!r} {factor!r} {patience} {min_lr!r} {threshold!r}"
    return head + " | " + " ".join(repr(float(s)) for s in scores) + " | " + " ".join(repr(float(x)) for x in lrs)


def scores_walk(rng, n, flat_from):
    """Rising scores that stall (ties and tiny gains below the threshold) from `flat_from` on."""
    s, out = 0.5, []
    for e in range(n):
        if e < flat_from:
            s += rng.uniform(0.005, 0.03)
        elif rng.uniform() < 0.25:
            s += rng.choice([0.0, 1e-6, 0.02])
        out.append(round(s, 6) if rng.uniform() < 0.8 else round(s - rng.uniform(0, 0.05), 6))
    return out


def main():
    rng = np.random.default_rng(11)
    lines = []
    lines.append(run("multistep", 1e-4, [0.5] * 18))
    lines.append(run("cosine", 1e-4, [0.5] * 30))
    lines.append(run("cosine", 1e-5, [0.5] * 20, period=3, eta_min=0.0))
    for i in range(6):
        n = int(rng.integers(12, 40))
        lines.append(run("plateau", 1e-4, scores_walk(rng, n, int(rng.integers(1, 8))),
                         threshold=[1e-4, 1e-7][i % 2], patience=[2, 0, 1][i % 3]))
    for i in range(8):
        n = int(rng.integers(14, 40))
        start = int(rng.integers(1, n - 2))
        lines.append(run("plateau-cosine", [1e-4, 5e-4][i % 2], scores_walk(rng, n, int(rng.integers(0, 6))),
                         start=start, threshold=[1e-4, 1e-7][i % 2], period=[8, 5][i % 2]))
    # a plateau phase that cuts to the floor before the cosine starts
    lines.append(run("plateau-cosine", 1e-4, [0.7] * 30, start=20))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sched_golden.txt")
    with open(out, "w") as f:
        f.write(f"# torch {torch.__version__} lr_scheduler; see the docstring of make_sched_golden.py\n")
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} cases")


if __name__ == "__main__":
    main()
