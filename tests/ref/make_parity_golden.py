#!/usr/bin/env python3
"""PyTorch parity golden for the smp U-Net (resnet34): writes tests/ref/golden/parity_resnet34.safetensors.

The weights are made by pneumoseg itself (`pneumoseg init --seed 1234`), loaded into the real
segmentation_models_pytorch.Unet('resnet34', encoder_weights=None, classes=1), and run in float64 (the
truth stored in the golden) and several times in float32 (whose worst error against float64 sets a fair
tolerance). The C test (tests/test_parity.c) regenerates the same weights from the same seed and
compares every backend against this file.

Sequence (the C test repeats it exactly):
  1. eval-mode logits for x64 (2x3x64x64) and x128 (1x3x128x128);
  2. train mode on (x64, t64): six iterations of zero_grad, forward, ComboLoss(bce=3, dice=1, focal=4),
     backward (iteration 0 also stores the global gradient L2 norm, for clip_grad_norm_); iterations 0..4 are each followed by an Adam step (lr 1e-4, betas 0.9/0.999, eps 1e-3,
     coupled weight decay 1e-4). Stored: train logits and loss and parameter gradients of iteration 0,
     the losses of iterations 0..5, and the BatchNorm running statistics after the first forward and after
     all six forwards.
Training a randomly initialised deep network is chaotic at the scale of float32 rounding: PyTorch's own
float32 run drifts from float64 by ~1e-3 in the loss and ~0.2 in deep running variances within five
steps. The gradients are too, already at iteration 0: a ReLU input within float32 rounding of 0 (one of
~1e6 per forward) takes the other side of the mask, and in the deep layers (2x2 and 4x4 pixels, BatchNorm
over 8 or 32 values) one such element moves whole gradient tensors by 1-8%. Which elements flip depends on
the exact rounding, so one float32 run is one draw: PyTorch's own ran 0.4% from float64, the cpu backend
5.6% on an AVX-512 CPU and 0.6% on an AVX2 one, every op of it within 1.3e-6 of ref (test_unet_lockstep).
So the golden holds float32's worst error over DRAWS runs, plain float32 and runs whose every conv output
carries relative noise CONV_NOISE (another float32 implementation's rounding): logits `*_err32`, gradients
`grad_err32/*`, `grad_norm_err32`, the losses `losses_err32` and the final statistics `stat_err32`. The C
test allows 4x these (losses after Adam steps: 4x the worst drift so far), except ref's gradients: ref
accumulates in double and is held to 1e-3. Per-op precision is held tightly elsewhere: test_ops, and
test_unet_lockstep runs the training program on cpu against ref node by node.
Gradients are stored as a deterministic sample: for a tensor of n elements, K = min(n, 1024) values at
flat indices floor(k * n / K), k = 0..K-1.

Environment (Debian 12): python3-torch 1.13 from Debian, plus, in a venv made with
    /usr/bin/python3 -m venv --system-site-packages VENV
    VENV/bin/pip install --no-deps segmentation-models-pytorch==0.4.0 timm==1.0.9 \
        huggingface_hub==0.25.2 safetensors==0.4.5 pretrainedmodels==0.7.4 \
        efficientnet-pytorch==0.7.1 munch filelock
(the light way, on top of Debian's torch, works; no PyPI torch needed). Run:
    VENV/bin/python tests/ref/make_parity_golden.py --pneumoseg build/tools/pneumoseg
"""
import argparse
import copy
import os
import subprocess
import tempfile

import numpy as np
import torch

SEED = 1234
SAMPLE = 1024
DRAWS = 16  # float32 runs whose worst errors against float64 set the tolerances (see the docstring)
CONV_NOISE = 2e-7  # relative rms of a float32 convolution's rounding (PyTorch's, measured against float64)
# eps 1e-3 rather than the default 1e-8: with 1e-8 every parameter moves by about +-lr on the first steps
# whatever the size of its gradient, so float rounding decides the sign for near-zero gradients and even
# PyTorch's own float32 run drifts 2e-3 from float64 within three steps. With 1e-3 tiny gradients give tiny
# updates and the sequence is a fair test of the Adam formula (the op itself is checked with eps 1e-8 in
# test_ops).
ADAM = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-3, weight_decay=1e-4)


