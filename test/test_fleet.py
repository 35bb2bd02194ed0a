"""`ldfa fleet` on a real local Ray instance with 2 workers (started once for the module, loopback only):
bags of all three formats anonymized exactly as a single-machine `ldfa bag` does, checked with the readers
of others (Foxglove's mcap, Debian's rosbag); a worker killed mid-bag; a rerun; bad bags among good ones."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from rosbags.highlevel import AnyReader

from bags import CAMERAS, write_bag
from ldfa_ros import fleet
from ldfa_ros.bag import PARTIAL as PARTIAL_MARKER
from ldfa_ros.bag import anonymize_bag, report_path
from ldfa_ros.cli import main
from ldfa_ros.detect import CenterFace
from ldfa_ros.pipeline import Pipeline
from ldfa_ros.samples import write_sample_bag
from ldfa_ros.settings import Settings

KINDS = {"sqlite3": "drive_sqlite3", "mcap": "drive_mcap", "ros1": "drive.bag"}
DEBIAN_PYTHON = "/usr/bin/python3"  # has Debian's ROS 1 rosbag package


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    """One local Ray instance with 2 CPUs for the whole module; `ldfa fleet` in this process reuses it."""
    ray, started = fleet.connect("local", num_cpus=2)
    assert started
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, detector: CenterFace) -> dict[str, tuple[Path, Path]]:
    """kind -> (input bag, its single-machine `ldfa bag` output)."""
    root = tmp_path_factory.mktemp("fleet_in")
    out = {}
    for kind, name in KINDS.items():
        src = write_bag(root / name, kind).path
        direct = root / "direct" / name
        anonymize_bag(src, direct, Pipeline(Settings(), detector))
        out[kind] = (src, direct)
    return out


def read(path: Path) -> tuple[list[tuple], dict[str, list[tuple[int, str]]]]:
    """Connections (all but id/owner) and per topic every message's (timestamp, digest of its raw bytes:
    a failing comparison of megabytes would keep pytest's diff busy for minutes)."""
    with AnyReader([path]) as reader:
        conns = [(c.topic, c.msgtype, c.msgdef, c.digest, c.msgcount, c.ext) for c in reader.connections]
        msgs: dict[str, list[tuple[int, str]]] = {}
        for conn, ts, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((ts, hashlib.sha256(bytes(raw)).hexdigest()))
    return conns, msgs


# The realtime preset, as the direct runs use (Settings()); the offline default, recall, costs ~10x the CPU.
FAST = ["--preset", "realtime"]


def counts_by_others(path: Path) -> dict[str, int]:
    """Messages per topic as Foxglove's mcap (with its own ROS 2 decoder) or Debian's rosbag reads them."""
    if path.suffix == ".bag":
        code = ("import json, rosbag, sys; b = rosbag.Bag(sys.argv[1]); c = {}\n"
                "for topic, msg, t in b.read_messages(): c[topic] = c.get(topic, 0) + 1\n"
                "print(json.dumps(c))")
        done = subprocess.run([DEBIAN_PYTHON, "-c", code, str(path)], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    counts: dict[str, int] = {}
    with open(next(path.glob("*.mcap")), "rb") as f:
        for _, channel, _, _ in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
    return counts


def assert_like_direct(output: Path, direct: Path) -> None:
    """The fleet's output is the single-machine output: connections, every message's bytes and timestamp,
    and the report's per-topic outcome (frames, faces hidden, errors)."""
    assert read(output) == read(direct)
    mine, theirs = (json.loads(report_path(p).read_text()) for p in (output, direct))
    assert mine["image_topics"] == theirs["image_topics"]
    assert mine["image_topics_not_anonymized"] == theirs["image_topics_not_anonymized"]
    if output.suffix == ".bag" or next(output.glob("*.mcap"), None):
        assert counts_by_others(output) == counts_by_others(direct)


def leftovers(out_dir: Path, names: list[str]) -> list[str]:
    """Entries of OUT_DIR that are neither an output, its report, nor the fleet report."""
    expected = {fleet.FLEET_REPORT, fleet.LOCK, *names, *(report_path(Path(n)).name for n in names)}
    return sorted(p.name for p in out_dir.iterdir() if p.name not in expected)


def fleet_report(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / fleet.FLEET_REPORT).read_text())


def test_local_ray_listens_on_loopback_only(ray: Any) -> None:
    """Every port of this Ray node (GCS, raylet, object manager) is bound to loopback, not to all interfaces."""
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    node = ray.nodes()[0]
    ports = {node["NodeManagerPort"], node["ObjectManagerPort"],
             int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1])}
    listening: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                address, port = local.split(":")
                listening.setdefault(int(port, 16), set()).add(address)
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    for port in ports:
        assert listening.get(port), f"port {port} not listening"
        assert listening[port] <= loopback, f"port {port} listens on {listening[port]}"


