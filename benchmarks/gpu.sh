#!/usr/bin/env bash
# The GPU check in one command, on an H100/H200 machine with an NVIDIA driver (r580+, CUDA 13) and PyPI:
# makes .venv-gpu, installs the CUDA builds of torch and onnxruntime (with TensorRT) and the diffusion
# packages, then runs benchmarks/gpu_bench.py (detector, diffusion grid, node path; outputs checked
# anonymized), which writes benchmarks/results/gpu_bench.json. 8 minutes in all (TOTAL_S=480): the run gets
# what installing left (a second run reuses .venv-gpu); rows that would not fit are recorded as skipped.
#   benchmarks/gpu.sh              # on the GPU machine (without a reachable package index: as --offline)
#   benchmarks/gpu.sh --dry-run    # anywhere: CPU only, tiny models, in the current Python (CI runs this)
#   benchmarks/gpu.sh --offline    # a GPU machine with no package index whose python3 has CUDA torch:
#                                  # the wheels that python lacks, fetched beforehand by
#                                  # benchmarks/gpu_wheels.sh into .whl/, are unpacked into /tmp/ldfa-site
set -euo pipefail
cd "$(dirname "$0")/.."
total=${TOTAL_S:-480}  # the whole check, installing included, fits 8 minutes of GPU time
bench() {  # runs gpu_bench.py with `$1` in what is left of $total (its rows stop a minute before the end)
    local left=$(( total - SECONDS ))
    (( left >= 180 )) || { echo "installing took ${SECONDS}s: running for 180s, past ${total}s" >&2; left=180; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    exec timeout "$left" "$1" benchmarks/gpu_bench.py --time-budget-s $(( left - 75 )) "${@:2}"
}
if [ "${1:-}" = "--dry-run" ]; then
    exec "${PYTHON:-python3}" benchmarks/gpu_bench.py "$@"
fi
probe=$(mktemp -d)
if [ "${1:-}" != "--offline" ] && ! timeout 60 "${PYTHON:-python3}" -m pip download -q --no-deps -d "$probe" pip \
        >/dev/null 2>&1; then  # a GPU machine with no way out: what its Python has, plus .whl/ if carried
    echo "no package index reachable from here: running as --offline" >&2
    set -- --offline "$@"
fi
rm -rf "$probe"
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
    bench "$python" "$@"
fi
venv=${VENV:-.venv-gpu}
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q)
"${pip[@]}" --upgrade pip
# PyPI's Linux torch wheels are CUDA builds (TORCH_INDEX picks another index). PyPI's onnxruntime-gpu is built
# for CUDA 13 (driver r580+) and TensorRT 10: its extras bring CUDA/cuDNN; TensorRT 10 for CUDA 13 (11 would not
# load) comes from NVIDIA's index. Without it the TensorRT rows record the missing provider; the rest still runs.
"${pip[@]}" torch ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
"${pip[@]}" "onnxruntime-gpu[cuda,cudnn]" diffusers transformers peft safetensors huggingface_hub
"${pip[@]}" -e . onnx2torch
"${pip[@]}" --extra-index-url https://pypi.nvidia.com "tensorrt-cu13-libs==10.*" \
    || echo "TensorRT 10 (tensorrt-cu13-libs) not installed: the TensorRT rows will record the missing provider" >&2
if "$venv/bin/python" -m pip show -q onnxruntime >/dev/null 2>&1; then  # the CPU build shadows onnxruntime-gpu
    "$venv/bin/python" -m pip uninstall -q -y onnxruntime
    "${pip[@]}" --force-reinstall --no-deps onnxruntime-gpu
fi
# onnxruntime finds libnvinfer on the library path only: the folders of the TensorRT wheel's libraries
trt_libs=$("$venv/bin/python" -c 'import pathlib, sysconfig
print(":".join(sorted({str(p.parent) for p in pathlib.Path(sysconfig.get_paths()["purelib"]).glob("*/libnvinfer.so*")})))')
[ -n "$trt_libs" ] || echo "no libnvinfer in $venv: the TensorRT rows will record the missing provider" >&2
export LD_LIBRARY_PATH="$trt_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bench "$venv/bin/python" "$@"
