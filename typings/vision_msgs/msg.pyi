from geometry_msgs.msg import PoseWithCovariance
from std_msgs.msg import Header

class Point2D:
    x: float
    y: float

class Pose2D:
    position: Point2D
    theta: float

class BoundingBox2D:
    center: Pose2D
    size_x: float
    size_y: float

class ObjectHypothesis:
    class_id: str
    score: float

class ObjectHypothesisWithPose:
    hypothesis: ObjectHypothesis
    pose: PoseWithCovariance
    def __init__(self, *, hypothesis: ObjectHypothesis = ..., pose: PoseWithCovariance = ...) -> None: ...

class Detection2D:
    header: Header
    results: list[ObjectHypothesisWithPose]
    bbox: BoundingBox2D
    id: str
    def __init__(self, *, header: Header = ..., results: list[ObjectHypothesisWithPose] = ...,
                 bbox: BoundingBox2D = ..., id: str = ...) -> None: ...

class Detection2DArray:
    header: Header
    detections: list[Detection2D]
    def __init__(self, *, header: Header = ..., detections: list[Detection2D] = ...) -> None: ...
