"""Stand-in of geometry_msgs.msg (what vision_msgs' hypotheses contain)."""
import array

from standin import Message


class Point(Message):
    _type = "geometry_msgs/msg/Point"
    _fields = {"x": ("float", float), "y": ("float", float), "z": ("float", float)}


class Quaternion(Message):
    _type = "geometry_msgs/msg/Quaternion"
    _fields = {"x": ("float", float), "y": ("float", float), "z": ("float", float), "w": ("float", lambda: 1.0)}


class Pose(Message):
    _type = "geometry_msgs/msg/Pose"
    _fields = {"position": (Point, Point), "orientation": (Quaternion, Quaternion)}


class PoseWithCovariance(Message):
    _type = "geometry_msgs/msg/PoseWithCovariance"
    _fields = {"pose": (Pose, Pose), "covariance": ("float[]", lambda: array.array("d", [0.0] * 36))}