def combo_loss(logits, target, w_bce=3.0, w_dice=1.0, w_focal=4.0):
    """ComboLoss of the SIIM 1st-place Losses.py (weights bce 3, dice 1, focal 4), per_image=False."""
    x = logits.reshape(-1)
    t = target.reshape(-1)
    bce = (x.clamp(min=0) - x * t + (1 + (-x.abs()).exp()).log()).mean()
    s = torch.sigmoid(logits)
    eps = 1e-6
    inter = torch.sum(s.reshape(1, -1) * t.reshape(1, -1))
    union = torch.sum(s) + torch.sum(t) + eps
    dice = (1 - (2 * inter + eps) / union).mean()
    fe = 1e-8
    so = torch.clamp(s.reshape(-1), fe, 1.0 - fe)
    tt = torch.clamp(t, fe, 1.0 - fe)
    pt = (1 - tt) * (1 - so) + tt * so
    focal = (-(1.0 - pt) ** 2 * torch.log(pt)).mean()
    return (w_bce * bce + w_dice * dice + w_focal * focal).clamp(min=1e-5)


def make_inputs():
    rng = np.random.RandomState(0)
    x64 = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    x128 = rng.standard_normal((1, 3, 128, 128)).astype(np.float32)
    yy, xx = np.mgrid[0:64, 0:64]
    t64 = np.zeros((2, 1, 64, 64), np.float32)
    t64[0, 0] = ((yy - 20) ** 2 + (xx - 40) ** 2 < 12 ** 2)
    t64[1, 0] = (np.abs(yy - 40) < 6) & (xx > 10) & (xx < 30)
    return x64, x128, t64


def sample(flat):
    n = flat.numel()
    k = min(n, SAMPLE)
    idx = torch.tensor([(i * n) // k for i in range(k)], dtype=torch.long)
    return flat[idx]


def add_conv_noise(m, seed):
    """Multiplies every convolution's output by 1 + CONV_NOISE * N(0, 1) (seeded): another float32
    implementation's rounding, of the size of PyTorch's own (relative rms 2e-7 against float64)."""
    gen = torch.Generator().manual_seed(seed)

    def hook(module, inputs, out):
        return out * (1 + CONV_NOISE * torch.randn(out.shape, generator=gen, dtype=out.dtype))

    for module in m.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(hook)


def run_sequence(model, dtype, x64, x128, t64, noise_seed=None):
    """Runs the whole sequence on a copy of model in dtype (with conv noise when noise_seed is given); returns a
    dict of results."""
    m = copy.deepcopy(model).to(dtype)
    if noise_seed is not None:
        add_conv_noise(m, noise_seed)
    out = {}
    m.eval()
    with torch.no_grad():
        out["eval64"] = m(torch.from_numpy(x64).to(dtype))
        out["eval128"] = m(torch.from_numpy(x128).to(dtype))
    m.train()
    opt = torch.optim.Adam(m.parameters(), **ADAM)
    x = torch.from_numpy(x64).to(dtype)
    t = torch.from_numpy(t64).to(dtype)
    losses = []
    for it in range(6):
        opt.zero_grad()
        logits = m(x)
        loss = combo_loss(logits, t)
        loss.backward()
        losses.append(loss.item())
        if it == 0:
            out["stats1"] = {n: b.detach().clone() for n, b in m.named_buffers() if "running" in n}
            out["train64"] = logits.detach()
            out["grads"] = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
            out["grad_norm"] = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in m.parameters()))
        if it < 5:
            opt.step()
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    out["stats"] = {n: b.detach().clone() for n, b in m.named_buffers() if "running" in n}
    return out


