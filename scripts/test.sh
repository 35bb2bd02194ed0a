#!/usr/bin/env bash
# Set up a virtual environment with everything the tests need (a real ROS 2 Jazzy runtime included, see
# scripts/ros_setup.sh), then run them all, type-check the ROS node, and lint. Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: this version is a CPU build on this disk; an unpinned one pulls a multi-GB CUDA build.
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q -e ".[diffusion,eval,fleet,test]"
# Debian's ROS 1 rosbag reads our ROS 1 bags as an independent reader in test/test_bag_readers.py (skipped without it).
if ! /usr/bin/python3 -c "import rosbag" 2>/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq python3-rosbag >/dev/null; } || echo "test.sh: python3-rosbag not installed" >&2
fi
scripts/ros_setup.sh "$venv"
# A safety belt under the tests' own environment: DDS never leaves this machine, whatever starts a node.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
profile=../shared/ros2/fastdds_localhost.xml
[ -f "$profile" ] || profile=test/fastdds_localhost.xml  # the same file, kept for checkouts without ../shared
FASTRTPS_DEFAULT_PROFILES_FILE="$(cd "$(dirname "$profile")" && pwd)/fastdds_localhost.xml"
export FASTRTPS_DEFAULT_PROFILES_FILE
"$venv/bin/python" -m pytest test -q "$@"
"$venv/bin/python" -m mypy
"$venv/bin/python" -m flake8 ldfa_ros test benchmarks launch
