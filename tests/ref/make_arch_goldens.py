#!/usr/bin/env python3
"""PyTorch parity goldens for every architecture: writes tests/ref/golden/arch/<encoder>-<decoder>.safetensors.

For each architecture, the weights are made by pneumoseg itself (`pneumoseg init --encoder E --decoder D
[--attention scse] --seed 1234`), loaded with strict=True into the real PyTorch model (smp.Unet(E,
encoder_weights=None, classes=1[, decoder_attention_type='scse']), or the AlbuNet transcription in albunet.py),
and run in float64 (the truth stored) and float32 (whose error against the truth sets a fair tolerance):
  1. eval-mode logits of x (2x3x64x64);
  2. one train-mode forward on (x, t), ComboLoss(bce=3, dice=1, focal=4), backward: the train logits, the loss and
     every parameter's gradient, stored as a deterministic sample (K = min(n, 64) values at flat indices
     floor(k * n / K)) with the float32 run's normalized error on that sample.
The parameter count PyTorch reports is stored too (tests/test_parity_arch.c asserts pneumoseg's equals it).
The inputs are those of make_parity_golden.py (numpy RandomState(0)): the C test reads x64 and t64 from
golden/parity_resnet34.safetensors. Logits are stored as float32 (their rounding is far below the tolerances).

Environment (Debian 12): python3-torch 1.13 and python3-torchvision from Debian, plus, in a venv made with
    /usr/bin/python3 -m venv --system-site-packages VENV
    VENV/bin/pip install --no-deps segmentation-models-pytorch==0.4.0 timm==1.0.9 huggingface_hub==0.25.2 \\
        safetensors==0.4.5 pretrainedmodels==0.7.4 efficientnet-pytorch==0.7.1 munch filelock packaging
Run (a few minutes on 2 cores):
    VENV/bin/python tests/ref/make_arch_goldens.py --pneumoseg build/tools/pneumoseg
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_parity_golden import SEED, combo_loss, make_inputs  # noqa: E402

SAMPLE = 64
ARCHS = [
    ("resnet18", "unet", None), ("resnet34", "unet", "scse"), ("resnet50", "unet", None),
    ("resnet101", "unet", None), ("resnext50_32x4d", "unet", None), ("se_resnet50", "unet", None),
    ("se_resnext50_32x4d", "unet", None), ("se_resnext101_32x4d", "unet", None), ("resnet34", "albunet", None),
]


def golden_name(encoder, decoder, attention):
    return f"{encoder}-{decoder}{'-' + attention if attention else ''}.safetensors"


def sample(flat):
    n = flat.numel()
    k = min(n, SAMPLE)
    idx = torch.tensor([(i * n) // k for i in range(k)], dtype=torch.long)
    return flat[idx]


def build(encoder, decoder, attention):
    if decoder == "albunet":
        from albunet import AlbuNet
        return AlbuNet()
    import segmentation_models_pytorch as smp
    return smp.Unet(encoder, encoder_weights=None, classes=1, decoder_attention_type=attention)


def run(model, dtype, x, t):
    m = copy.deepcopy(model).to(dtype)
    out = {}
    m.eval()
    with torch.no_grad():
        out["eval64"] = m(torch.from_numpy(x).to(dtype))
    m.train()
    m.zero_grad()
    logits = m(torch.from_numpy(x).to(dtype))
    loss = combo_loss(logits, torch.from_numpy(t).to(dtype))
    loss.backward()
    out["train64"] = logits.detach()
    out["loss"] = loss.detach().reshape(1).double()
    out["grads"] = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
                    for n, p in m.named_parameters()}
    return out


def make_one(pneumoseg, encoder, decoder, attention, out_dir):
    from safetensors.torch import load_file, save_file
    with tempfile.TemporaryDirectory() as tmp:
        wpath = os.path.join(tmp, "w.safetensors")
        cmd = [pneumoseg, "init", "--encoder", encoder, "--decoder", decoder, "--seed", str(SEED), "--out", wpath]
        if attention:
            cmd += ["--attention", attention]
        subprocess.run(cmd, check=True)
        state = load_file(wpath)
    model = build(encoder, decoder, attention)
    model.load_state_dict(state, strict=True)
    count = sum(p.numel() for p in model.parameters())
    x, _, t = make_inputs()
    truth = run(model, torch.float64, x, t)
    f32 = run(model, torch.float32, x, t)
    g = {"param_count": torch.tensor([count]),
         "loss": truth["loss"], "loss_f32": f32["loss"]}
    for key in ("eval64", "train64"):
        g[key] = truth[key].float().contiguous()
        g[key + "_err32"] = torch.tensor([(f32[key].double() - truth[key]).abs().max().item()], dtype=torch.float64)
    worst = 0.0
    for name, gt in truth["grads"].items():
        s64 = sample(gt.reshape(-1))
        s32 = sample(f32["grads"][name].reshape(-1)).double()
        err = ((s32 - s64).norm() / s64.norm().clamp(min=1e-30)).item()
        worst = max(worst, err)
        g["grad/" + name] = s64.float().contiguous()
        g["grad_err32/" + name] = torch.tensor([err], dtype=torch.float64)
    path = os.path.join(out_dir, golden_name(encoder, decoder, attention))
    save_file(g, path, metadata={"seed": str(SEED), "torch": torch.__version__,
                                 "encoder": encoder, "decoder": decoder, "attention": attention or ""})
    print(f"{encoder} {decoder}{'+' + attention if attention else ''}: {count} parameters, eval err32 "
          f"{g['eval64_err32'].item():.2g}, worst gradient err32 {worst:.2g}, wrote {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pneumoseg", required=True, help="path to the built pneumoseg binary")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "golden", "arch"))
    ap.add_argument("--only", help="one encoder-decoder, e.g. resnet50-unet")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    for enc, dec, att in ARCHS:
        if args.only and golden_name(enc, dec, att) != args.only + ".safetensors":
            continue
        make_one(args.pneumoseg, enc, dec, att, args.out)


if __name__ == "__main__":
    main()
