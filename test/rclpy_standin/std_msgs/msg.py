"""Stand-in of std_msgs.msg."""
from builtin_interfaces.msg import Time
from standin import Message


class Header(Message):
    _type = "std_msgs/msg/Header"
    _fields = {"stamp": (Time, Time), "frame_id": ("str", str)}
