"""The detector's GPU runtime choices that can be checked without a GPU: bucket shapes, the engine cache
key, TensorRT provider options, and real onnxruntime sessions on the CPU with those shapes."""
from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros.detect import CenterFace, Detections
from ldfa_ros.detect import runtime
from ldfa_ros.detect.centerface import _dynamic_model_bytes, default_model_path

GPU_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_each_camera_resolution_has_one_padded_bucket():
    assert runtime.bucket_shape(1080, 1920) == (1088, 1920)
    assert runtime.bucket_shape(720, 1280) == (736, 1280)
    assert runtime.bucket_shape(1088, 1920) == (1088, 1920)


def test_a_changed_model_gpu_or_tensorrt_gets_its_own_engine_cache(tmp_path):
    base = runtime.engine_cache_dir(b"model", "NVIDIA H200", "10.9.0", tmp_path)
    assert base == runtime.engine_cache_dir(b"model", "NVIDIA H200", "10.9.0", tmp_path)
    others = {runtime.engine_cache_dir(b"model2", "NVIDIA H200", "10.9.0", tmp_path),
              runtime.engine_cache_dir(b"model", "NVIDIA H100 80GB HBM3", "10.9.0", tmp_path),
              runtime.engine_cache_dir(b"model", "NVIDIA H200", "10.8.0", tmp_path)}
    assert base not in others and len(others) == 3
    assert base.parent == tmp_path and " " not in base.name


def test_the_tensorrt_version_in_the_cache_key_is_the_libraries_of_any_cuda_build(monkeypatch):
    def installed(*packages):
        dists = [SimpleNamespace(metadata={"Name": name}, version=version) for name, version in packages]
        monkeypatch.setattr(runtime.metadata, "distributions", lambda: dists)
        return runtime.tensorrt_version()

    assert installed(("numpy", "2.1.0")) == "unknown"
    assert installed(("tensorrt", "10.13.3.9"), ("tensorrt_cu13_libs", "10.13.3.9.post1")) == "10.13.3.9.post1"
    assert installed(("tensorrt-cu12", "10.9.0.34"), ("tensorrt-cu12-libs", "10.9.0.34")) == "10.9.0.34"
    assert installed(("tensorrt-cu13", "10.13.3.9"), ("tensorrt-llm", "1.0")) == "10.13.3.9"


def test_tensorrt_provider_options_fp16_cached_with_a_fixed_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(runtime, "gpu_name", lambda: "NVIDIA H200")
    monkeypatch.setattr(runtime, "tensorrt_version", lambda: "10.9.0")
    chain = runtime.providers_for("tensorrt", model=b"weights", buckets=[(1088, 1920), (736, 1280)],
                                  available=GPU_PROVIDERS)
    (name, options), *rest = chain
    assert name == "TensorrtExecutionProvider" and rest == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    expected = runtime.engine_cache_dir(b"weights", "NVIDIA H200", "10.9.0", tmp_path / ".cache/ldfa_ros/trt")
    assert options["trt_engine_cache_path"] == str(expected / "736x1280-1088x1920-1088x1920-b2")
    assert (expected / "736x1280-1088x1920-1088x1920-b2").is_dir()
    assert options["trt_timing_cache_path"] == str(expected)
    assert options["trt_fp16_enable"] and options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]
    assert options["trt_profile_min_shapes"] == "input.1:1x3x736x1280"
    assert options["trt_profile_opt_shapes"] == "input.1:1x3x1088x1920"
    assert options["trt_profile_max_shapes"] == "input.1:2x3x1088x1920"
    assert runtime.providers_for("cuda", available=GPU_PROVIDERS) == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_sessions_with_different_profiles_never_share_an_engine_folder(tmp_path):
    """onnxruntime names an engine by its graph and overwrites it when the profile differs: two sessions
    with different buckets (node cameras, a bag's camera) in one folder would rebuild over each other."""
    def engines(buckets):
        (_, options), *_ = runtime.providers_for("tensorrt", tmp_path, buckets=buckets, available=GPU_PROVIDERS)
        assert options["trt_timing_cache_path"] == str(tmp_path)
        return options["trt_engine_cache_path"]

    both = engines([(1088, 1920), (736, 1280)])
    assert both == engines([(1088, 1920), (736, 1280)])
    assert len({both, engines([(1088, 1920)]), engines([(736, 1280)]), engines([(736, 1280), (1088, 1920)]),
                engines([])}) == 5


