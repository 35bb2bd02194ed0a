#!/usr/bin/env bash
# The core install (no torch) and its tests on the Pythons of ROS 2 Humble (3.10) and Jazzy (3.12).
# Usage: scripts/test_core.sh 3.10 3.12
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything but the tests of the diffusion, eval and fleet extras (torch, diffusers, dlib, ray).
extras_tests=(--ignore=test/test_ldfa.py --ignore=test/test_eval.py --ignore=test/test_gpu_dry_run.py --ignore=test/test_fleet.py)
# Full disk, kill -9 and signals are the OS's behaviour, not the Python's: test.sh runs them once.
extras_tests+=(--ignore=test/test_bag_safety.py)
for version in "$@"; do
  python=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -1)
  python=${python:-$(command -v "python$version")}
  venv=".venv-py$version"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -e ".[test]"
  echo "== core tests on $("$venv/bin/python" --version)"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "${extras_tests[@]}" test
done
