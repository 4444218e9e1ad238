#!/usr/bin/env python3
"""compare_torch: times pneumoseg and PyTorch (segmentation_models_pytorch's Unet over --encoder, or the AlbuNet
transcription of tests/ref/albunet.py) on the same architecture and shapes,
threads and precision in one invocation, alternating rounds so both see the same machine load, and prints
both medians, their ratio and both peak RSS values, with the PyTorch version and build.

  compare_torch.py --pneumoseg build/tools/pneumoseg --mode infer --size 512 --batch 1 --threads 2
  compare_torch.py --pneumoseg build/tools/pneumoseg --mode train --size 256 --batch 4 --threads 2
  compare_torch.py --pneumoseg build/tools/pneumoseg --encoder se_resnext50_32x4d --mode infer --size 512
  compare_torch.py --pneumoseg build/tools/pneumoseg --decoder albunet --mode train --size 256 --batch 4

bench/compare_torch.sh picks the interpreter (one with torch and smp) and runs this."""
import argparse
import atexit
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def torch_worker(a):
    """Runs in its own process: times the PyTorch variant and prints one JSON line."""
    import torch
    import segmentation_models_pytorch as smp

    from combo_loss_torch import combo_loss

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.decoder == "albunet":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
        from albunet import AlbuNet
        model = AlbuNet()
    else:
        model = smp.Unet(a.encoder, encoder_weights=None, classes=1, activation=None,
                         decoder_attention_type=None if a.attention == "none" else a.attention)
    channels_last = a.variant in ("channels_last", "bf16_channels_last")
    bf16 = a.variant.startswith("bf16")
    x = torch.randn(a.batch, 3, a.size, a.size)
    t = (torch.rand(a.batch, 1, a.size, a.size) < 0.2).float()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    if a.mode == "infer":
        model.eval()

        def step():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x)
    else:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = combo_loss(model(x).float(), t)
            loss.backward()
            opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    onednn = re.search(r"MKL-DNN v([0-9.]+)", torch.__config__.show())
    print(json.dumps({"times": times, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "torch": torch.__version__, "onednn": onednn.group(1) if onednn else "unknown",
                      "mkldnn_enabled": torch.backends.mkldnn.is_available(), "smp": smp.__version__}))


def run_torch(a, variant):
    cmd = [sys.executable, __file__, "--worker", "--variant", variant, "--encoder", a.encoder, "--decoder", a.decoder,
           "--attention", a.attention, "--mode", a.mode, "--size", str(a.size),
           "--batch", str(a.batch), "--threads", str(a.threads), "--runs", str(a.runs), "--warmup", str(a.warmup)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_pneumoseg(a):
    cmd = [a.pneumoseg, "bench", a.mode, "--backend", a.backend, "--encoder", a.encoder, "--decoder", a.decoder,
           "--attention", a.attention, "--size", str(a.size), "--batch", str(a.batch),
           "--threads", str(a.threads), "--runs", str(a.runs), "--warmup", str(a.warmup)]
    if a.precision != "fp32":
        cmd += ["--precision", a.precision]
    if a.weights:
        cmd += ["--weights", a.weights]
    if a.conv_algo:
        cmd += ["--conv-algo", a.conv_algo]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip() or p.stdout.strip()).splitlines()[-1], "cmd": " ".join(cmd)}
    med = re.search(r"median ([0-9.]+) s\s+min ([0-9.]+) s\s+max ([0-9.]+) s", p.stdout)
    rss = re.search(r"peak RSS ([0-9.]+) MB", p.stdout)
    return {"median": float(med.group(1)), "min": float(med.group(2)), "max": float(med.group(3)),
            "rss_mb": float(rss.group(1)), "cmd": " ".join(cmd)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pneumoseg", help="path of the pneumoseg binary")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--mode", choices=["infer", "train"], default="infer")
    ap.add_argument("--encoder", default="resnet34")
    ap.add_argument("--decoder", choices=["unet", "albunet"], default="unet")
    ap.add_argument("--attention", choices=["none", "scse"], default="none")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per round and side")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating pneumoseg/PyTorch rounds")
    ap.add_argument("--weights", help="safetensors weights for pneumoseg (speed does not depend on them)")
    ap.add_argument("--conv-algo", help="pneumoseg --conv-algo (default: bench's: infer auto, train direct)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="eager", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.size is None:
        a.size = 512 if a.mode == "infer" else 256
    if a.batch is None:
        a.batch = 1 if a.mode == "infer" else 4
    if a.worker:
        return torch_worker(a)
    if not a.pneumoseg:
        ap.error("--pneumoseg is required")
    # --conv-algo auto measures direct against Winograd once per shape and keeps the choice; one measured on a busier
    # machine would stay, so each invocation measures afresh, in its first pneumoseg run, on a cache of its own
    cache = tempfile.mkdtemp(prefix="pneumoseg-algo-")
    atexit.register(shutil.rmtree, cache, True)
    os.environ["PN_CACHE_DIR"] = cache
    variants = ["bf16_channels_last"] if a.precision == "bf16" else (
        ["eager", "channels_last"] if a.mode == "infer" else ["eager", "channels_last"])
    ours, theirs, info = [], {v: [] for v in variants}, {}
    rss_ours, rss_theirs, err = 0.0, {v: 0.0 for v in variants}, None
    for r in range(a.rounds):
        p = run_pneumoseg(a)
        if "error" in p:
            err = p
        else:
            ours.append(p["median"])
            rss_ours = max(rss_ours, p["rss_mb"])
            cmd = p["cmd"]
        for v in variants:
            t = run_torch(a, v)
            theirs[v].append(statistics.median(t["times"]))
            rss_theirs[v] = max(rss_theirs[v], t["rss_mb"])
            info = t
    print(f"compare_torch model={a.encoder} {a.decoder}{'+' + a.attention if a.attention != 'none' else ''} "
          f"mode={a.mode} size={a.size} batch={a.batch} threads={a.threads} precision={a.precision} "
          f"rounds={a.rounds} runs={a.runs} warmup={a.warmup}")
    print(f"PyTorch {info['torch']} (oneDNN {info['onednn']}, mkldnn {info['mkldnn_enabled']}), "
          f"segmentation_models_pytorch {info['smp']}, torch.set_num_threads({a.threads})")
    if err:
        print(f"pneumoseg: FAILED: {err['error']}  ({err['cmd']})")
    else:
        print(f"pneumoseg {a.backend}: median of round medians {statistics.median(ours):.4f} s "
              f"(rounds {', '.join(f'{x:.4f}' for x in ours)}), peak RSS {rss_ours:.0f} MB   [{cmd}]")
    for v in variants:
        m = statistics.median(theirs[v])
        line = (f"PyTorch {v}{' (autocast bf16)' if v.startswith('bf16') else ' fp32'}: median of round medians "
                f"{m:.4f} s (rounds {', '.join(f'{x:.4f}' for x in theirs[v])}), peak RSS {rss_theirs[v]:.0f} MB")
        if ours:
            line += f"   ratio pneumoseg/PyTorch {statistics.median(ours) / m:.2f}"
        print(line)
    return 1 if err else 0


if __name__ == "__main__":
    sys.exit(main())
