"""train_torch: the side-by-side reference for `pneumoseg train`: smp.Unet('resnet34') trained in PyTorch on
the same prepared PNGs, folds, recipe (ComboLoss 3/1/4, Adam, MultiStepLR per epoch, positive-share sampler,
HorizontalFlip 0.5 + Rotate(10) 0.5, ImageNet normalisation), epochs, steps per epoch, batch and thread count,
starting from the same initial weights (`pneumoseg init --seed S`); validates with the same triplet grid and
prints the wall time and the held-out Kaggle score.
usage: python bench/train_torch.py --data P --folds folds.csv --fold 0 --init W.safetensors [options]
(an interpreter with torch, smp and safetensors: see bench/compare_torch.sh)"""
import argparse
import csv
import time

import cv2
import numpy as np


def read_split(path, fold):
    train, val = [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            (val if int(row["kfold"]) == fold else train).append((row["ImageId"], row["has_mask"] == "1"))
    return train, val


def load(data, ids, size):
    imgs, masks = [], []
    for i, _ in ids:
        im = cv2.imread(f"{data}/train/{i}.png", cv2.IMREAD_GRAYSCALE)
        m = cv2.imread(f"{data}/mask/{i}.png", cv2.IMREAD_GRAYSCALE)
        imgs.append(cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR))
        masks.append(cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST))
    return np.stack(imgs), np.stack(masks)


def augment(im, m, rng):
    if rng.random() < 0.5:
        im, m = im[:, ::-1], m[:, ::-1]
    if rng.random() < 0.5:
        h, w = im.shape
        rot = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), rng.uniform(-10, 10), 1.0)
        im = cv2.warpAffine(np.ascontiguousarray(im), rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        m = cv2.warpAffine(np.ascontiguousarray(m), rot, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(im), np.ascontiguousarray(m)


MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def to_input(ims):
    x = ims.astype(np.float32)[:, None] / 255.0
    x = np.repeat(x, 3, axis=1)
    return (x - MEAN[None, :, None, None]) / STD[None, :, None, None]


def epoch_order(pos, rng, share):
    pos_idx = [i for i, p in enumerate(pos) if p]
    neg_idx = [i for i, p in enumerate(pos) if not p]
    if share <= 0:
        order = list(range(len(pos)))
    else:
        nneg = int(len(pos_idx) * (1 - share) / share)
        order = pos_idx + list(rng.choice(neg_idx, size=nneg, replace=True))
    rng.shuffle(order)
    return order


def grid_scores(probs, truths, tops, areas, bottoms):
    best = None
    for t in tops:
        for a in areas:
            for b in bottoms:
                s_all, s_pos, npos = 0.0, 0.0, 0
                for p, y in zip(probs, truths):
                    pred = (p > b) if (p > t).sum() >= a else np.zeros_like(y)
                    den = pred.sum() + y.sum()
                    s = 1.0 if den == 0 else 2.0 * (pred & y).sum() / den
                    s_all += s
                    if y.any():
                        s_pos += s
                        npos += 1
                res = (s_all / len(probs), s_pos / max(npos, 1), (t, a, b))
                if best is None or res[0] > best[0]:
                    best = res
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds", required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--init", required=True, help="initial weights from `pneumoseg init` (safetensors)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="steps per epoch cap")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--milestones", default="5,7")
    ap.add_argument("--gamma", type=float, default=0.5)
    ap.add_argument("--pos-share", type=float, default=0.6)
    ap.add_argument("--areas", default="0,250,1000", help="min areas in 1024-pixels")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import segmentation_models_pytorch as smp
    import torch
    from safetensors.torch import load_file

    from combo_loss_torch import combo_loss

    t0 = time.time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = smp.Unet("resnet34", encoder_weights=None, classes=1, activation=None)
    model.load_state_dict(load_file(a.init), strict=True)
    train, val = read_split(a.folds, a.fold)
    ti, tm = load(a.data, train, a.size)
    vi, vm = load(a.data, val, a.size)
    pos = [p for _, p in train]
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(m) for m in a.milestones.split(",")], a.gamma)
    scale = a.size * a.size / 1024.0 ** 2
    areas = [round(float(x) * scale) for x in a.areas.split(",")]

    best = None
    for e in range(a.epochs):
        te = time.time()
        model.train()
        order = epoch_order(pos, rng, a.pos_share)
        nb = min(len(order) // a.batch, a.steps)
        losses = []
        for b in range(nb):
            idx = order[b * a.batch:(b + 1) * a.batch]
            pairs = [augment(ti[i], tm[i], rng) for i in idx]
            x = torch.from_numpy(to_input(np.stack([p[0] for p in pairs])))
            y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32)[:, None] / 255.0)
            opt.zero_grad()
            loss = combo_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        model.eval()
        probs = []
        with torch.no_grad():
            for b in range(0, len(vi), a.batch):
                probs.append(torch.sigmoid(model(torch.from_numpy(to_input(vi[b:b + a.batch])))).numpy()[:, 0])
        probs = np.concatenate(probs)
        score, dpos, trip = grid_scores(probs, vm >= 128, [0.6, 0.75], areas, [0.3, 0.4])
        if best is None or score > best[0]:
            best = (score, dpos, trip, e + 1)
        print(f"epoch {e + 1}/{a.epochs} train loss {np.mean(losses):.4f} kaggle {score:.4f} dice+ {dpos:.4f} "
              f"triplet {trip} {time.time() - te:.1f} s", flush=True)
    empty = float(np.mean([not y.any() for y in vm >= 128]))
    print(f"torch best kaggle {best[0]:.4f} dice+ {best[1]:.4f} triplet {best[2]} at epoch {best[3]}; "
          f"all-empty baseline {empty:.4f}; wall {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
