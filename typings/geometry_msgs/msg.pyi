import array

class Point:
    x: float
    y: float
    z: float

class Quaternion:
    x: float
    y: float
    z: float
    w: float

class Pose:
    position: Point
    orientation: Quaternion

class PoseWithCovariance:
    pose: Pose
    covariance: array.array[float]
