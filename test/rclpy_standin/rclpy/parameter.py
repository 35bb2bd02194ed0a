"""Stand-in of rclpy.parameter.Parameter."""
from __future__ import annotations

import array
from enum import Enum
from typing import Any


class Parameter:
    class Type(Enum):
        NOT_SET, BOOL, INTEGER, DOUBLE, STRING = 0, 1, 2, 3, 4
        BYTE_ARRAY, BOOL_ARRAY, INTEGER_ARRAY, DOUBLE_ARRAY, STRING_ARRAY = 5, 6, 7, 8, 9

        @classmethod
        def from_parameter_value(cls, value: Any) -> Parameter.Type:
            """As rclpy: the type follows the Python type (an empty list counts as a byte array)."""
            if value is None:
                return cls.NOT_SET
            for kind, typ in ((bool, cls.BOOL), (int, cls.INTEGER), (float, cls.DOUBLE), (str, cls.STRING)):
                if isinstance(value, kind):
                    return typ
            if isinstance(value, (list, tuple, array.array)):
                for kind, typ in ((bytes, cls.BYTE_ARRAY), (bool, cls.BOOL_ARRAY), (int, cls.INTEGER_ARRAY),
                                  (float, cls.DOUBLE_ARRAY), (str, cls.STRING_ARRAY)):
                    if all(isinstance(v, kind) for v in value):
                        return typ
            raise TypeError(f"The given value is not one of the allowed types '{value}'.")

    def __init__(self, name: str, type_: Parameter.Type | None = None, value: Any = None) -> None:
        self.name = name
        self.type_ = Parameter.Type.from_parameter_value(value) if type_ is None else type_
        self.value = value
