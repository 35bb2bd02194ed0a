"""`ldfa bag` when writing fails or the run is killed: exit 2 with one line, nothing left at OUTPUT, the
input unchanged, and no partial folder that a later run would not clean."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from rosbags.highlevel import AnyReader

from bags import write_bag
from ldfa_ros.bag import PARTIAL, BagError, anonymize_bag
from ldfa_ros.detect import CenterFace
from ldfa_ros.pipeline import Pipeline
from ldfa_ros.settings import Settings
from ldfa_ros.samples import write_sample_bag
from test_bag_readers import tree_digest

KINDS = {"sqlite3": "bag_sqlite3", "mcap": "bag_mcap", "ros1": "bag.bag"}
CLI = [sys.executable, "-m", "ldfa_ros.cli", "bag"]


@contextlib.contextmanager
def small_disk(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes at `path` (needs root, as in CI's container); skipped where it cannot be mounted."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); test_file_size_limit covers it")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def output_name(kind: str) -> str:
    return "out.bag" if kind == "ros1" else "out"


def assert_one_line_exit_2(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if "%|" not in line and line.strip()]  # less tqdm
    assert len(lines) == 1 and "cannot write the bag" in lines[0] and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_full_disk_exits_2_and_leaves_nothing(tmp_path: Path, kind: str) -> None:
    """A tmpfs too small for the output. sqlite3 gets room for a copy of its input but not for rewriting the
    images (its journal: sqlite's 'database or disk is full'); the others half their input."""
    src = write_bag(tmp_path / KINDS[kind], kind).path
    before = tree_digest(src)
    size = sum(v.stat().st_size for v in ([src] if src.is_file() else src.iterdir()))
    with small_disk(tmp_path / "disk", size + 64 * 1024 if kind == "sqlite3" else size // 2) as disk:
        done = subprocess.run([*CLI, str(src), "-o", str(disk / output_name(kind))], capture_output=True, text=True)
        assert_one_line_exit_2(done)
        assert list(disk.iterdir()) == []
    assert tree_digest(src) == before


@pytest.mark.parametrize("kind", KINDS)
def test_file_size_limit_exits_2_and_leaves_nothing(tmp_path: Path, kind: str) -> None:
    """The same without mounting: RLIMIT_FSIZE makes every write past 256 KiB fail with EFBIG."""
    src = write_bag(tmp_path / KINDS[kind], kind).path
    before = tree_digest(src)
    out = tmp_path / "out"
    out.mkdir()
    limit = 256 * 1024
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            "from ldfa_ros.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "bag", str(src), "-o", str(out / output_name(kind))],
                          capture_output=True, text=True)
    assert_one_line_exit_2(done)
    assert list(out.iterdir()) == []
    assert tree_digest(src) == before


def start_and_wait_for_partial(src: Path, dst: Path) -> subprocess.Popen:
    child = subprocess.Popen([*CLI, str(src), "-o", str(dst)], stderr=subprocess.PIPE, text=True)
    while not list(dst.parent.glob(f".{dst.name}.ldfa-partial-*/.ldfa-partial")) and child.poll() is None:
        time.sleep(0.02)
    assert child.poll() is None, "the run ended before it could be interrupted"
    return child


def test_kill_9_then_rerun_leaves_no_stale_partial(tmp_path: Path) -> None:
    src = write_sample_bag(tmp_path / "in", 30, encoding="jpeg")
    dst = tmp_path / "out"
    child = start_and_wait_for_partial(src, dst)
    child.kill()
    child.communicate(timeout=60)
    stale = list(tmp_path.glob(".out.ldfa-partial-*"))
    assert len(stale) == 1, "SIGKILL cannot be cleaned up after by the run itself"
    write_sample_bag(tmp_path / "small", 2, encoding="jpeg")
    done = subprocess.run([*CLI, str(tmp_path / "small"), "-o", str(dst)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"removed {stale[0]}" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.ldfa_report.json", "small"]


def test_unmarked_partial_folder_is_named_and_refused(tmp_path: Path) -> None:
    src = write_sample_bag(tmp_path / "in", 2, encoding="jpeg")
    foreign = tmp_path / ".out.ldfa-partial-1"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ldfa's")
    done = subprocess.run([*CLI, str(src), "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2 and str(foreign) in done.stderr and "Traceback" not in done.stderr
    assert (foreign / "notes.txt").read_text() == "not ldfa's" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    """A batch job's time limit (SIGTERM) or a closed ssh session (SIGHUP) mid-run: exit 128+signal,
    nothing at OUTPUT, no partial folder."""
    src = write_sample_bag(tmp_path / "in", 30, encoding="jpeg")
    child = start_and_wait_for_partial(src, tmp_path / "out")
    os.kill(child.pid, sig)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + sig, err
    assert "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_killed_runs_partial_with_our_own_pid_is_cleaned(tmp_path: Path) -> None:
    """In a container every run can have the same pid (1): a killed run's marked partial then carries the
    pid of the run that finds it, which is not alive as another run."""
    src = write_sample_bag(tmp_path / "in", 2, encoding="jpeg")
    stale = tmp_path / f".out.ldfa-partial-{os.getpid()}"
    stale.mkdir()
    (stale / PARTIAL).write_text(f'{{"pid": {os.getpid()}}}\n')
    anonymize_bag(src, tmp_path / "out", Pipeline(Settings(), CenterFace()))
    assert not stale.exists() and (tmp_path / "out").is_dir()


def test_an_unmarked_folder_named_like_our_scratch_is_kept(tmp_path: Path) -> None:
    src = write_sample_bag(tmp_path / "in", 2, encoding="jpeg")
    foreign = tmp_path / f".out.ldfa-partial-{os.getpid()}"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ldfa's")
    with pytest.raises(BagError, match="not marked"):
        anonymize_bag(src, tmp_path / "out", Pipeline(Settings(), CenterFace()))
    assert (foreign / "notes.txt").read_text() == "not ldfa's"


@pytest.mark.parametrize("marker", [None, b""])
def test_a_partial_folder_killed_before_its_marker_is_removed(tmp_path: Path, marker: bytes | None) -> None:
    """A run killed between making its scratch folder and writing its marker leaves it empty (or holding an
    empty marker): the next run removes it instead of refusing it, unless the run its name gives is alive."""
    src = write_sample_bag(tmp_path / "in", 2, encoding="jpeg")

    def unmarked(out: str, pid: int) -> Path:
        folder = tmp_path / f".{out}.ldfa-partial-{pid}"
        folder.mkdir()
        if marker is not None:
            (folder / PARTIAL).write_bytes(marker)
        return folder

    killed = subprocess.Popen(["true"])
    killed.wait()
    unmarked("out", killed.pid)
    anonymize_bag(src, tmp_path / "out", Pipeline(Settings(), CenterFace()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.ldfa_report.json"]
    with subprocess.Popen(["sleep", "60"]) as alive:
        try:
            busy = unmarked("busy", alive.pid)
            with pytest.raises(BagError, match=f"another ldfa bag run \\(pid {alive.pid}\\)"):
                anonymize_bag(src, tmp_path / "busy", Pipeline(Settings(), CenterFace()))
            assert busy.is_dir()
        finally:
            alive.kill()


@pytest.mark.parametrize("mode", ["file", "message"])
def test_compressed_rosbag2_to_a_bare_file_is_refused(tmp_path: Path, mode: str) -> None:
    """A bare .db3 has no metadata.yaml to say how its rows are compressed: refused, unless decompressed."""
    src = write_bag(tmp_path / "in", "sqlite3", compression=mode).path
    done = subprocess.run([*CLI, str(src), "-o", str(tmp_path / "out.db3")], capture_output=True, text=True)
    assert done.returncode == 2 and "metadata.yaml" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out.db3").exists()
    done = subprocess.run([*CLI, str(src), "-o", str(tmp_path / "out.db3"), "--compression", "none"],
                          capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    with AnyReader([tmp_path / "out.db3"]) as reader:
        assert sum(1 for _ in reader.messages()) > 0
