#!/bin/sh
# compare_engines.sh: runs bench/compare_engines.py (pneumoseg against ONNX Runtime, OpenVINO and PyTorch on the same
# weights, alternating rounds) with an interpreter that has torch, segmentation_models_pytorch, onnxruntime and
# openvino: $PN_PYTHON if set; else a venv under the build directory made from /usr/bin/python3
# --system-site-packages (Debian's torch 1.13) with smp installed without dependencies and onnxruntime, openvino and
# onnx from PyPI (numpy kept below 2, which Debian's torch was built against).
# usage: bench/compare_engines.sh BUILD_DIR [compare_engines.py options], e.g.
#   bench/compare_engines.sh build --size 512 --batch 1 --threads 2 --rounds 3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: compare_engines.sh BUILD_DIR [options]}
shift
py=${PN_PYTHON:-}
if [ -z "$py" ]; then
    venv="$build/engines-venv"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnxruntime, openvino, segmentation_models_pytorch" 2>/dev/null; then
        /usr/bin/python3 -m venv --system-site-packages "$venv"
        "$venv/bin/pip" install --quiet --no-deps segmentation-models-pytorch==0.4.0 timm==1.0.9 \
            huggingface_hub==0.25.2 safetensors==0.4.5 pretrainedmodels==0.7.4 efficientnet-pytorch==0.7.1 \
            munch filelock tqdm pyyaml
        "$venv/bin/pip" install --quiet onnxruntime openvino onnx "numpy<2"
    fi
    py="$venv/bin/python"
fi
exec "$py" "$here/compare_engines.py" --pneumoseg "$build/tools/pneumoseg" --work "$build/engines" "$@"
