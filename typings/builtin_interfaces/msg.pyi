class Time:
    sec: int
    nanosec: int
    def __init__(self, *, sec: int = ..., nanosec: int = ...) -> None: ...
