"""Start ldfa_node.

    ros2 launch ldfa_ros ldfa.launch.py cameras:=/cam_front/image_raw,/cam_rear/image_raw/compressed

Arguments: params_file (default: this package's config/ldfa.yaml), namespace, and the parameters in
`ldfa_ros.node_config.LAUNCH_ARGUMENTS`; an empty argument leaves the value to params_file.
"""
from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ldfa_ros.node_config import LAUNCH_ARGUMENTS, launch_overrides, parameters


def arguments() -> list[DeclareLaunchArgument]:
    """The launch arguments shared with record.launch.py."""
    described = {spec.name: spec.description for spec in parameters()}
    default_params = os.path.join(get_package_share_directory("ldfa_ros"), "config", "ldfa.yaml")
    return [DeclareLaunchArgument("params_file", default_value=default_params,
                                  description="ROS 2 params file for ldfa_node"),
            DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
            *(DeclareLaunchArgument(name, default_value="", description=described[name])
              for name in LAUNCH_ARGUMENTS)]


def node(context: LaunchContext, extra: dict[str, object] | None = None) -> Node:
    """ldfa_node with params_file, the non-empty launch arguments and then EXTRA on top."""
    overrides = launch_overrides({name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS})
    overrides.update(extra or {})
    return Node(package="ldfa_ros", executable="ldfa_node", name="ldfa_node",
                namespace=LaunchConfiguration("namespace").perform(context),
                parameters=[LaunchConfiguration("params_file").perform(context), overrides],
                output="screen", emulate_tty=True)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*arguments(), OpaqueFunction(function=lambda context: [node(context)])])
