"""Stand-in of rcl_interfaces.msg (parameter descriptors and results)."""
from standin import Message


class ParameterType:
    PARAMETER_NOT_SET, PARAMETER_BOOL, PARAMETER_INTEGER, PARAMETER_DOUBLE, PARAMETER_STRING = 0, 1, 2, 3, 4
    PARAMETER_BYTE_ARRAY, PARAMETER_BOOL_ARRAY, PARAMETER_INTEGER_ARRAY = 5, 6, 7
    PARAMETER_DOUBLE_ARRAY, PARAMETER_STRING_ARRAY = 8, 9


class FloatingPointRange(Message):
    _type = "rcl_interfaces/msg/FloatingPointRange"
    _fields = {"from_value": ("float", float), "to_value": ("float", float), "step": ("float", float)}


class IntegerRange(Message):
    _type = "rcl_interfaces/msg/IntegerRange"
    _fields = {"from_value": ("int", int), "to_value": ("int", int), "step": ("int", int)}


class ParameterDescriptor(Message):
    _type = "rcl_interfaces/msg/ParameterDescriptor"
    _fields = {"name": ("str", str), "type": ("int", int), "description": ("str", str),
               "additional_constraints": ("str", str), "read_only": ("bool", bool),
               "dynamic_typing": ("bool", bool), "floating_point_range": ([FloatingPointRange], list),
               "integer_range": ([IntegerRange], list)}


class SetParametersResult(Message):
    _type = "rcl_interfaces/msg/SetParametersResult"
    _fields = {"successful": ("bool", bool), "reason": ("str", str)}
