"""Stand-in of diagnostic_msgs.msg."""
from standin import Message
from std_msgs.msg import Header


class KeyValue(Message):
    _type = "diagnostic_msgs/msg/KeyValue"
    _fields = {"key": ("str", str), "value": ("str", str)}


class DiagnosticStatus(Message):
    _type = "diagnostic_msgs/msg/DiagnosticStatus"
    OK, WARN, ERROR, STALE = b"\x00", b"\x01", b"\x02", b"\x03"
    _fields = {"level": ("byte", lambda: b"\x00"), "name": ("str", str), "message": ("str", str),
               "hardware_id": ("str", str), "values": ([KeyValue], list)}


class DiagnosticArray(Message):
    _type = "diagnostic_msgs/msg/DiagnosticArray"
    _fields = {"header": (Header, Header), "status": ([DiagnosticStatus], list)}
