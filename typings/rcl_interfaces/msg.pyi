from typing import Any, ClassVar

class ParameterType:
    PARAMETER_NOT_SET: ClassVar[int]
    PARAMETER_BOOL: ClassVar[int]
    PARAMETER_INTEGER: ClassVar[int]
    PARAMETER_DOUBLE: ClassVar[int]
    PARAMETER_STRING: ClassVar[int]
    PARAMETER_BYTE_ARRAY: ClassVar[int]
    PARAMETER_BOOL_ARRAY: ClassVar[int]
    PARAMETER_INTEGER_ARRAY: ClassVar[int]
    PARAMETER_DOUBLE_ARRAY: ClassVar[int]
    PARAMETER_STRING_ARRAY: ClassVar[int]
    type: int

class FloatingPointRange:
    from_value: float
    to_value: float
    step: float
    def __init__(self, *, from_value: float = ..., to_value: float = ..., step: float = ...) -> None: ...

class IntegerRange:
    from_value: int
    to_value: int
    step: int
    def __init__(self, *, from_value: int = ..., to_value: int = ..., step: int = ...) -> None: ...

class ParameterDescriptor:
    name: str
    type: int
    description: str
    additional_constraints: str
    read_only: bool
    dynamic_typing: bool
    floating_point_range: list[FloatingPointRange]
    integer_range: list[IntegerRange]
    def __init__(self, *, name: str = ..., type: int = ..., description: str = ..., additional_constraints: str = ...,
                 read_only: bool = ..., dynamic_typing: bool = ..., floating_point_range: list[FloatingPointRange] = ...,
                 integer_range: list[IntegerRange] = ...) -> None: ...

class SetParametersResult:
    successful: bool
    reason: str
    def __init__(self, *, successful: bool = ..., reason: str = ...) -> None: ...

# Used by rclpy's own sources; their fields are not needed by the node.
class Parameter:
    def __init__(self, **kwargs: Any) -> None: ...
    def __getattr__(self, name: str) -> Any: ...

class ParameterValue:
    def __init__(self, **kwargs: Any) -> None: ...
    def __getattr__(self, name: str) -> Any: ...

class ParameterEvent:
    def __init__(self, **kwargs: Any) -> None: ...
    def __getattr__(self, name: str) -> Any: ...
