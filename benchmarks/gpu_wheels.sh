#!/usr/bin/env bash
# The wheels `benchmarks/gpu.sh --offline` needs on a GPU machine that has no package index but whose python3
# already holds CUDA torch, transformers, peft, onnx, onnxruntime (CPU) and opencv: fetched here into .whl/
# (or $WHEELS) for that machine's Python ($GPU_PY, default 3.12) on x86-64 Linux. Pure-Python wheels only, a
# few MB: onnxruntime-gpu and TensorRT are far larger, so offline the detector rows record the missing providers
# and time the network through torch (onnx2torch), and the node path runs its detector on the CPU provider.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${WHEELS:-.whl}
mkdir -p "$dest"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_PY:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" diffusers==0.42.1 onnx2torch==1.5.15 tqdm==4.70.1 importlib_metadata==10.2.0
# pinned: the versions checked here (--no-deps installs them blind, and a newer diffusers may want a newer
# huggingface-hub than the GPU machine has)
ls -l "$dest"
