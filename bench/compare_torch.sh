#!/bin/sh
# compare_torch.sh: runs bench/compare_torch.py with an interpreter that has torch and
# segmentation_models_pytorch. $PN_PYTHON if set; else a venv under the build directory made from
# /usr/bin/python3 --system-site-packages (Debian's torch) with smp installed without dependencies.
# usage: bench/compare_torch.sh BUILD_DIR [compare_torch.py options], e.g.
#   bench/compare_torch.sh build --mode infer --size 512 --batch 1 --threads 2
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: compare_torch.sh BUILD_DIR [options]}
shift
py=${PN_PYTHON:-}
if [ -z "$py" ]; then
    venv="$build/torch-venv"
    if [ ! -x "$venv/bin/python" ]; then
        /usr/bin/python3 -m venv --system-site-packages "$venv"
        "$venv/bin/pip" install --quiet --no-deps segmentation-models-pytorch==0.4.0 timm==1.0.9 \
            huggingface_hub==0.25.2 safetensors==0.4.5 pretrainedmodels==0.7.4 efficientnet-pytorch==0.7.1 \
            munch filelock
    fi
    py="$venv/bin/python"
fi
exec "$py" "$here/compare_torch.py" --pneumoseg "$build/tools/pneumoseg" "$@"