def float32_errors(truth, f32):
    """float32's error against float64 for every quantity the C test checks."""
    e = {key: (f32[key].double() - truth[key]).abs().max().item() for key in ("eval64", "eval128", "train64")}
    e["grad_norm"] = abs(f32["grad_norm"].item() - truth["grad_norm"].item()) / truth["grad_norm"].item()
    e["losses"] = ((f32["losses"] - truth["losses"]).abs() / truth["losses"].abs()).numpy()
    for name, gt in truth["grads"].items():
        s64 = sample(gt.reshape(-1))
        s32 = sample(f32["grads"][name].reshape(-1)).double()
        e["grad/" + name] = ((s32 - s64).norm() / s64.norm().clamp(min=1e-30)).item()
    e["stats"] = max(((f32["stats"][n].double() - st).abs() / st.abs().clamp(min=1.0)).max().item()
                     for n, st in truth["stats"].items())
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pneumoseg", required=True, help="path to the built pneumoseg binary")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "golden", "parity_resnet34.safetensors"))
    ap.add_argument("--draws", type=int, default=DRAWS, help="float32 runs that set the tolerances")
    args = ap.parse_args()

    import segmentation_models_pytorch as smp
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        wpath = os.path.join(tmp, "w.safetensors")
        subprocess.run([args.pneumoseg, "init", "--seed", str(SEED), "--out", wpath], check=True)
        state = load_file(wpath)
    model = smp.Unet("resnet34", encoder_weights=None, classes=1)
    model.load_state_dict(state, strict=True)
    print("parameters:", sum(p.numel() for p in model.parameters()))

    x64, x128, t64 = make_inputs()
    truth = run_sequence(model, torch.float64, x64, x128, t64)
    # float32's error: the worst over the draws, plain float32 then float32 with conv noise
    worst = None
    for d in range(args.draws):
        e = float32_errors(truth, run_sequence(model, torch.float32, x64, x128, t64, None if d == 0 else d))
        grad_worst = max(v for k, v in e.items() if k.startswith("grad/"))
        print(f"float32 draw {d}: worst gradient error {grad_worst:.3g}, gradient norm {e['grad_norm']:.2g}, "
              f"losses {' '.join(f'{v:.2g}' for v in e['losses'])}", flush=True)
        worst = e if worst is None else {k: np.maximum(worst[k], v) for k, v in e.items()}

    def scalar(v):
        return torch.tensor([float(v)], dtype=torch.float64)

    g = {"x64": torch.from_numpy(x64), "x128": torch.from_numpy(x128), "t64": torch.from_numpy(t64),
         "losses": truth["losses"], "losses_err32": torch.from_numpy(np.asarray(worst["losses"], np.float64)),
         "grad_norm": truth["grad_norm"].reshape(1).double(), "grad_norm_err32": scalar(worst["grad_norm"]),
         "stat_err32": scalar(worst["stats"])}
    for key in ("eval64", "eval128", "train64"):
        g[key] = truth[key].double().contiguous()
        g[key + "_err32"] = scalar(worst[key])
        print(f"{key}: max |f32 - f64| = {worst[key]:.3g}")
    print(f"global gradient norm {g['grad_norm'].item():.6f}, float32 relative error {worst['grad_norm']:.2g}")
    for name, gt in truth["grads"].items():
        g["grad/" + name] = sample(gt.reshape(-1)).float().contiguous()
        g["grad_err32/" + name] = scalar(worst["grad/" + name])
    grad_worst = max(v for k, v in worst.items() if k.startswith("grad/"))
    print(f"worst float32 gradient normalized error vs float64: {grad_worst:.3g}")
    for name, st in truth["stats"].items():
        g["stat/" + name] = st.double().contiguous()
    for name, st in truth["stats1"].items():
        g["stat1/" + name] = st.double().contiguous()
    print(f"running statistics: worst float32 relative error {worst['stats']:.3g}")
    print("losses f32 relative error:", [f"{v:.2g}" for v in worst["losses"]])
    print("losses f64:", [f"{v:.6f}" for v in truth["losses"].tolist()])
    save_file(g, args.out, metadata={"seed": str(SEED), "draws": str(args.draws), "torch": torch.__version__,
                                     "smp": smp.__version__})
    print("wrote", args.out, os.path.getsize(args.out), "bytes")


if __name__ == "__main__":
    main()
