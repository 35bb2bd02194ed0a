"""Stand-in of vision_msgs.msg 4.x (Humble, Jazzy)."""
from geometry_msgs.msg import PoseWithCovariance
from standin import Message
from std_msgs.msg import Header


class Point2D(Message):
    _type = "vision_msgs/msg/Point2D"
    _fields = {"x": ("float", float), "y": ("float", float)}


class Pose2D(Message):
    _type = "vision_msgs/msg/Pose2D"
    _fields = {"position": (Point2D, Point2D), "theta": ("float", float)}


class BoundingBox2D(Message):
    _type = "vision_msgs/msg/BoundingBox2D"
    _fields = {"center": (Pose2D, Pose2D), "size_x": ("float", float), "size_y": ("float", float)}


class ObjectHypothesis(Message):
    _type = "vision_msgs/msg/ObjectHypothesis"
    _fields = {"class_id": ("str", str), "score": ("float", float)}


class ObjectHypothesisWithPose(Message):
    _type = "vision_msgs/msg/ObjectHypothesisWithPose"
    _fields = {"hypothesis": (ObjectHypothesis, ObjectHypothesis), "pose": (PoseWithCovariance, PoseWithCovariance)}


class Detection2D(Message):
    _type = "vision_msgs/msg/Detection2D"
    _fields = {"header": (Header, Header), "results": ([ObjectHypothesisWithPose], list),
               "bbox": (BoundingBox2D, BoundingBox2D), "id": ("str", str)}


class Detection2DArray(Message):
    _type = "vision_msgs/msg/Detection2DArray"
    _fields = {"header": (Header, Header), "detections": ([Detection2D], list)}
