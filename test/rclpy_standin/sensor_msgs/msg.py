"""Stand-in of sensor_msgs.msg."""
import array

from standin import Message
from std_msgs.msg import Header


class Image(Message):
    _type = "sensor_msgs/msg/Image"
    _fields = {"header": (Header, Header), "height": ("int", int), "width": ("int", int), "encoding": ("str", str),
               "is_bigendian": ("int", int), "step": ("int", int), "data": ("uint8[]", lambda: array.array("B"))}


class CompressedImage(Message):
    _type = "sensor_msgs/msg/CompressedImage"
    _fields = {"header": (Header, Header), "format": ("str", str), "data": ("uint8[]", lambda: array.array("B"))}
