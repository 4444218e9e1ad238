#!/usr/bin/env bash
# setup: installs the Debian packages pneumoseg needs to build and test (run as root or with sudo).
set -euo pipefail
packages=(
  build-essential cmake pkg-config          # compiler and build
  libopenblas-dev libdnnl-dev               # CPU backend: OpenBLAS GEMM, oneDNN 2.6
  libdcmtk-dev dcmtk libjpeg-dev            # DICOM (dcmtk links libjpeg; dcmtk tools are used by tests)
  libpng-dev libstb-dev libdeflate-dev      # PNG (libdeflate: faster PNG writing)
  libzip-dev                                # zip-format PyTorch checkpoints (.pth since PyTorch 1.6)
  python3-pydicom                           # its test DICOMs are the robustness corpus of the tests
  libopenmpi-dev openmpi-bin                # MPI: data-parallel training (mpirun -np N pneumoseg train)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
