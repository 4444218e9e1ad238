#!/usr/bin/env python3
"""compare_engines: times pneumoseg against ONNX Runtime, OpenVINO and PyTorch on the same seeded Unet-resnet34
weights, input shape and thread count in one invocation, alternating rounds so every engine sees the same machine
load, and prints a table (median of round medians, each engine's own peak RSS, ratio) with the CPU named.

  compare_engines.py --pneumoseg build/tools/pneumoseg --work build/engines --size 512 --batch 1 --threads 2

Weights: `pneumoseg init --seed 1234` (or --weights W), loaded into segmentation_models_pytorch's Unet("resnet34")
with strict=True and exported to ONNX (opset 13, fixed shape); the same file is what pneumoseg runs. Before timing,
one forward pass of each engine on one input is compared with pneumoseg's logits (max |difference|).
Each engine runs in its own process; peak RSS is that process's own high-water mark (VmHWM).
bench/compare_engines.sh makes the interpreter (torch, smp, onnxruntime, openvino) and runs this."""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ENGINES = ["pneumoseg", "onnxruntime", "openvino", "torch_channels_last", "torch_eager"]


def vm_hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def load_smp(weights):
    import torch
    import segmentation_models_pytorch as smp
    from safetensors.torch import load_file

    model = smp.Unet("resnet34", encoder_weights=None, classes=1, activation=None)
    state = {k[7:] if k.startswith("module.") else k: v for k, v in load_file(weights).items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), torch, smp


def worker_export(a):
    model, torch, smp = load_smp(a.weights)
    x = torch.zeros(a.batch, 3, a.size, a.size)
    torch.onnx.export(model, x, a.onnx, opset_version=13, input_names=["x"], output_names=["logits"],
                      do_constant_folding=True)
    print(json.dumps({"torch": torch.__version__, "smp": smp.__version__}))


def make_input(a):
    import numpy as np

    return np.random.RandomState(0).standard_normal((a.batch, 3, a.size, a.size)).astype(np.float32)


def timed(step, a):
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def worker_engine(a):
    """Runs in its own process: one engine, timed; prints one JSON line (times, own peak RSS, version, logits)."""
    import numpy as np

    x = make_input(a)
    out = {}
    if a.engine == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
        run = lambda: sess.run(None, {"x": x})[0]  # noqa: E731
        out["version"] = f"ONNX Runtime {ort.__version__}, CPU execution provider, {a.threads} intra-op threads"
    elif a.engine == "openvino":
        import openvino as ov

        core = ov.Core()
        cfg = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": a.threads, "INFERENCE_PRECISION_HINT": "f32"}
        compiled = core.compile_model(core.read_model(a.onnx), "CPU", cfg)
        req = compiled.create_infer_request()
        run = lambda: req.infer({0: x})[compiled.output(0)]  # noqa: E731
        out["version"] = f"OpenVINO {ov.get_version()}, CPU, latency hint, f32, {a.threads} threads"
    else:
        model, torch, smp = load_smp(a.weights)
        torch.set_num_threads(a.threads)
        xt = torch.from_numpy(x)
        if a.engine == "torch_channels_last":
            model = model.to(memory_format=torch.channels_last)
            xt = xt.contiguous(memory_format=torch.channels_last)

        def run():
            with torch.no_grad():
                return model(xt).numpy()

        layout = "channels_last" if a.engine == "torch_channels_last" else "NCHW"
        out["version"] = f"PyTorch {torch.__version__} eager {layout} fp32, smp {smp.__version__}, {a.threads} threads"
    if a.logits:
        np.save(a.logits, np.asarray(run(), dtype=np.float32))
    out["times"] = timed(run, a)
    out["rss_mb"] = vm_hwm_mb()
    print(json.dumps(out))


def run_worker(a, engine, logits=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", engine, "--onnx", a.onnx, "--weights", a.weights,
           "--size", str(a.size), "--batch", str(a.batch), "--threads", str(a.threads), "--runs", str(a.runs),
           "--warmup", str(a.warmup)]
    if logits:
        cmd += ["--logits", logits, "--runs", "1", "--warmup", "0"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip() or p.stdout.strip() or "failed").splitlines()[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_pneumoseg(a, weights, extra):
    cmd = [a.pneumoseg, "bench", "infer", "--backend", "cpu", "--size", str(a.size), "--batch", str(a.batch),
           "--threads", str(a.threads), "--runs", str(a.runs), "--warmup", str(a.warmup), "--weights", weights] + extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip() or p.stdout.strip()).splitlines()[-1], "cmd": " ".join(cmd)}
    med = re.search(r"median ([0-9.]+) s", p.stdout)
    rss = re.search(r"peak RSS ([0-9.]+) MB", p.stdout)
    return {"times": [float(med.group(1))], "rss_mb": float(rss.group(1)), "cmd": " ".join(cmd)}


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.+)", out).group(1).strip()
        family = re.search(r"CPU family:\s*(\d+)", out)
        mdl = re.search(r"Model:\s*(\d+)", out)
        flags = re.search(r"Flags:\s*(.+)", out).group(1).split()
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        extra = [f for f in ("avx512_vnni", "avx512_bf16", "avx_vnni") if f in flags]
        fam = f" (family {family.group(1)} model {mdl.group(1)})" if family and mdl else ""
        return f"{model}{fam}, {isa}{' + ' + ', '.join(extra) if extra else ''}, {os.cpu_count()} logical CPUs"
    except Exception:  # noqa: BLE001 - the name is informational
        return platform.processor() or "unknown CPU"


