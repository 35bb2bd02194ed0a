"""Fleet scale: `ldfa fleet` anonymizes many bags on a Ray cluster, one whole bag per worker at a time.

A worker is a Ray actor that builds the pipeline (detector, renderers, diffusion weights) once, then runs
the bag tool's `anonymize_bag` on bag after bag, each with fresh trackers. Outputs go to OUT_DIR/<input
name> by the bag tool's atomic rule (written in a hidden scratch folder beside OUTPUT, renamed into place
when complete), so OUT_DIR holds complete bags and, after a worker died, its scratch folder: the driver
removes that and gives the bag to another worker. A rerun skips every bag whose output and report exist.
Only paths and reports travel through Ray, never pixels; nothing is written outside OUT_DIR.
"""
from __future__ import annotations

import argparse
import fcntl
import glob
import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Sequence

from tqdm import tqdm

from .bag import PARTIAL as BAG_MARKER
from .bag import BagError, anonymize_bag, check_paths, report_path
from .cli import add_settings_arguments, at_least, settings_from_args, write_json
from .pipeline import Pipeline, build_pipeline
from .settings import Settings

log = logging.getLogger("ldfa_ros.fleet")

INSTALL = "pip install 'ldfa_ros[fleet]'"
PARTIAL = ".{name}.ldfa-partial-*"  # the bag tool's scratch folders beside OUTPUT (bag.anonymize_bag)
FLEET_REPORT = "ldfa_fleet_report.json"
LOCK = ".ldfa_fleet.lock"  # held by the driver: one fleet job per OUT_DIR, as it removes dead workers' scratch
# Ray picks loopback for a local instance (and listens on it only) when it thinks it cannot form a cluster.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class FleetError(ValueError):
    """A fleet job that cannot start: no Ray, no cluster, a cluster too small, clashing output names."""


@dataclass
class BagJob:
    """One input bag of the job and what became of it: pending, running, done, skipped or failed."""

    source: Path
    output: Path
    status: str = "pending"
    attempts: int = 0
    overwrite: bool = False
    worker: dict[str, Any] | None = None
    elapsed_s: float | None = None
    error: str | None = None
    report: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        return {"input": str(self.source), "output": str(self.output), "status": self.status,
                "attempts": self.attempts, "worker": self.worker, "elapsed_s": self.elapsed_s, "error": self.error,
                "report": self.report}


class BagWorker:
    """A Ray actor's state: the pipeline, loaded once, and the bag tool run on one bag per call."""

    def __init__(self, settings: Settings, threads: int) -> None:
        self.loaded = build_pipeline(settings, detector_threads=threads)  # its share of the node, not every core
        self.where = {"host": socket.gethostname(), "pid": os.getpid()}

    def anonymize(self, source: str, output: str, topics: list[str] | None, jobs: int,
                  overwrite: bool) -> dict[str, Any]:
        """`ldfa bag SOURCE -o OUTPUT`: its report, or the one-line error of a bag it refused."""
        p = self.loaded
        pipeline = Pipeline(p.settings, p.detector, p.renderers, p.planner)  # fresh trackers and counters
        start = time.perf_counter()
        result: dict[str, Any] = {"worker": self.where}
        try:
            result["report"] = anonymize_bag(Path(source), Path(output), pipeline, topics=topics, jobs=jobs,
                                             overwrite=overwrite)
        except (BagError, OSError, ValueError) as exc:  # the bag's own fault; the worker goes on
            result["error"] = str(exc)
        result["elapsed_s"] = round(time.perf_counter() - start, 2)
        return result


def connect(address: str, num_cpus: int | None = None, verbose: bool = False) -> tuple[ModuleType, bool]:
    """Ray, connected: to a new instance on this machine (address 'local', loopback only) or to a running
    cluster ('auto' or HOST:PORT). A process already connected keeps its connection. Also says whether
    this call started it (and so should shut it down)."""
    local = address == "local"
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")  # read by Ray at import
    try:
        import ray
    except ImportError as exc:
        raise FleetError(f"Ray is not installed ({exc}); install the extra: {INSTALL}") from exc
    if ray.is_initialized():
        return ray, False
    if not local:
        _check_reachable(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose,
                               "logging_level": logging.INFO if verbose else logging.WARNING}
    try:
        if local:
            ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FleetError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc
    if local and ray.util.get_node_ip_address() not in ("127.0.0.1", "::1"):
        ray.shutdown()
        raise FleetError(f"a local Ray instance would listen beyond loopback ({LOCAL_ONLY_ENV} is set to "
                         f"{os.environ.get(LOCAL_ONLY_ENV)!r}); unset it, or start a cluster and pass --address")
    return ray, True


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes of Ray's retries, when HOST:PORT does not answer."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # 'auto', or a ray:// client address: Ray resolves it and says what is wrong
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise FleetError(f"cannot reach the Ray cluster at {address}: {exc}") from exc


