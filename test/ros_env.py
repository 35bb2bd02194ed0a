"""Running real ROS 2 processes in tests: DDS kept on this machine, a ROS_DOMAIN_ID per test run.

Import this module before any ROS message package: it sets ROS_PYTHON_CHECK_FIELDS=1 (read when a
message module is imported), so a field of the wrong type raises instead of aborting in C code.

- `ROS_SKIP`: a pytest mark that skips, saying why, where real rclpy is not importable (the core runs
  on Python 3.10/3.12 may have no ROS; rclpy-intellisense has Python sources only).
- `ros_environ(domain)`: the environment of a process that starts nodes: the loopback-only Fast DDS
  profile, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, the domain, this checkout on PYTHONPATH.
- `ros_domain` fixture: puts that environment into os.environ for in-process rclpy too (a session's
  own domain in 100..199, from the pid; launch tests use 50..99).
- `RosProcess`: a child process whose stderr is collected line by line, with bounded waits.
"""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

os.environ.setdefault("ROS_PYTHON_CHECK_FIELDS", "1")

ROOT = Path(__file__).resolve().parents[1]
# The shared profile where the checkout has ../shared (as CI does), else the same file kept here.
SHARED_PROFILE = ROOT.parent / "shared" / "ros2" / "fastdds_localhost.xml"
PROFILE = SHARED_PROFILE if SHARED_PROFILE.is_file() else Path(__file__).resolve().parent / "fastdds_localhost.xml"
DOMAIN_BASE, DOMAINS = 100, 100  # this module's domains: 100..199


def _rclpy_missing() -> str:
    """Why real rclpy cannot be used here ('' when it can)."""
    try:
        importlib.import_module("rclpy.impl.implementation_singleton").rclpy_implementation
        importlib.import_module("sensor_msgs.msg")
        importlib.import_module("diagnostic_msgs.msg")
    except Exception as exc:  # noqa: BLE001 - ImportError, or a C extension that does not load
        return f"real rclpy not importable ({type(exc).__name__}: {exc}); install it with the ROS 2 wheels"
    return ""


ROS_MISSING = _rclpy_missing()
ROS_SKIP = pytest.mark.skipif(bool(ROS_MISSING), reason=ROS_MISSING)


def session_domain(offset: int = 0) -> int:
    """A ROS_DOMAIN_ID for this test session (and `offset` more for separate graphs), in 100..199."""
    return DOMAIN_BASE + (os.getpid() + offset) % DOMAINS


def ros_environ(domain: int) -> dict[str, str]:
    """Environment variables for a process that starts ROS nodes on `domain`, DDS on loopback only."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "ROS_DOMAIN_ID": str(domain), "ROS_PYTHON_CHECK_FIELDS": "1", "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def ros_domain() -> Iterator[int]:
    """This session's domain, with the loopback-only DDS environment set for in-process rclpy too."""
    domain = session_domain()
    saved = {k: os.environ.get(k) for k in ros_environ(domain)}
    os.environ.update(ros_environ(domain))
    yield domain
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class RosProcess:
    """A child process started with `ros_environ(domain)`; its stdout+stderr collected as lines."""

    def __init__(self, args: Sequence[str], domain: int, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self._proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env={**os.environ, **ros_environ(domain), **(env or {})}, cwd=ROOT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        """Wait until a line containing `text` was printed; fail (with the output) if the process ends first."""
        wait_until(lambda: any(text in line for line in self.lines) or self._proc.poll() is not None, timeout,
                   f"{text!r} not printed by {self.args}")
        assert any(text in line for line in self.lines), f"{self.args} ended before printing {text!r}:\n{self.output}"

    def signal(self, sig: int = signal.SIGINT) -> None:
        self._proc.send_signal(sig)

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, timeout: float = 30.0) -> int:
        """The exit status; the process is killed (and the test fails) if it does not end in time."""
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise AssertionError(f"{self.args} did not exit within {timeout} s:\n{self.output}") from None
        self._reader.join(5)
        return code

    def stop(self) -> None:
        """End the process if it still runs (test teardown)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def node_command(*ros_args: str) -> list[str]:
    """`python -m ldfa_ros.node --ros-args ...` with this interpreter."""
    return [sys.executable, "-m", "ldfa_ros.node", "--ros-args", *ros_args]


def node_script(*ros_args: str) -> list[str]:
    """The `ldfa_node` console script of this interpreter's environment (what `ros2 run` starts)."""
    script = Path(sys.executable).parent / "ldfa_node"
    assert script.exists(), f"{script} missing: install the package (pip install -e .)"
    return [str(script), "--ros-args", *ros_args]


def wait_until(condition: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll `condition` until true; AssertionError naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s: {what}")
        time.sleep(0.02)
