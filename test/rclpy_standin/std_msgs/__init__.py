"""Stand-in package (tests only; see test/rclpy_standin/README.md)."""