def test_fleet_anonymizes_every_format_like_ldfa_bag_and_reruns_as_no_op(
        ray: Any, inputs: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    sources = [str(src) for src, _ in inputs.values()]
    assert main(["fleet", *sources, "-o", str(out), "--address", "local", "--workers", "2", *FAST]) == 0
    for src, direct in inputs.values():
        assert_like_direct(out / src.name, direct)
    assert leftovers(out, [s.name for s, _ in inputs.values()]) == []
    report = fleet_report(out)
    assert report["totals"] | {"frames_per_s": None, "frames_per_s_per_worker": None} == {
        "bags": 3, "done": 3, "skipped": 0, "failed": 0, "retried": 0, "frames": 3 * 4 * len(CAMERAS),
        "faces": 3 * 4 * len(CAMERAS), "regions": 3 * 4 * len(CAMERAS), "frame_errors": 0,
        "frames_this_run": 3 * 4 * len(CAMERAS),
        "frames_per_s": None, "frames_per_s_per_worker": None}
    assert report["resources"] == {"workers": 2, "cpus": 1.0, "gpus": 0.0}
    for bag in report["bags"]:
        assert bag["status"] == "done" and bag["attempts"] == 1 and bag["elapsed_s"] > 0
        assert bag["report"] == json.loads(report_path(Path(bag["output"])).read_text())
    assert len({bag["worker"]["pid"] for bag in report["bags"]}) == 2  # both workers took bags

    # A rerun finds every output complete and starts no worker at all; the outputs stay as they were.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in (fleet.FLEET_REPORT, fleet.LOCK)}

    def no_ray(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a rerun with nothing to do must not start Ray")

    monkeypatch.setattr(fleet, "connect", no_ray)
    assert main(["fleet", *sources, "-o", str(out), "--workers", "2", *FAST]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in (fleet.FLEET_REPORT, fleet.LOCK)} \
        == before
    assert fleet_report(out)["totals"]["skipped"] == 3
    monkeypatch.undo()

    # A partial output (a dead worker's scratch folder, its OUTPUT missing) is redone; the rest is skipped.
    mcap = inputs["mcap"][0]
    shutil.rmtree(out / mcap.name)
    scratch = out / f".{mcap.name}.ldfa-partial-4242"
    scratch.mkdir()
    (scratch / "half.mcap").write_bytes(b"half a bag")
    # Not marked as the bag tool's: a user's folder, kept, and that bag refused naming it.
    assert main(["fleet", *sources, "-o", str(out), "--workers", "2", *FAST]) == 1
    assert (scratch / "half.mcap").read_bytes() == b"half a bag"
    (scratch / PARTIAL_MARKER).write_text('{"pid": 4242}\n')  # as the bag tool marks its scratch folders
    assert main(["fleet", *sources, "-o", str(out), "--workers", "2", *FAST]) == 0
    assert leftovers(out, [s.name for s, _ in inputs.values()]) == []
    assert_like_direct(out / mcap.name, inputs["mcap"][1])
    assert {b["input"]: b["status"] for b in fleet_report(out)["bags"]} == {
        s: "done" if s == str(mcap) else "skipped" for s in sources}


def kill_first_worker_mid_bag(out_dir: Path, name: str, killed: list[int], stop: threading.Event) -> None:
    """Watch OUT_DIR for the scratch folder of bag `name` (it names the writing process) and SIGKILL that
    Ray worker while it writes."""
    while not stop.is_set() and not killed:
        for path in out_dir.glob(f".{name}.ldfa-partial-*") if out_dir.is_dir() else ():
            pid = int(path.name.rsplit("-", 1)[1])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert cmdline.startswith("ray::"), cmdline  # a Ray worker, not this test
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


def test_worker_killed_mid_bag_is_retried_elsewhere(ray: Any, inputs: dict[str, tuple[Path, Path]], tmp_path: Path,
                                                    detector: CenterFace) -> None:
    long = write_sample_bag(tmp_path / "long_drive", 8, encoding="jpeg")  # 1080p: seconds of work per worker
    direct = tmp_path / "direct" / long.name
    anonymize_bag(long, direct, Pipeline(Settings(), detector))
    out = tmp_path / "out"
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=kill_first_worker_mid_bag, args=(out, long.name, killed, stop), daemon=True)
    watcher.start()
    try:
        code = main(["fleet", str(long), str(inputs["sqlite3"][0]), "-o", str(out), "--workers", "2", *FAST])
    finally:
        stop.set()
        watcher.join()
    assert len(killed) == 1
    assert code == 0
    assert leftovers(out, [long.name, inputs["sqlite3"][0].name]) == []  # no scratch folder, no partial bag
    assert_like_direct(out / long.name, direct)
    assert_like_direct(out / inputs["sqlite3"][0].name, inputs["sqlite3"][1])
    bags = {Path(b["input"]).name: b for b in fleet_report(out)["bags"]}
    assert bags[long.name]["status"] == "done" and bags[long.name]["attempts"] == 2
    assert bags[long.name]["worker"]["pid"] != killed[0]
    assert fleet_report(out)["totals"]["retried"] == 1


def test_bad_bags_among_good_ones(ray: Any, inputs: dict[str, tuple[Path, Path]], tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    """A cut MCAP, a missing path and a bag with one corrupt image: the good bag and the corrupt image's
    bag are written, the rest fail with a line naming them; exit 1 (some failed). Only bad ones: exit 2."""
    good = inputs["ros1"][0]
    cut = tmp_path / "cut_mcap"
    shutil.copytree(inputs["mcap"][0], cut)
    file = next(cut.glob("*.mcap"))
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    damaged_image = write_bag(tmp_path / "one_bad_frame", "sqlite3", corrupt={"/cam/png": 1}).path
    missing = tmp_path / "no_such_bag"
    out = tmp_path / "out"
    code = main(["fleet", str(good), str(cut), str(missing), str(damaged_image), "-o", str(out), "--workers", "2",
                 *FAST])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{missing}: no such bag" in err and f"{cut}" in err and "truncated or corrupt" in err
    assert_like_direct(out / good.name, inputs["ros1"][1])
    status = {Path(b["input"]).name: b["status"] for b in fleet_report(out)["bags"]}
    assert status == {good.name: "done", "cut_mcap": "failed", "no_such_bag": "failed", "one_bad_frame": "done"}
    assert fleet_report(out)["totals"]["frame_errors"] == 1
    assert leftovers(out, [good.name, "one_bad_frame"]) == []  # nothing of the failed bags

    only_bad = tmp_path / "only_bad"
    assert main(["fleet", str(cut), str(missing), "-o", str(only_bad), *FAST]) == 2
    assert leftovers(only_bad, []) == []
    assert cut.is_dir() and file.stat().st_size > 0  # inputs untouched


def test_refusals(inputs: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One line each, exit 2, nothing written: two inputs with one name; a foreign OUTPUT; an OUT_DIR another
    fleet job holds; a cluster address nobody answers; no Ray installed."""
    src = inputs["sqlite3"][0]
    twin = tmp_path / "other" / src.name
    shutil.copytree(src, twin)
    assert main(["fleet", str(src), str(twin), "-o", str(tmp_path / "out")]) == 2
    assert "has the same name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    foreign = tmp_path / "mine"
    (foreign / src.name).mkdir(parents=True)
    (foreign / src.name / "notes.txt").write_text("the user's own file")
    assert main(["fleet", str(src), "-o", str(foreign)]) == 2
    assert "is not an ldfa output" in capsys.readouterr().err
    assert (foreign / src.name / "notes.txt").read_text() == "the user's own file"

    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    assert main(["fleet", str(src), "-o", str(tmp_path / "out"), "--report", str(notes)]) == 2
    assert "not an ldfa fleet report" in capsys.readouterr().err
    assert notes.read_text() == '{"mine": true}' and not (tmp_path / "out").exists()

    busy = tmp_path / "busy"
    with fleet.lock(busy):  # another fleet job holds OUT_DIR
        assert main(["fleet", str(src), "-o", str(busy)]) == 2
    assert "another ldfa fleet job is writing here" in capsys.readouterr().err
    assert sorted(p.name for p in busy.iterdir()) == [fleet.LOCK]

    with pytest.raises(fleet.FleetError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        fleet._check_reachable("127.0.0.1:1")  # nothing listens there: seconds, not Ray's minutes of retries

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the extra
    assert main(["fleet", str(src), "-o", str(tmp_path / "no_ray")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'ldfa_ros[fleet]'" in lines[0], lines


def alive(pid: int) -> bool:
    """A running process (a zombie has no command line left)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_sigterm_stops_the_job_and_leaves_nothing_partial(tmp_path: Path) -> None:
    """`ldfa fleet` as a batch job hit by its time limit: SIGTERM while a worker writes; exit 143, the
    worker gone, no scratch folder, and a report saying what happened. (Its own Ray start, as a user's.)"""
    long = write_sample_bag(tmp_path / "long_drive", 8, encoding="jpeg")
    out = tmp_path / "out"
    job = subprocess.Popen([sys.executable, "-m", "ldfa_ros.cli", "fleet", str(long), "-o", str(out), "--workers", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        scratch: list[Path] = []
        while not scratch and job.poll() is None and time.monotonic() < deadline:
            scratch = list(out.glob(f".{long.name}.ldfa-partial-*")) if out.is_dir() else []
            time.sleep(0.02)
        assert scratch, "the worker never started writing"
        worker = int(scratch[0].name.rsplit("-", 1)[1])
        job.send_signal(signal.SIGTERM)
        _, err = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 143, err
    assert "interrupted" in err
    assert leftovers(out, []) == []
    for _ in range(100):  # Ray's shutdown ends its workers within moments
        if not alive(worker):
            break
        time.sleep(0.1)
    assert not alive(worker), "the worker outlived the job"
    bags = fleet_report(out)["bags"]
    assert [(b["status"], b["error"]) for b in bags] == [("failed", f"{long}: interrupted")]
