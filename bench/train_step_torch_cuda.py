#!/usr/bin/env python3
"""train_step_torch_cuda: times one PyTorch training step of segmentation_models_pytorch's Unet-resnet34 on a
CUDA GPU (AMP autocast bf16 by default, channels_last, Adam, the same ComboLoss terms and weights as pneumoseg),
the reference side of tools/gpu-check.sh. Prints one line: "torch_step_median_s <seconds>", or "SKIP <reason>"
(exit 0) where torch with CUDA or smp is not importable.

  train_step_torch_cuda.py --size 512 --batch 16 --runs 10 --warmup 3 [--precision bf16|fp32]"""
import argparse
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    a = ap.parse_args()
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure is a reason to skip
        print(f"SKIP torch is not importable ({e})")
        return 0
    if not torch.cuda.is_available():
        print(f"SKIP torch {torch.__version__} sees no CUDA device")
        return 0
    try:
        import segmentation_models_pytorch as smp
    except Exception as e:  # noqa: BLE001
        print(f"SKIP segmentation_models_pytorch is not importable ({e}); no PyTorch figure")
        return 0
    from combo_loss_torch import combo_loss
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    model = smp.Unet("resnet34", encoder_weights=None, classes=1, activation=None).to(dev)
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev).contiguous(memory_format=torch.channels_last)
    t = (torch.rand(a.batch, 1, a.size, a.size, device=dev) < 0.2).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    bf16 = a.precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = combo_loss(logits.float(), t)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(f"torch {torch.__version__} smp {smp.__version__} {torch.cuda.get_device_name(0)} "
          f"{a.precision} channels_last batch={a.batch} size={a.size}")
    print(f"torch_step_median_s {statistics.median(times):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