def lock(out_dir: Path) -> IO[str]:
    """OUT_DIR, created and locked for this job (until the returned file is closed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handle = open(out_dir / LOCK, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FleetError(f"{out_dir}: another ldfa fleet job is writing here") from None
    return handle


def plan(sources: Sequence[Path], out_dir: Path, overwrite: bool = False) -> list[BagJob]:
    """A job per input, OUTPUT = OUT_DIR/<input name> (absolute paths: workers may run elsewhere); failed
    when it cannot be read or written there. FleetError when two inputs share a name."""
    jobs: list[BagJob] = []
    seen: dict[str, Path] = {}
    for given in sources:
        source = Path(os.path.abspath(given))
        if source.name in seen:
            raise FleetError(f"{given}: another input, {seen[source.name]}, has the same name; each input's "
                             "output is OUT_DIR/<its name>")
        seen[source.name] = source
        job = BagJob(source, out_dir / source.name, overwrite=overwrite)
        jobs.append(job)
        try:
            check_paths(source, job.output, overwrite=True)
        except (OSError, ValueError) as exc:
            job.status, job.error = "failed", str(exc)
    return jobs


def take_stock(jobs: list[BagJob]) -> None:
    """Before work starts (OUT_DIR locked): remove scratch folders of dead workers; skip bags whose
    complete output exists (unless overwriting)."""
    for job in jobs:
        if job.status == "pending":
            remove_partials(job.output)
            if not job.overwrite:
                _check_existing(job)


def _check_existing(job: BagJob) -> None:
    """Skip a bag whose output and report (naming this input) exist; refuse an OUTPUT ldfa did not finish."""
    if not (job.output.exists() or job.output.is_symlink()):
        return
    report = None
    try:
        report = _read_report(report_path(job.output))
    except (OSError, ValueError):
        pass
    if report is None:
        job.status = "failed"
        job.error = (f"{job.output} exists without its report {report_path(job.output).name}, so it is not a "
                     "finished ldfa output; move it away")
    elif os.path.abspath(str(report.get("input"))) != str(job.source):
        job.status = "failed"
        job.error = f"{job.output} is the output of another input, {report.get('input')}; pass --overwrite"
    else:
        job.status, job.report = "skipped", report


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _read_report(path: Path) -> dict[str, Any] | None:
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else None


def remove_partials(output: Path) -> None:
    """Remove the scratch folders a dead worker left beside OUTPUT: only those carrying the bag tool's marker
    (its pid may be on another host, so it is not checked: OUT_DIR's lock says no other job writes there).
    An unmarked folder is left to the bag tool: it removes an empty one (a run killed before its marker) and
    refuses, naming it, one with contents."""
    for path in output.parent.glob(PARTIAL.format(name=glob.escape(output.name))):
        if path.is_dir() and not path.is_symlink() and (path / BAG_MARKER).is_file():
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Resources:
    """What each worker asks of the cluster, and how many workers run."""

    workers: int
    cpus: float = 1.0
    gpus: float = 0.0


def fit_workers(ray: ModuleType, wanted: int | None, cpus: float, gpus: float, bags: int) -> Resources:
    """As many workers as asked (default: as the cluster holds), no more than the cluster or the bags need."""
    total = ray.cluster_resources()
    fits = [math.floor(total.get("CPU", 0) / cpus + 1e-9)]
    if gpus:
        fits.append(math.floor(total.get("GPU", 0) / gpus + 1e-9))
    room = min(fits)
    if room < 1:
        raise FleetError(f"the Ray cluster cannot hold one worker of {cpus:g} CPU and {gpus:g} GPU "
                         f"(it has {total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU)")
    if wanted and wanted > room:
        log.warning("the cluster holds %d worker(s) of %g CPU / %g GPU, not %d", room, cpus, gpus, wanted)
    return Resources(max(1, min(wanted or room, room, bags)), cpus, gpus)


class Scheduler:
    """Hands bags to idle workers; replaces a worker that died and retries its bag on another one."""

    def __init__(self, ray: ModuleType, settings: Settings, resources: Resources, jobs: list[BagJob], *,
                 topics: list[str] | None, threads: int, retries: int, bar: Any) -> None:
        self.ray, self.settings, self.resources, self.bar = ray, settings, resources, bar
        self.topics, self.threads, self.retries = topics, threads, retries
        self.detector_threads = max(1, math.floor(resources.cpus))
        self.actor_class = ray.remote(BagWorker).options(
            num_cpus=resources.cpus, num_gpus=resources.gpus, max_restarts=0, scheduling_strategy="SPREAD")
        self.pending = deque(j for j in jobs if j.status == "pending")
        self.running: dict[Any, tuple[Any, BagJob]] = {}
        self.idle: list[Any] = []
        self.signalled = 0
        self.frames = 0
        self.failed = sum(1 for j in jobs if j.status == "failed")
        self.start = time.perf_counter()

    def run(self) -> None:
        """Until every bag is done or failed. Ctrl-C and SIGTERM (e.g. a batch job's time limit) stop it."""
        stops = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
        previous = {s: signal.signal(s, self._on_signal) for s in stops}  # after ray.init set its own
        self.idle = [self._new_worker() for _ in range(self.resources.workers)]
        try:
            while self.pending or self.running:
                if self.signalled:  # raised here, between Ray calls, not from inside one
                    raise SystemExit(128 + self.signalled)
                while self.idle and self.pending:
                    self._submit(self.idle.pop(), self.pending.popleft())
                ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=1.0)
                for ref in ready:
                    self._collect(ref)
                self._show()
        finally:
            self._stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signalled = signum

    def _new_worker(self) -> Any:
        return self.actor_class.remote(self.settings, self.detector_threads)

    def _submit(self, actor: Any, job: BagJob) -> None:
        job.status, job.attempts = "running", job.attempts + 1
        ref = actor.anonymize.remote(str(job.source), str(job.output), self.topics, self.threads, job.overwrite)
        self.running[ref] = (actor, job)

    def _collect(self, ref: Any) -> None:
        actor, job = self.running.pop(ref)
        exceptions = self.ray.exceptions
        try:
            result = self.ray.get(ref)
        except exceptions.RayActorError as exc:
            self._worker_died(actor, job, exc)
            return
        except exceptions.RayError as exc:  # a bug, not a bad bag: the same bag would fail again
            self.idle.append(actor)
            self._finish(job, "failed", error=f"{job.source}: the worker failed: {exc}")
            return
        self.idle.append(actor)
        if "error" in result:
            self._finish(job, "failed", error=result["error"], worker=result["worker"], elapsed=result["elapsed_s"])
            return
        self.frames += sum(t["frames_in"] for t in result["report"]["image_topics"].values())
        self._finish(job, "done", report=result["report"], worker=result["worker"], elapsed=result["elapsed_s"])

    def _worker_died(self, actor: Any, job: BagJob, exc: Exception) -> None:
        """The worker is gone mid-bag: its scratch folder is removed and the bag goes to the front of the queue."""
        self.ray.kill(actor)
        if getattr(exc, "actor_init_failed", False):  # every new worker would fail the same way
            self._finish(job, "failed", error=f"a worker could not build the pipeline: {exc}")
            while self.pending:
                self._finish(self.pending.popleft(), "failed", error="not run: workers cannot build the pipeline")
            return
        remove_partials(job.output)
        if (job.output.exists() or job.output.is_symlink()) and not report_path(job.output).exists():
            # Died between moving its bag into place and its report: the bag is ours (the job started with no
            # OUTPUT there, or skipped or refused it) but unfinished, and the bag tool won't replace an OUTPUT
            # without its report.
            _remove(job.output)
        log.warning("%s: worker died (%s)", job.source, type(exc).__name__)
        self._retry(job, exc)
        self.idle.append(self._new_worker())

    def _retry(self, job: BagJob, exc: Exception) -> None:
        if job.attempts > self.retries:
            self._finish(job, "failed", error=f"{job.source}: its worker died {job.attempts} times; last: "
                                              f"{type(exc).__name__}")
            return
        job.status = "pending"
        self.pending.appendleft(job)
        self.bar.write(f"ldfa fleet: {job.source}: its worker died; retrying on another worker", file=sys.stderr)

    def _finish(self, job: BagJob, status: str, *, error: str | None = None, report: dict[str, Any] | None = None,
                worker: dict[str, Any] | None = None, elapsed: float | None = None) -> None:
        job.status, job.error, job.report, job.worker, job.elapsed_s = status, error, report, worker, elapsed
        self.failed += status == "failed"
        self.bar.update(1)
        self.bar.write(summary(job), file=sys.stdout if status == "done" else sys.stderr)

    def _show(self) -> None:
        elapsed = time.perf_counter() - self.start
        self.bar.set_postfix(running=len(self.running), failed=self.failed,
                             frames_s=f"{self.frames / elapsed:.1f}" if elapsed > 0 else "-", refresh=True)

    def _stop(self) -> None:
        """On the way out (done, Ctrl-C, an error): stop the workers; bags still running leave nothing."""
        for actor in self.idle:
            self.ray.kill(actor)
        for actor, _ in self.running.values():
            self.ray.kill(actor)
        if self.running:
            self.ray.wait(list(self.running), num_returns=len(self.running), timeout=30)
        for _, job in self.running.values():
            remove_partials(job.output)
            job.status, job.error = "failed", f"{job.source}: interrupted"
        self.running.clear()


def summary(job: BagJob) -> str:
    """One line for a finished bag."""
    if job.status != "done" or job.report is None:
        return f"ldfa fleet: {job.error}"
    topics = job.report["image_topics"].values()
    where = f"{job.worker['host']}:{job.worker['pid']}" if job.worker else "?"
    notes = []
    if not job.report["image_topics"]:
        notes.append("warning: no image topics; copied as is")
    if job.report["image_topics_not_anonymized"]:
        notes.append("warning: images not anonymized on " + ", ".join(job.report["image_topics_not_anonymized"]))
    return (f"{job.source.name}: {sum(t['frames_in'] for t in topics)} frame(s), "
            f"{sum(t['faces'] for t in topics)} face(s) hidden in {sum(t['regions'] for t in topics)} region(s), "
            f"{sum(t['errors_total'] for t in topics)} error(s) -> {job.output} ({where}, {job.elapsed_s} s)"
            + "".join(f"; {n}" for n in notes))


def fleet_report(jobs: list[BagJob], resources: Resources | None, timing: dict[str, float], args: argparse.Namespace,
                 settings: Settings) -> dict[str, Any]:
    """Per bag its `ldfa bag` report, worker and time; totals for the job. `timing`: elapsed_s (the whole
    command) and processing_s (from starting the workers to the last bag)."""
    done = [j for j in jobs if j.status == "done" and j.report]
    reports = [j.report for j in jobs if j.status in ("done", "skipped") and j.report]
    topics = [t for r in reports for t in r["image_topics"].values()]
    frames_done = sum(t["frames_in"] for j in done for t in j.report["image_topics"].values())  # type: ignore[index]
    busy = sum(j.elapsed_s or 0.0 for j in done)
    processing = timing.get("processing_s", 0.0)
    count = {s: sum(1 for j in jobs if j.status == s) for s in ("done", "skipped", "failed")}
    return {
        "out_dir": str(args.output), "address": args.address,
        "resources": asdict(resources) if resources else None, "settings": asdict(settings),
        **{k: round(v, 2) for k, v in timing.items()},
        "totals": {"bags": len(jobs), **count, "retried": sum(1 for j in jobs if j.attempts > 1),
                   "frames": sum(t["frames_in"] for t in topics),
                   "faces": sum(t["faces"] for t in topics),  # as `ldfa bag`: faces apart from regions
                   "regions": sum(t["regions"] for t in topics),
                   "frame_errors": sum(t["errors_total"] for t in topics),
                   "frames_this_run": frames_done,
                   "frames_per_s": round(frames_done / processing, 2) if processing > 0 and done else None,
                   "frames_per_s_per_worker": round(frames_done / busy, 2) if busy > 0 else None},
        "bags": [j.record() for j in jobs],
    }


def exit_code(jobs: list[BagJob]) -> int:
    """As `ldfa bag`: 0 all done; 1 some bags or frames failed (in this run or the one that wrote a skipped
    bag); 2 no output at all."""
    if not any(j.status in ("done", "skipped") for j in jobs):
        return 2
    failed_frames = any(t["errors_total"] for j in jobs if j.status in ("done", "skipped") and j.report
                        for t in j.report["image_topics"].values())
    return 1 if failed_frames or any(j.status == "failed" for j in jobs) else 0


def run_fleet(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    out_dir = Path(os.path.abspath(args.output))
    if out_dir.exists() and not out_dir.is_dir():
        raise FleetError(f"{args.output}: OUT_DIR exists and is not a directory")
    _check_report_file(_report_file(args, out_dir))
    jobs = plan([Path(s) for s in args.inputs], out_dir, args.overwrite)
    start = time.perf_counter()
    timing: dict[str, float] = {}
    resources = None
    try:
        with lock(out_dir):
            take_stock(jobs)
            for job in jobs:
                if job.status == "failed":
                    print(f"ldfa fleet: {job.error}", file=sys.stderr)
            if any(j.status == "pending" for j in jobs):
                resources = _process(args, jobs, settings, timing)
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"ldfa fleet: interrupted; bags in progress left nothing in {out_dir}", file=sys.stderr)
        timing["elapsed_s"] = time.perf_counter() - start
        write_json(_report_file(args, out_dir), fleet_report(jobs, resources, timing, args, settings))
        return exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
    timing["elapsed_s"] = time.perf_counter() - start
    report = fleet_report(jobs, resources, timing, args, settings)
    write_json(_report_file(args, out_dir), report)
    t = report["totals"]
    print(f"{t['done']} bag(s) anonymized, {t['skipped']} already done, {t['failed']} failed; {t['frames']} "
          f"frame(s), {t['faces']} face(s) hidden in {t['regions']} region(s), {t['frame_errors']} frame error(s), "
          f"{t['frames_per_s']} frames/s; report in {_report_file(args, out_dir)}")
    return exit_code(jobs)


def _process(args: argparse.Namespace, jobs: list[BagJob], settings: Settings,
             timing: dict[str, float]) -> Resources:
    """Connect to Ray, run the pending bags on its workers, and let go of Ray if this started it."""
    todo = sum(1 for j in jobs if j.status == "pending")
    local_cpus = math.ceil(args.workers * args.cpus_per_worker) if args.address == "local" and args.workers else None
    ray, started = connect(args.address, local_cpus, args.verbose)
    try:
        resources = fit_workers(ray, args.workers, args.cpus_per_worker, args.gpus_per_worker, todo)
        work = time.perf_counter()
        with tqdm(total=len(jobs), initial=len(jobs) - todo, desc="fleet", unit="bag", file=sys.stderr,
                  dynamic_ncols=True) as bar:
            try:
                Scheduler(ray, settings, resources, jobs, topics=args.topics, threads=args.jobs,
                          retries=args.retries, bar=bar).run()
            finally:
                timing["processing_s"] = time.perf_counter() - work
    finally:
        if started:
            ray.shutdown()
    return resources


def _report_file(args: argparse.Namespace, out_dir: Path) -> Path:
    return Path(args.report) if args.report else out_dir / FLEET_REPORT


def _check_report_file(path: Path) -> None:
    """Refuse to replace a file that is not an earlier fleet report (e.g. `--report` naming an input)."""
    if not (path.exists() or path.is_symlink()):
        return
    try:
        report = _read_report(path)
    except (OSError, ValueError):
        report = None
    if report is None or "bags" not in report:
        raise FleetError(f"{path}: exists and is not an ldfa fleet report; choose another --report")


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fleet", help="anonymize many bags on a Ray cluster (or on this machine's cores)",
        description="Run `ldfa bag` on every BAG, spread over Ray workers that each load the pipeline once, "
                    "writing OUT_DIR/<bag name> (same format) and its report. A rerun skips finished bags; a "
                    "worker that dies has its bag retried on another. Writes OUT_DIR/" + FLEET_REPORT + ". "
                    "Exit code 0: all done; 1: some bags or frames failed (see the report); 2: no bag written. "
                    f"Needs the fleet extra: {INSTALL}.")
    p.add_argument("inputs", nargs="+", metavar="BAG", help="rosbag2 directories, .mcap/.db3 files, ROS 1 .bag files")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the anonymized bags")
    p.add_argument("--address", default="local",
                   help="'local': start Ray on this machine (loopback only); 'auto' or HOST:PORT: a running cluster")
    p.add_argument("--workers", type=at_least(1), metavar="N",
                   help="Ray workers (default: as many as the cluster holds, at most one per bag)")
    p.add_argument("--cpus-per-worker", type=at_least(0, float, strict=True), default=1.0, metavar="C",
                   help="CPUs Ray reserves for each worker")
    p.add_argument("--gpus-per-worker", type=at_least(0, float), default=0.0, metavar="G",
                   help="GPUs Ray reserves for each worker (fractions share a GPU); use with --device cuda "
                        "and/or --method ldfa")
    p.add_argument("--jobs", type=at_least(1), default=1, metavar="N",
                   help="read-ahead threads per worker, as `ldfa bag --jobs`; the detector itself uses the "
                        "worker's whole CPUs")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="image topics to anonymize (default: all)")
    p.add_argument("--retries", type=at_least(0), default=2, metavar="N",
                   help="times a bag is retried after its worker died")
    p.add_argument("--overwrite", action="store_true", help="redo every bag, replacing finished outputs")
    p.add_argument("--report", metavar="PATH", help=f"fleet report JSON (default OUT_DIR/{FLEET_REPORT})")
    add_settings_arguments(p)
    p.set_defaults(run=run_fleet)