def test_missing_gpu_providers_are_named():
    with pytest.raises(ValueError, match="needs onnxruntime-gpu with TensorRT"):
        runtime.providers_for("tensorrt", available=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="needs onnxruntime-gpu"):
        runtime.providers_for("cuda", available=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="unknown detector device 'tpu'"):
        runtime.providers_for("tpu", available=GPU_PROVIDERS)


def test_real_session_runs_each_bucket_at_batch_one_and_two():
    """Warm-up runs the bucket shapes (a frame and its mirror in one batch) through a real session."""
    model = _dynamic_model_bytes(default_model_path())
    session = runtime.create_session(model, "cpu", ort.SessionOptions(), buckets=[(64, 96)])
    runtime.warm(session, "input.1", [(64, 96), (96, 64)], batches=(1, 2))
    heatmap = session.run(["537"], {"input.1": np.zeros((2, 3, 64, 96), np.float32)})[0]
    assert heatmap.shape == (2, 1, 16, 24)


def test_detector_built_for_a_camera_resolution_finds_the_face(astronaut):
    detector = CenterFace(resolutions=[astronaut.shape[:2]], scales=(1.0, 2.0))
    found = detector(astronaut)
    assert len(found) >= 1
    best = found.boxes[np.argmax(found.scores)]
    assert np.abs(best - ASTRONAUT_FACE).max() < 25


def test_bound_input_gives_the_plain_run_results(astronaut):
    """The benchmark's device-resident input path (IO binding), run on the CPU: same outputs as run()."""
    session = CenterFace().session
    blob = np.ascontiguousarray(astronaut.transpose(2, 0, 1)[None], np.float32)  # 512 x 512: no padding
    names = [o.name for o in session.get_outputs()]
    plain = session.run(names, {"input.1": blob})
    bound = runtime.run_bound(session, "input.1", blob, "cpu")
    assert len(bound) == len(plain) and all(np.allclose(a, b, atol=1e-5) for a, b in zip(bound, plain))


@pytest.mark.parametrize("size", [(512, 512), (300, 420)])
def test_device_buffers_give_the_host_blob_results(astronaut, size):
    """The GPU providers' input path (uint8 up, padded and converted in a torch buffer, read in place),
    run with torch on the CPU: the network outputs equal the host blob's, padding included."""
    torch = pytest.importorskip("torch", reason="the device path needs torch (the diffusion extra)")
    session = CenterFace().session
    names = ["537", "538", "539", "540"]
    host = runtime.Runner(session, "input.1", names)
    device = runtime.Runner(session, "input.1", names, on_device="cpu")
    h, w = size
    bh, bw = runtime.bucket_shape(h, w)
    device(np.ascontiguousarray(astronaut[:bh, :bw]))  # a frame filling the bucket first: none of it may stay
    frame = np.ascontiguousarray(astronaut[:h, :w])
    expected, got = host(frame), device(frame)
    assert [a.shape for a in got] == [a.shape for a in expected]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(got, expected))
    assert isinstance(device._buffers[(1, 3, *runtime.bucket_shape(h, w))], torch.Tensor)
    assert runtime.device_buffers("cpu") is None


