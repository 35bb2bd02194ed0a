"""Start ldfa_node and `ros2 bag record` of its anonymized topics, never the raw camera topics.

    ros2 launch ldfa_ros record.launch.py cameras:=/cam_front/image_raw bag:=drive_0001 \
        extra_topics:=/tf,/tf_static,/diagnostics

The topic list comes from `ldfa_ros.record.record_topics` (the anonymized outputs, detections when
published, and extra_topics minus any raw camera topic); excluded topics are logged.
`recorder:=node` has the node write the bag itself (its `record_path`: anonymized outputs and detections
only), for installs without rosbag2 (it has no PyPI wheels).
"""
from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from launch import LaunchContext, LaunchDescription
from launch.action import Action
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from ldfa_ros.node_config import LAUNCH_ARGUMENTS, effective_parameters, launch_overrides, split_list
from ldfa_ros.record import bag_record_command, record_topics


def _ldfa_launch() -> ModuleType:
    """The sibling ldfa.launch.py (launch files are not a Python package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ldfa.launch.py")
    spec = importlib.util.spec_from_file_location("ldfa_launch", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _actions(context: LaunchContext) -> list[Action]:
    ldfa = _ldfa_launch()
    overrides = launch_overrides({name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS})
    values = effective_parameters(LaunchConfiguration("params_file").perform(context), overrides)
    namespace = LaunchConfiguration("namespace").perform(context) or "/"
    topic_args = dict(output_suffix=values["output_suffix"], detections_suffix=values["detections_suffix"],
                      publish_detections=values["publish_detections"],
                      namespace=namespace if namespace.startswith("/") else "/" + namespace)
    extra_topics = split_list(LaunchConfiguration("extra_topics").perform(context))
    plan = record_topics(values["cameras"], extra_topics=extra_topics, **topic_args)
    actions: list[Action] = [ldfa.node(context)]
    if plan.excluded:
        actions.append(LogInfo(msg="not recording raw camera topics: " + ", ".join(plan.excluded)))
    bag = LaunchConfiguration("bag").perform(context)
    if LaunchConfiguration("recorder").perform(context) == "node":
        others = [t for t in plan.topics if t not in record_topics(values["cameras"], **topic_args).topics]
        if others:
            raise ValueError(f"recorder:=node records only the node's outputs, not {', '.join(others)}: "
                             "use recorder:=ros2bag for other topics")
        actions[0] = ldfa.node(context, {"record_path": bag})
    else:
        actions.append(ExecuteProcess(cmd=bag_record_command(bag, plan.topics), output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *_ldfa_launch().arguments(),
        DeclareLaunchArgument("bag", description="output bag folder (must not exist)"),
        DeclareLaunchArgument("extra_topics", default_value="",
                              description="other topics to record (comma-separated); raw camera topics are "
                                          "dropped from this list"),
        DeclareLaunchArgument("recorder", default_value="ros2bag", choices=["ros2bag", "node"],
                              description="who writes the bag: `ros2 bag record` (any topics), or the node itself "
                                          "(its anonymized outputs only; no rosbag2 needed)"),
        OpaqueFunction(function=_actions),
    ])
