import array
from typing import Sequence

from std_msgs.msg import Header

class Image:
    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: array.array[int]
    def __init__(self, *, header: Header = ..., height: int = ..., width: int = ..., encoding: str = ...,
                 is_bigendian: int = ..., step: int = ..., data: array.array[int] | bytes | Sequence[int] = ...) -> None: ...

class CompressedImage:
    header: Header
    format: str
    data: array.array[int]
    def __init__(self, *, header: Header = ..., format: str = ...,
                 data: array.array[int] | bytes | Sequence[int] = ...) -> None: ...