def test_a_batch_of_frames_gives_each_frame_its_own_outputs(astronaut):
    """A frame and its mirror in one call (batch 2), on the host and through device buffers (torch on the
    CPU where installed): each row equals that frame run alone."""
    session = CenterFace().session
    names = ["537", "538", "539", "540"]
    frame = np.ascontiguousarray(astronaut[:300, :420])
    mirror = np.ascontiguousarray(frame[:, ::-1])
    runners = [runtime.Runner(session, "input.1", names)]
    if importlib.util.find_spec("torch") is not None:
        runners.append(runtime.Runner(session, "input.1", names, on_device="cpu"))
    for runner in runners:
        both = runner(frame, mirror)
        for row, alone in enumerate((runner(frame), runner(mirror))):
            assert all(np.allclose(b[row], a[0], atol=1e-4) for b, a in zip(both, alone))
        with pytest.raises(ValueError, match="one shape"):
            runner(frame, astronaut)


@pytest.mark.parametrize("batch", [True, False], ids=["batched (GPU default)", "apart (CPU default)"])
def test_mirrored_pass_finds_what_two_passes_found(astronaut, batch):
    """flip: with `batch_mirror` the frame and its mirror go in one network call per scale; either way
    the faces are those of the two passes run apart (the mirror pass mapped back)."""
    from ldfa_ros.samples import sample_frames

    detector = CenterFace(batch_mirror=batch)
    assert CenterFace().batch_mirror is False  # the CPU default
    calls: list[int] = []
    span, runner = detector.engines.built[0]
    detector.engines.built[0] = (span, lambda *images: calls.append(len(images)) or runner(*images))
    for frame in (astronaut, sample_frames()["street_1080p.png"]):
        calls.clear()
        both = detector(frame, threshold=0.3, scales=(1.0, 2.0), flip=True)
        assert calls == ([2, 2] if batch else [1, 1, 1, 1])
        w = frame.shape[1]
        apart = Detections.concat([detector(frame, 0.3, (1.0, 2.0)),
                                   detector(np.ascontiguousarray(frame[:, ::-1]), 0.3, (1.0, 2.0)).mirrored(w)])
        apart = apart.nms(0.3)
        assert len(both) == len(apart) >= 1
        assert np.abs(np.sort(both.boxes, axis=0) - np.sort(apart.boxes, axis=0)).max() < 2.0


def test_fixed_engines_span_their_buckets_and_a_new_shape_gets_its_own(caplog):
    """TensorRT engines take the shapes of their profile only: `Engines(fixed=True)` gives a shape outside
    every profile a session of its own, once, and says so. Real CPU sessions stand in for the engines."""
    model = _dynamic_model_bytes(default_model_path())
    made: list[list[tuple[int, int]]] = []

    def make(buckets):
        made.append(buckets)
        session = runtime.create_session(model, "cpu", ort.SessionOptions(), buckets=buckets)
        return runtime.Runner(session, "input.1", ["537"])

    engines = runtime.Engines(make, fixed=True)
    assert engines.prepare([(544, 960), (1088, 1920), (544, 960)]) and made == [[(544, 960), (1088, 1920)]]
    first = engines.runner((544, 960))
    assert engines.runner((1088, 1920)) is first and engines.runner((736, 1280)) is first  # inside the span
    assert not engines.prepare([(736, 1280)]) and len(made) == 1
    with caplog.at_level("WARNING", logger="ldfa_ros"):
        other = engines.runner((1088, 2048))
    assert other is not first and made[-1] == [(1088, 2048)] and "1088 input" in caplog.text
    assert engines.runner((1088, 2048)) is other and len(made) == 2
    frame = np.zeros((1088, 2048, 3), np.uint8)
    assert other(frame)[0].shape == (1, 1, 272, 512)

    loose = runtime.Engines(make, fixed=False)  # CPU and CUDA providers: one session for every shape
    assert loose.prepare([]) and not loose.prepare([(64, 64)])
    assert loose.runner((64, 64)) is loose.runner((4096, 4096))


