"""Stand-in of builtin_interfaces.msg."""
from standin import Message


class Time(Message):
    _type = "builtin_interfaces/msg/Time"
    _fields = {"sec": ("int", int), "nanosec": ("int", int)}
