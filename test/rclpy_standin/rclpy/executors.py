"""Stand-in of rclpy.executors (the exception the node catches)."""


class ExternalShutdownException(Exception):
    """Raised by an executor when the context was shut down from outside."""