def test_a_tensorrt_style_detector_builds_per_frame_size_and_finds_the_same_faces(astronaut, caplog):
    """CenterFace with fixed-shape engines (as on TensorRT; real CPU sessions here): a frame of a size it was
    not prepared for gets one engine for those of its passes no engine spans, before they run, with a
    warning; its faces are those of the ordinary detector."""
    plain = CenterFace()
    detector = CenterFace(resolutions=[(512, 512)], scales=(1.0, 2.0))
    made: list[list[tuple[int, int]]] = []
    make = detector.engines.make
    detector.engines = runtime.Engines(lambda buckets: made.append(buckets) or make(buckets), fixed=True)
    assert detector.prepare([(512, 512)], (1.0, 2.0)) and made == [[(512, 512), (1024, 1024)]]
    frame = np.ascontiguousarray(astronaut[:300, :420])
    with caplog.at_level("WARNING", logger="ldfa_ros"):
        for image in (astronaut, frame, frame):
            found = detector(image, 0.3, (1.0, 2.0), flip=True)
            expected = plain(image, 0.3, (1.0, 2.0), flip=True)
            assert len(found) == len(expected) >= 1
            assert np.abs(np.sort(found.boxes, axis=0) - np.sort(expected.boxes, axis=0)).max() < 1e-3
    assert made[1:] == [[(320, 448)]]  # built once; its 2x pass (608 x 840) lies within the first engine's span
    assert caplog.text.count("built an engine for 420x300 frames") == 1


def test_frames_of_a_tiled_size_run_on_the_engines_prepared_at_start_up(astronaut, monkeypatch):
    """A camera size whose 2x pass is tiled: prepare() builds the shrunk whole-frame pass's and the tiles'
    shapes too, so no frame of that size waits for an engine mid-drive."""
    from ldfa_ros.detect import centerface

    monkeypatch.setattr(centerface, "TILE_PX", 512)
    monkeypatch.setattr(centerface, "TILE_OVERLAP", 128)
    made: list[list[tuple[int, int]]] = []
    detector = CenterFace()
    make = detector.engines.make
    detector.engines = runtime.Engines(lambda buckets: made.append(buckets) or make(buckets), fixed=True)
    frame = np.full((700, 900, 3), 90, np.uint8)
    frame[:512, 200:712] = astronaut
    assert detector.prepare([frame.shape[:2]], (1.0, 2.0)) and len(made) == 1
    found = detector(frame, 0.3, (1.0, 2.0), flip=True)
    assert len(made) == 1, f"built on arrival: {made[1:]}"
    best = found.boxes[np.argmax(found.scores)]
    assert np.abs(best - (ASTRONAUT_FACE + [200, 0, 200, 0])).max() < 25


def test_a_failed_engine_build_is_not_retried_on_every_frame():
    calls: list[list[tuple[int, int]]] = []

    def make(buckets):
        calls.append(buckets)
        raise RuntimeError("TensorRT: out of memory")

    engines = runtime.Engines(make, fixed=True)
    with pytest.raises(RuntimeError, match="TensorRT: out of memory"):
        engines.runner((1088, 1920))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="no engine for 1920x1088 inputs: building it failed: .*out of memory"):
            engines.runner((1088, 1920))
    assert calls == [[(1088, 1920)]]


def test_a_tensorrt_detector_without_an_engine_says_so():
    detector = CenterFace()
    detector.engines = runtime.Engines(detector.engines.make, fixed=True)
    with pytest.raises(RuntimeError, match="no engine yet"):
        detector.session


def test_device_buffers_give_each_thread_its_own_frames_outputs(astronaut):
    """Bag workers detect from several threads: the shared device buffer must hold one call's frame from fill
    to run, or a frame's faces come from another frame's pixels (unlocked: about 1 call in 4 did)."""
    pytest.importorskip("torch", reason="the device path needs torch (the diffusion extra)")
    from concurrent.futures import ThreadPoolExecutor

    session = CenterFace().session
    runner = runtime.Runner(session, "input.1", ["537"], on_device="cpu")
    frames = [np.ascontiguousarray(np.roll(astronaut[:256, :256], 40 * k, axis=1)) for k in range(4)]
    expected = [runner(frame)[0] for frame in frames]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: (k, runner(frames[k])[0]), [k % 4 for k in range(48)]))
    assert all(np.allclose(heatmap, expected[k], atol=1e-5) for k, heatmap in got)