def check_outputs(a):
    """One forward pass per engine on the same input; max |logit difference| against pneumoseg."""
    import numpy as np

    xpath = os.path.join(a.work, f"x_{a.batch}x{a.size}.npy")
    np.save(xpath, make_input(a))
    ours_path = os.path.join(a.work, "logits_pneumoseg.npy")
    subprocess.run([a.pneumoseg, "infer", "--backend", "cpu", "--threads", str(a.threads), "--weights", a.weights,
                    "--input", xpath, "--save-logits", ours_path, "--force"], check=True, capture_output=True)
    ours = np.load(ours_path)
    lines = []
    for e in ENGINES[1:]:
        path = os.path.join(a.work, f"logits_{e}.npy")
        r = run_worker(a, e, logits=path)
        if "error" in r:
            lines.append(f"{e}: FAILED: {r['error']}")
            continue
        theirs = np.load(path).reshape(ours.shape)
        lines.append(f"{e}: max |logit - pneumoseg's| {np.abs(theirs - ours).max():.2e} "
                     f"(logit rms {np.sqrt(np.mean(ours.astype(np.float64) ** 2)):.3f})")
    return lines


def fresh_algo_cache(work):
    """--conv-algo auto measures direct against Winograd once per shape and keeps the choice; a choice measured
    on a busier machine would stay. Each invocation measures afresh, in its first pneumoseg run, on a cache of its
    own."""
    cache = os.path.join(work, "algo-cache")
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    os.environ["PN_CACHE_DIR"] = cache


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pneumoseg", help="path of the pneumoseg binary")
    ap.add_argument("--work", default="engines", help="folder for the weights, the ONNX file and outputs")
    ap.add_argument("--weights", help="safetensors weights (default: pneumoseg init --seed 1234)")
    ap.add_argument("--int8", help="also time this int8 model (pneumoseg quantize) in pneumoseg")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per round and engine")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma list (default: all)")
    ap.add_argument("--conv-algo", default="auto", help="pneumoseg --conv-algo")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--export", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--logits", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.export:
        return worker_export(a)
    if a.worker:
        a.engine = a.worker
        return worker_engine(a)
    if not a.pneumoseg:
        ap.error("--pneumoseg is required")
    os.makedirs(a.work, exist_ok=True)
    fresh_algo_cache(a.work)
    if not a.weights:
        a.weights = os.path.join(a.work, "unet_r34_seed1234.safetensors")
        if not os.path.exists(a.weights):
            subprocess.run([a.pneumoseg, "init", "--seed", "1234", "--out", a.weights], check=True, capture_output=True)
    a.onnx = os.path.join(a.work, f"unet_r34_{a.batch}x{a.size}.onnx")
    if not os.path.exists(a.onnx) or os.path.getmtime(a.onnx) < os.path.getmtime(a.weights):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export", "--weights", a.weights, "--onnx", a.onnx,
                        "--size", str(a.size), "--batch", str(a.batch)], check=True)
    engines = [e for e in a.engines.split(",") if e]
    rows = {e: {"medians": [], "rss": 0.0} for e in engines + (["pneumoseg_int8"] if a.int8 else [])}
    load0 = os.getloadavg()
    checks = check_outputs(a) if "pneumoseg" in engines else []
    for _ in range(a.rounds):
        for e in rows:
            if e == "pneumoseg":
                r = run_pneumoseg(a, a.weights, ["--conv-algo", a.conv_algo])
            elif e == "pneumoseg_int8":
                r = run_pneumoseg(a, a.int8, [])
            else:
                r = run_worker(a, e)
            if "error" in r:
                rows[e]["error"] = r["error"]
                continue
            rows[e]["medians"].append(statistics.median(r["times"]))
            rows[e]["rss"] = max(rows[e]["rss"], r["rss_mb"])
            rows[e]["version"] = r.get("version", "")
            if "cmd" in r:
                rows[e]["cmd"] = r["cmd"]
    load1 = os.getloadavg()
    print(f"compare_engines: Unet-resnet34 fp32 {a.batch}x3x{a.size}x{a.size}, {a.threads} threads, {a.rounds} "
          f"alternating rounds of {a.runs} timed runs after {a.warmup} warm-up")
    print(f"CPU: {cpu_name()}; load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    print(f"weights: {a.weights}; ONNX: {a.onnx}")
    for line in checks:
        print(f"  output check: {line}")
    base = rows.get("pneumoseg", {}).get("medians")
    ours = statistics.median(base) if base else None
    best_other = min((statistics.median(r["medians"]) for e, r in rows.items()
                      if not e.startswith("pneumoseg") and r["medians"]), default=None)
    print("| engine | median per batch (s) | round medians | peak RSS (MB) | pneumoseg / engine |")
    print("|---|---|---|---|---|")
    for e, r in rows.items():
        if "error" in r and not r["medians"]:
            print(f"| {e} | FAILED: {r['error']} | | | |")
            continue
        m = statistics.median(r["medians"])
        label = {"pneumoseg": f"pneumoseg cpu (--conv-algo {a.conv_algo})", "pneumoseg_int8": "pneumoseg cpu int8"}.get(
            e, r.get("version", e))
        ratio = f"{ours / m:.2f}" if ours and not e.startswith("pneumoseg") else (
            f"int8 / fp32 {m / ours:.2f}" if ours and e == "pneumoseg_int8" else "")
        print(f"| {label} | {m:.4f} | {', '.join(f'{x:.4f}' for x in r['medians'])} | {r['rss']:.0f} | {ratio} |")
    if ours and best_other:
        print(f"pneumoseg / best other engine: {ours / best_other:.2f}")
    for e in ("pneumoseg", "pneumoseg_int8"):
        if rows.get(e, {}).get("cmd"):
            print(f"{e} command: {rows[e]['cmd']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
