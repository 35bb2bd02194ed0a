#!/usr/bin/env bash
# The GPU check in one command, on an H100/H200 machine with an NVIDIA driver (r580+, CUDA 13) and PyPI:
# makes .venv-gpu, installs the CUDA builds of torch and onnxruntime (with TensorRT) and the diffusion
# packages, then runs benchmarks/gpu_bench.py (detector, diffusion grid, node path; outputs checked
# anonymized), which writes benchmarks/results/gpu_bench.json. About 2 min install + <= 7 min run.
#   benchmarks/gpu.sh              # on the GPU machine
#   benchmarks/gpu.sh --dry-run    # anywhere: CPU only, tiny models, in the current Python (CI runs this)
#   benchmarks/gpu.sh --offline    # a GPU machine with no package index whose python3 has CUDA torch:
#                                  # the wheels that python lacks, fetched beforehand by
#                                  # benchmarks/gpu_wheels.sh into .whl/, are unpacked into /tmp/ldfa-site
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--dry-run" ]; then
    exec "${PYTHON:-python3}" benchmarks/gpu_bench.py "$@"
fi
if [ "${1:-}" = "--offline" ]; then
    shift
    python=${PYTHON:-python3}
    site=/tmp/ldfa-site
    wheels=("${WHEELS:-.whl}"/*.whl)
    if [ -e "${wheels[0]}" ]; then
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
            "${wheels[@]}"
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "no wheels in ${WHEELS:-.whl}/: running with what $python has" >&2
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    exec timeout 480 "$python" benchmarks/gpu_bench.py "$@"
fi
venv=${VENV:-.venv-gpu}
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q)
"${pip[@]}" --upgrade pip
# PyPI's Linux torch wheels are CUDA builds (TORCH_INDEX=https://download.pytorch.org/whl/cu126 picks another
# one for an older driver). PyPI's onnxruntime-gpu is built for CUDA 13 (driver r580+) and TensorRT 10: its
# extras bring CUDA/cuDNN, tensorrt-cu13 10.x the TensorRT it links (TensorRT 11 would not load).
"${pip[@]}" torch ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
"${pip[@]}" "onnxruntime-gpu[cuda,cudnn]" "tensorrt-cu13==10.*" diffusers transformers peft safetensors \
    huggingface_hub
"${pip[@]}" -e . onnx2torch
if "$venv/bin/python" -m pip show -q onnxruntime >/dev/null 2>&1; then  # the CPU build shadows onnxruntime-gpu
    "$venv/bin/python" -m pip uninstall -q -y onnxruntime
    "${pip[@]}" --force-reinstall --no-deps onnxruntime-gpu
fi
# onnxruntime finds libnvinfer on the library path only: the folders of the TensorRT wheel's libraries
trt_libs=$("$venv/bin/python" -c 'import pathlib, sysconfig
print(":".join(sorted({str(p.parent) for p in pathlib.Path(sysconfig.get_paths()["purelib"]).glob("*/libnvinfer.so*")})))')
[ -n "$trt_libs" ] || echo "no libnvinfer in $venv: the TensorRT rows will record the missing provider" >&2
export LD_LIBRARY_PATH="$trt_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
exec timeout 480 "$venv/bin/python" benchmarks/gpu_bench.py "$@"
