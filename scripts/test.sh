#!/usr/bin/env bash
# Set up a virtual environment with everything the tests need, then run them all, and type-check the
# ROS node against the real rclpy sources, and lint. Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: this version is a CPU build on this disk; an unpinned one pulls a multi-GB CUDA build.
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q -e ".[diffusion,eval,fleet,test]"
"$venv/bin/python" -m pytest test -q "$@"
"$venv/bin/python" -m mypy
"$venv/bin/python" -m flake8 ldfa_ros test benchmarks launch
