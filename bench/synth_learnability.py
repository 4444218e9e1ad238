#!/usr/bin/python3
"""Is `pneumoseg synth` data learnable but not trivial? A tiny PyTorch U-Net trained on CPU.

Usage: synth_learnability.py PREPARED_DIR [--channels 8] [--epochs 12] [--val 150]
where PREPARED_DIR is `pneumoseg prepare --size 128` output (train/, mask/). Trains on all positives
plus as many random negatives per epoch (BCE*3 + soft Dice), validates on the last --val images and
prints the SIIM-style mean Dice (empty/empty = 1) with positives and negatives apart.
Needs Debian's python3-torch, python3-numpy, python3-pil.
"""
import argparse
import glob
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("--channels", type=int, default=8)
ap.add_argument("--epochs", type=int, default=12)
ap.add_argument("--val", type=int, default=150)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
ids = sorted(os.path.basename(f)[:-4] for f in glob.glob(os.path.join(a.data, "train", "*.png")))
load = lambda sub: np.stack([np.array(Image.open(os.path.join(a.data, sub, i + ".png"))) for i in ids]).astype(np.float32) / 255
X, Y = torch.tensor(load("train"))[:, None], torch.tensor(load("mask"))[:, None]
ntr = len(ids) - a.val


def block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())


class UNet(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.e1, s.e2, s.e3, s.e4 = block(1, c), block(c, 2 * c), block(2 * c, 4 * c), block(4 * c, 8 * c)
        s.d3, s.d2, s.d1, s.o = block(12 * c, 4 * c), block(6 * c, 2 * c), block(3 * c, c), nn.Conv2d(c, 1, 1)

    def forward(s, x):
        up = lambda t: F.interpolate(t, scale_factor=2)
        a1 = s.e1(x)
        a2 = s.e2(F.max_pool2d(a1, 2))
        a3 = s.e3(F.max_pool2d(a2, 2))
        a4 = s.e4(F.max_pool2d(a3, 2))
        a3 = s.d3(torch.cat([up(a4), a3], 1))
        a2 = s.d2(torch.cat([up(a3), a2], 1))
        return s.o(s.d1(torch.cat([up(a2), a1], 1)))


m = UNet(a.channels)
opt = torch.optim.Adam(m.parameters(), 1e-3)
has = Y[:ntr].sum((1, 2, 3)) > 0
pos, neg = has.nonzero().flatten(), (~has).nonzero().flatten()
t0 = time.time()
for ep in range(a.epochs):
    m.train()
    idx = torch.cat([pos, neg[torch.randperm(len(neg))[:len(pos)]]])
    idx = idx[torch.randperm(len(idx))]
    for k in range(0, len(idx), 16):
        j = idx[k:k + 16]
        x, y = X[j], Y[j]
        if torch.rand(1) < 0.5:
            x, y = x.flip(3), y.flip(3)
        p = m(x)
        pr = torch.sigmoid(p)
        loss = F.binary_cross_entropy_with_logits(p, y) * 3 + 1 - (2 * (pr * y).sum() + 1) / (pr.sum() + y.sum() + 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if ep % 3 == 2 or ep == a.epochs - 1:
        m.eval()
        with torch.no_grad():
            P = torch.sigmoid(m(X[ntr:])) > 0.5
        T = Y[ntr:] > 0.5
        inter = (P & T).sum((1, 2, 3)).float()
        s = P.sum((1, 2, 3)).float() + T.sum((1, 2, 3)).float()
        dice = torch.where(s == 0, torch.ones_like(s), 2 * inter / s.clamp(min=1))
        tp = T.sum((1, 2, 3)) > 0
        print(f"epoch {ep + 1} loss {loss.item():.3f} val dice {dice.mean():.3f} (positives {dice[tp].mean():.3f}, "
              f"n={int(tp.sum())}; negatives {dice[~tp].mean():.3f}) {time.time() - t0:.0f}s", flush=True)
