"""The GPU check's dry run: every path of benchmarks/gpu.sh that needs no CUDA, on the CPU (tiny models)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_dry_run_measures_every_stage_and_checks_the_output(tmp_path):
    out = tmp_path / "gpu_bench.json"
    run = subprocess.run([str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run", "--json", str(out), "--compile", "eager"],
                         cwd=tmp_path,
                         env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert report["environment"]["dry_run"] is True
    trt = next(r for r in rows if r["stage"] == "detector" and r["device"] == "tensorrt")
    name, options = trt["providers"][0]
    assert name == "TensorrtExecutionProvider" and options["trt_fp16_enable"] and options["trt_engine_cache_enable"]
    assert options["trt_profile_max_shapes"] == "input.1:2x3x544x960"
    cpu = next(r for r in rows if r["stage"] == "detector" and r["device"] == "cpu")
    assert cpu["faces_found"] >= 3 and cpu["network"]["p50_ms"] > 0
    diffusion = [r for r in rows if r["stage"] == "diffusion"]
    assert [(r["faces"], r.get("compiled")) for r in diffusion] == [(1, None), (2, None), (4, "eager")]
    assert all(r["p95_ms"] > 0 for r in diffusion) and diffusion[-1]["start_s"] > 0
    node = next(r for r in rows if r["stage"] == "node")
    assert node["anonymized"] is True and node["faces_inpainted"] >= 3 and not node["problems"]
    assert report["summary"]["anonymized"] is True and report["summary"]["errors"] == []
    assert "node_p95_ms" in report["summary"]["met"]


def test_gpu_summary_counts_only_measured_rows_and_wants_a_checked_output():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_bench import detector_devices, summary

    assert detector_devices(["CPUExecutionProvider", "CUDAExecutionProvider"]) == ["cuda", "cpu"]
    failed = {"stage": "node", "detector": "tensorrt", "cuda_graphs": True, "error": "ValueError: no provider"}
    eager = {"stage": "node", "detector": "cuda", "cuda_graphs": False, "p95_ms": 80.0, "anonymized": True}
    nothing_checked = summary([failed])
    assert nothing_checked["anonymized"] is False and nothing_checked["node_p95_ms"] is None
    assert nothing_checked["errors"] == ["node tensorrt: ValueError: no provider"]
    assert summary([failed, eager])["node_p95_ms_eager"] == 80.0
    assert summary([eager | {"anonymized": False}])["anonymized"] is False
    assert nothing_checked["met"] == {"node_p95_ms": None, "detector_trt_ms": None, "node_gpu_memory_gb": None}
    fast = {"stage": "node", "detector": "tensorrt", "cuda_graphs": True, "p95_ms": 30.0, "anonymized": True,
            "gpu_memory_gb": 2.1, "process_gpu_memory_gb": 3.2}  # the process's number counts: context included
    measured = summary([fast, eager])
    assert measured["node_gpu_memory_gb"] == 3.2 and measured["node_gpu_memory_gb_since_baseline"] == 2.1
    assert measured["met"] == {"node_p95_ms": True, "detector_trt_ms": None, "node_gpu_memory_gb": False}


def test_the_node_rows_use_a_detector_whose_own_row_ran():
    """onnxruntime-gpu lists TensorRT even where libnvinfer is missing: its detector row fails, and the node
    rows then run on the CUDA provider rather than failing the same way (and losing the node's numbers)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_bench import fastest, ran_devices

    rows = [{"stage": "detector", "device": "tensorrt", "error": "RuntimeError: onnxruntime dropped it"},
            {"stage": "detector", "device": "cuda", "network": {"p50_ms": 2.0}},
            {"stage": "detector", "device": "torch eager float16", "network": {"p50_ms": 5.0}}]
    assert fastest(ran_devices(["tensorrt", "cuda", "cpu"], rows)) == "cuda"
    assert ran_devices(["tensorrt", "cuda", "cpu"], rows[:1]) == ["cpu"]
    assert fastest(ran_devices(["tensorrt", "cuda", "cpu"], [rows[1] | {"device": "tensorrt"}])) == "tensorrt"


def test_gpu_script_offline_without_wheels_runs_in_what_is_left_of_eight_minutes(tmp_path):
    """gpu.sh's shell side, with stand-ins for nvidia-smi and the GPU machine's Python that print their call."""
    stand_ins = {"nvidia-smi": "echo 'NVIDIA H100 80GB HBM3, 580.1, 81559 MiB'", "gpu-python": 'echo "$@"'}
    for name, body in stand_ins.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    run = subprocess.run([str(ROOT / "benchmarks" / "gpu.sh"), "--offline", "--repeats", "3"], cwd=tmp_path,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHON": "gpu-python",
                              "WHEELS": str(tmp_path / "none")}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"no wheels in {tmp_path / 'none'}/" in run.stderr
    gpu, call = run.stdout.splitlines()
    assert gpu.startswith("NVIDIA H100")
    script, flag, budget, *rest = call.split()
    assert script == "benchmarks/gpu_bench.py" and flag == "--time-budget-s" and rest == ["--repeats", "3"]
    assert 380 <= int(budget) <= 405  # 480 s less install time less a minute for the last row and the write-out


def test_gpu_script_without_a_package_index_runs_offline(tmp_path):
    """The lent GPU machines reach no registry: the plain command must not die installing, but run with
    what their Python has (the probe is `pip download`, which this stand-in fails)."""
    (tmp_path / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA H200, 580.1, 143771 MiB'\n")
    (tmp_path / "gpu-python").write_text('#!/bin/sh\n[ "$2" = pip ] && [ "$3" = download ] && exit 1\necho "$@"\n')
    for name in ("nvidia-smi", "gpu-python"):
        (tmp_path / name).chmod(0o755)
    run = subprocess.run([str(ROOT / "benchmarks" / "gpu.sh"), "--json", "out.json"], cwd=tmp_path,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHON": "gpu-python",
                              "WHEELS": str(tmp_path / "none")}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "no package index reachable from here: running as --offline" in run.stderr
    gpu, call = run.stdout.splitlines()  # no venv made, nothing installed: the GPU's name, then the benchmark
    assert call.split()[0] == "benchmarks/gpu_bench.py" and call.split()[-2:] == ["--json", "out.json"]
