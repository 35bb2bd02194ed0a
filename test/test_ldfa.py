"""The latent diffusion renderer end to end on a real face, with tiny random-weight models built from
the real diffusers classes and loaded from disk through the same path users take (no download)."""
from __future__ import annotations

import ast
import logging
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import ASTRONAUT_FACE
from test_pipeline import assert_face_hidden
from tiny_sd import TEXT_DIM, save_tiny_models
from ldfa_ros.budget import DeadlineExceeded, Planner
from ldfa_ros.cli import main
from ldfa_ros.detect import Detections
from ldfa_ros.pipeline import FrameInput, Pipeline, build_pipeline
from ldfa_ros.render.graphs import StaticUNet
from ldfa_ros.render.job import RenderJob
from ldfa_ros.render.ldfa import LdfaRenderer, match_colour
from ldfa_ros.render.models import (LCM_MAX_STEPS, ModelError, ModelMissingError, build_renderer, denoising_steps,
                                    resolve, wanted_files)
from ldfa_ros.render.regions import face_region
from ldfa_ros.settings import Settings
from ldfa_ros.track import Face

RES = 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models are fastest single-threaded, and steady on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("weights"))


def tiny_settings(paths, **changes) -> Settings:
    base = Settings(method="ldfa", model=str(paths["model"]), lora=str(paths["lora"]),
                    tiny_vae=str(paths["tiny_vae"]), resolution=RES, steps=2, diffusion_device="cpu")
    return base.updated(**changes)


@pytest.fixture(scope="module")
def renderer(tiny) -> LdfaRenderer:
    built = build_renderer(tiny_settings(tiny))
    assert built is not None
    return built


def job(image: np.ndarray, track_id: int = 1, stream: str = "cam", box: np.ndarray = ASTRONAUT_FACE,
        deadline: float | None = None) -> RenderJob:
    face = Face(box.astype(np.float32), 0.9, track_id)
    return RenderJob(image.copy(), stream, [face], [face_region(face.box, image.shape, 1.3, "ellipse", 0.1)],
                     deadline)


def given_face(rgb: np.ndarray) -> FrameInput:
    boxes = ASTRONAUT_FACE[None].astype(np.float32)
    return FrameInput(rgb, "cam", Detections(boxes, np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32)))


def count_unet_batches(renderer: LdfaRenderer, monkeypatch) -> list[int]:
    sizes: list[int] = []
    unet = renderer.model.unet
    forward = unet.forward

    def spy(x, *args, **kwargs):
        sizes.append(x.shape[0])
        assert x.shape[1] == 9  # noisy latents 4 + mask 1 + masked-image latents 4
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", spy)
    return sizes


def test_pipeline_inpaints_a_real_face_and_nothing_else(tiny, astronaut):
    pipeline = build_pipeline(tiny_settings(tiny))  # the user path: CenterFace + weights from folders
    result = pipeline.process(astronaut)
    assert result.error is None and [(f.method, f.reason) for f in result.faces] == [("ldfa", "no budget")]
    assert result.image.shape == astronaut.shape and result.image.dtype == np.uint8
    assert np.array_equal(result.image[~result.changed], astronaut[~result.changed])
    x1, y1, x2, y2 = ASTRONAUT_FACE.astype(int)
    assert result.changed[y1:y2, x1:x2].mean() > 0.95
    assert np.mean(np.all(result.image[y1:y2, x1:x2] == astronaut[y1:y2, x1:x2], axis=2)) < 0.05
    assert "render_ldfa" in result.timings_ms and pipeline.counters["faces_ldfa"] == 1


def test_the_face_pixels_never_reach_the_model(renderer, astronaut):
    """Full-strength generation from noise: scrambling the face changes nothing in the output."""
    original = job(astronaut)
    region = original.regions[0]
    scrambled = astronaut.copy()
    inside = scrambled[region.slices]
    inside[region.alpha >= 1] = np.random.default_rng(0).integers(0, 256, (int((region.alpha >= 1).sum()), 3))
    other = job(scrambled)
    renderer.render([original, other])
    assert np.array_equal(original.image, other.image)
    assert not np.array_equal(original.image[region.slices], astronaut[region.slices])


def test_neighbouring_faces_never_reach_the_model_either(renderer, astronaut):
    """A second face inside this face's crop (e.g. one the planner sent to blur) is masked from the model
    too: scrambling it changes nothing where this face is generated."""
    neighbour = face_region(ASTRONAUT_FACE + [95, 20, 95, 20], astronaut.shape, 1.3, "ellipse", 0.1)
    outputs = []
    for seed in (0, 1):
        frame = astronaut.copy()
        inside = frame[neighbour.slices]
        covered = neighbour.alpha > 0
        inside[covered] = np.random.default_rng(seed).integers(0, 256, (int(covered.sum()), 3))
        face_job = job(frame)
        face_job.hidden = [face_job.regions[0], neighbour]
        renderer.render([face_job])
        own = face_job.regions[0]
        outputs.append(face_job.image[own.slices][(own.alpha > 0) & ~_overlap(own, neighbour)])
    assert np.array_equal(outputs[0], outputs[1])


def _overlap(region, other) -> np.ndarray:
    """Pixels of `region`'s roi that `other` also covers."""
    mask = np.zeros(region.alpha.shape, bool)
    x1, y1 = region.roi[:2]
    ox1, oy1, ox2, oy2 = other.roi
    sub = other.alpha > 0
    ys, xs = np.nonzero(sub)
    ys, xs = ys + oy1 - y1, xs + ox1 - x1
    ok = (ys >= 0) & (ys < mask.shape[0]) & (xs >= 0) & (xs < mask.shape[1])
    mask[ys[ok], xs[ok]] = True
    return mask


def test_one_track_keeps_one_face_and_runs_are_reproducible(renderer, tiny, astronaut):
    jobs = [job(astronaut, 1), job(astronaut, 1), job(astronaut, 2), job(astronaut, 1, stream="other")]
    renderer.render(jobs)
    assert np.array_equal(jobs[0].image, jobs[1].image)  # same track: same noise, same face
    assert not np.array_equal(jobs[0].image, jobs[2].image)  # another person, another face
    assert not np.array_equal(jobs[0].image, jobs[3].image)  # track ids are per stream
    again = build_renderer(tiny_settings(tiny))  # a fresh load gives the same result
    alone = job(astronaut, 1)
    again.render([alone])
    assert np.abs(alone.image.astype(int) - jobs[0].image).max() <= 1  # batch of 4 vs 1: rounding at most
    reseeded = build_renderer(tiny_settings(tiny, seed=7))
    other = job(astronaut, 1)
    reseeded.render([other])
    assert not np.array_equal(other.image, alone.image)


def test_all_faces_of_a_tick_go_in_one_bucketed_call_per_step(renderer, astronaut, monkeypatch):
    sizes = count_unet_batches(renderer, monkeypatch)
    boxes = [ASTRONAUT_FACE, np.array([20, 300, 80, 380.0]), np.array([400, 40, 440, 90.0])]
    jobs = [job(astronaut, i, f"cam{c}", boxes[i % 3]) for c in range(2) for i in range(3)][:5]
    renderer.render(jobs)
    assert sizes == [8] * renderer.steps  # 5 faces from 2 cameras: one batch, padded to the 8 bucket
    for j in jobs:
        region = j.regions[0]
        outside = np.ones(astronaut.shape[:2], bool)
        outside[region.slices] &= region.alpha <= 0
        assert np.array_equal(j.image[outside], astronaut[outside])
        assert not np.array_equal(j.image[region.slices], astronaut[region.slices])
    assert renderer.latency.predict(8, RES) is not None  # the call taught the latency model


def test_sd2_architecture_with_its_own_vae_and_guidance(tmp_path, astronaut, monkeypatch):
    paths = save_tiny_models(tmp_path, flavour="sd2")
    settings = tiny_settings(paths, lora="", tiny_vae="", scheduler="auto", steps=3, guidance=3.0,
                             prompt="a face", negative_prompt="blurry")
    sd2 = build_renderer(settings)
    assert type(sd2.model.vae).__name__ == "AutoencoderKL"
    assert type(sd2.model.scheduler).__name__ == "DPMSolverMultistepScheduler"  # auto without LoRA
    assert sd2.model.prompt_embeds.shape == (1, 77, TEXT_DIM) and sd2.model.negative_embeds is not None
    sizes = count_unet_batches(sd2, monkeypatch)
    face = job(astronaut)
    sd2.render([face])
    assert sizes == [2, 2, 2]  # classifier-free guidance: unconditional and conditional in one call
    assert not np.array_equal(face.image, astronaut)


def test_lora_is_fused_and_the_text_encoder_dropped(renderer, tiny):
    plain = build_renderer(tiny_settings(tiny, lora="", scheduler="lcm"))
    fused, base = renderer.model.unet.state_dict(), plain.model.unet.state_dict()
    assert fused.keys() == base.keys() and not any("lora" in k for k in fused)
    changed = [k for k in fused if not torch.equal(fused[k], base[k])]
    assert changed and all(k.split(".")[-2] in {"to_q", "to_k", "to_v", "0"} for k in changed)
    assert type(renderer.model.scheduler).__name__ == "LCMScheduler"
    assert not hasattr(renderer.model, "text_encoder")


def test_overrun_and_out_of_memory_fall_back_to_blur(renderer, astronaut, monkeypatch):
    late = job(astronaut, deadline=time.perf_counter() + 1e-4)
    before = renderer.latency.counts().get((1, RES), 0)
    with pytest.raises(DeadlineExceeded):
        renderer.render([late])
    assert renderer.latency.counts()[(1, RES)] == before + 1  # the overrun is learnt too
    pipeline = Pipeline(Settings(method="ldfa", budget_ms=0.01), None, {"ldfa": renderer}, Planner(lambda n: None))
    result = pipeline.process_many([given_face(astronaut)])[0]
    assert [(f.method, f.reason) for f in result.faces] == [("blur", "ldfa over deadline")]
    assert_face_hidden(result.image, astronaut)

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(renderer.model.unet, "forward", out_of_memory)
    result = Pipeline(Settings(method="ldfa"), None, {"ldfa": renderer}).process_many([given_face(astronaut)])[0]
    assert [(f.method, f.reason) for f in result.faces] == [("blur", "ldfa failed: OutOfMemoryError")]
    assert_face_hidden(result.image, astronaut)


def test_warmup_measures_every_bucket_and_the_table_is_kept(tiny, tmp_path, monkeypatch):
    table = tmp_path / "latency.json"
    settings = tiny_settings(tiny, budget_ms=10000.0, latency_file=str(table), steps=1)
    warm = build_renderer(settings)
    assert warm.latency.counts() == {(b, RES): 3 for b in (1, 2, 4, 8)} and table.is_file()
    monkeypatch.setattr(LdfaRenderer, "warmup", lambda *a: pytest.fail("warm-up despite a kept table"))
    kept = build_renderer(settings)
    assert kept.predicted_ms(3) == pytest.approx(warm.predicted_ms(3), abs=0.01)


def test_warmup_stops_at_the_first_batch_over_budget(tiny):
    hopeless = build_renderer(tiny_settings(tiny, budget_ms=0.001, steps=1))
    assert hopeless.latency.counts() == {(1, RES): 1}  # one measured call, then no bigger batch tried
    assert hopeless.predicted_ms(8) > 0.001


def test_missing_weights_name_the_download_command(tmp_path):
    settings = Settings(method="ldfa", model="nobody/no-such-model", lora="", tiny_vae=str(tmp_path / "nope"))
    with pytest.raises(ModelMissingError) as err:
        build_renderer(settings, cache_dir=tmp_path)
    text = str(err.value)
    assert text.endswith("ldfa models download nobody/no-such-model")
    assert "tiny_vae" in text and "no such folder" in text


def test_auto_without_weights_blurs_and_says_so_once(astronaut, caplog):
    settings = Settings(method="auto", model="nobody/no-such-model", lora="", tiny_vae="")
    with caplog.at_level(logging.WARNING, logger="ldfa_ros"):
        pipeline = build_pipeline(settings)
        results = [pipeline.process(astronaut) for _ in range(2)]
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "latent diffusion unavailable" in caplog.records[0].message
    assert "ldfa models download nobody/no-such-model" in caplog.records[0].message
    for result in results:
        assert [(f.method, f.reason) for f in result.faces] == [("blur", "auto: ldfa unavailable")]
        assert_face_hidden(result.image, astronaut)


def test_weights_are_found_in_the_hugging_face_cache(tiny, tmp_path):
    snapshot = tmp_path / "models--someone--tiny-inpainting" / "snapshots" / "0123abcd"
    shutil.copytree(tiny["model"], snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    assert resolve("someone/tiny-inpainting", "model", cache_dir=tmp_path) == snapshot
    (snapshot / "unet" / "config.json").unlink()
    with pytest.raises(ModelMissingError, match="incomplete: no unet/config.json"):
        resolve("someone/tiny-inpainting", "model", cache_dir=tmp_path)


def test_a_model_that_cannot_inpaint_is_refused(tmp_path):
    paths = save_tiny_models(tmp_path, in_channels=4)
    with pytest.raises(ModelError, match="not an inpainting model"):
        build_renderer(tiny_settings(paths, lora=""))


def test_resolution_must_suit_the_model(tiny):
    with pytest.raises(ValueError, match="resolution 72 is not a multiple of 16"):
        build_renderer(tiny_settings(tiny, resolution=72))


def test_colour_is_matched_in_a_ring_around_the_mask():
    rng = np.random.default_rng(1)
    pixels = torch.from_numpy(rng.integers(60, 200, (2, 3, RES, RES)).astype(np.float32))
    mask = torch.zeros((2, 1, RES, RES), dtype=torch.bool)
    mask[:, :, 16:48, 16:48] = True
    drifted = pixels + torch.tensor([30.0, -20.0, 10.0])[None, :, None, None]
    matched = match_colour(drifted, pixels, mask)
    ring = (cv2.dilate(mask[0, 0].numpy().astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~mask[0, 0].numpy()
    for i in range(2):
        assert np.allclose(matched[i][:, ring].mean(1), pixels[i][:, ring].mean(1), atol=0.5)


def test_download_fetches_one_full_precision_copy_of_each_part():
    files = ["model_index.json", "sd-v1-5-inpainting.ckpt", "README.md",
             "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
             "vae/config.json", "vae/diffusion_pytorch_model.bin", "text_encoder/config.json",
             "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
             "tokenizer/special_tokens_map.json", "scheduler/scheduler_config.json",
             "safety_checker/model.safetensors", "safety_checker/config.json",
             "feature_extractor/preprocessor_config.json"]
    assert sorted(wanted_files(files)) == sorted([
        "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
        "vae/diffusion_pytorch_model.bin", "text_encoder/config.json", "text_encoder/model.safetensors",
        "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
        "scheduler/scheduler_config.json"])
    taesd = ["config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "taesd_decoder.pth",
             "images/preview.png"]
    assert wanted_files(taesd) == ["config.json", "diffusion_pytorch_model.safetensors"]


def test_cli_image_with_ldfa_and_its_errors(tiny, tmp_path, astronaut, capsys):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    weights = ["--model", str(tiny["model"]), "--lora", str(tiny["lora"]), "--tiny-vae", str(tiny["tiny_vae"])]
    args = ["image", str(src), "-o", str(tmp_path / "out"), "--method", "ldfa", "--steps", "2", "--resolution",
            str(RES), "--diffusion-device", "cpu", *weights]
    assert main(args) == 0
    import json

    summary = json.loads((tmp_path / "out" / "ldfa_summary.json").read_text())
    assert [f["method"] for f in summary["images"][str(src)]["faces"]] == ["ldfa"]
    assert main(["models", "check", *weights]) == 0
    missing = ["image", str(src), "-o", str(tmp_path / "out_missing"), *args[4:-6], "--model", "nobody/no-such-model"]
    assert main(missing) == 2
    assert "ldfa models download nobody/no-such-model" in capsys.readouterr().err


def unet_inputs(renderer: LdfaRenderer, monkeypatch) -> list[torch.Tensor]:
    """Every UNet input (noisy latents, mask, masked-image latents) of the calls that follow."""
    seen: list[torch.Tensor] = []
    forward = renderer.model.unet.forward

    def spy(x, *args, **kwargs):
        seen.append(x.clone())
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(renderer.model.unet, "forward", spy)
    return seen


def test_a_face_at_the_frame_edge_never_reaches_the_model(renderer, astronaut, monkeypatch):
    """A face touching the frame's edge: its crop sticks out of the frame. Scrambling every pixel of the
    face's region changes nothing the UNet is given (the out-of-frame part is masked, not copied from the edge)."""
    box = np.array([0, 150, 90, 270.0])
    seen = unet_inputs(renderer, monkeypatch)
    outputs = []
    for seed in (None, 0, 1):
        frame = astronaut.copy()
        face_job = job(frame, box=box)
        region = face_job.regions[0]
        assert region.roi[0] == 0 and (region.alpha[:, 0] > 0).any()  # the region reaches the edge
        if seed is not None:
            inside = face_job.image[region.slices]
            covered = region.alpha > 0
            inside[covered] = np.random.default_rng(seed).integers(0, 256, (int(covered.sum()), 3))
        renderer.render([face_job])
        outputs.append(face_job.image[region.slices][region.alpha >= 1])
    assert len(seen) == 3 * renderer.steps
    for step in range(renderer.steps):
        runs = seen[step::renderer.steps]
        assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


def test_non_finite_model_output_is_a_counted_failure_and_the_face_is_blurred(renderer, astronaut, monkeypatch):
    def nan_decoder(latents, return_dict=False):
        side = latents.shape[-1] * renderer.scale
        return (torch.full((latents.shape[0], 3, side, side), float("nan")),)

    monkeypatch.setattr(renderer.model.vae, "decode", nan_decoder)
    pipeline = Pipeline(Settings(method="ldfa"), None, {"ldfa": renderer})
    result = pipeline.process_many([given_face(astronaut)])[0]
    assert [(f.method, f.reason) for f in result.faces] == [("blur", "ldfa failed: NonFiniteOutputError")]
    assert pipeline.counters["fallback_ldfa_error"] == 1 and pipeline.counters["faces_blur"] == 1
    assert_face_hidden(result.image, astronaut)
    x1, y1, x2, y2 = ASTRONAUT_FACE.astype(int)
    assert result.image[y1:y2, x1:x2].std() > 1  # blurred, not a flat patch


def test_steps_default_to_what_each_scheduler_needs(tiny):
    assert Settings().steps == 0
    assert denoising_steps(Settings(), "lcm") == 4 and denoising_steps(Settings(), "dpm") == 20
    assert denoising_steps(Settings(steps=3), "lcm") == 3
    dpm = build_renderer(tiny_settings(tiny, lora="", steps=0))  # auto: DPM++ without a LoRA
    assert type(dpm.model.scheduler).__name__ == "DPMSolverMultistepScheduler" and dpm.steps == 20
    assert build_renderer(tiny_settings(tiny, steps=0)).steps == 4  # auto: LCM with LCM-LoRA


def test_lcm_above_its_step_limit_is_refused_before_loading(tiny, tmp_path, astronaut, capsys):
    from diffusers import LCMScheduler

    LCMScheduler().set_timesteps(LCM_MAX_STEPS)  # the real scheduler's limit is ours
    with pytest.raises(ValueError):
        LCMScheduler().set_timesteps(LCM_MAX_STEPS + 1)
    with pytest.raises(ModelError, match="lcm scheduler takes at most 50"):
        build_renderer(tiny_settings(tiny, steps=60))
    assert build_renderer(tiny_settings(tiny, lora="", scheduler="dpm", steps=60)).steps == 60
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), astronaut)
    args = ["image", str(src), "-o", str(tmp_path / "out"), "--method", "ldfa", "--steps", "60", "--model",
            str(tiny["model"]), "--lora", str(tiny["lora"]), "--tiny-vae", str(tiny["tiny_vae"])]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at most 50" in err and "Traceback" not in err


def test_the_renderers_never_import_the_pipeline():
    """Data flows one way: pipeline.py builds render jobs, render/ only receives them (no import cycle)."""
    for path in (Path(__file__).resolve().parents[1] / "ldfa_ros" / "render").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("pipeline", "ldfa_ros.pipeline"), f"{path.name} imports the pipeline"


def test_static_buffers_give_the_eager_results(renderer, astronaut):
    """The graph path's static buffers, run eagerly (the CPU): each shape gets one set of buffers, refilled
    every call, and the results are the UNet's own."""
    unet = renderer.model.unet
    static = StaticUNet(unet, graphs=False)
    rng = torch.Generator().manual_seed(0)
    embeds = renderer.model.prompt_embeds
    for batch in (1, 2, 1):
        x = torch.randn(batch, 9, RES // 8, RES // 8, generator=rng)
        t = torch.tensor(500 - 100 * batch)
        with torch.inference_mode():
            expected = unet(x, t, encoder_hidden_states=embeds.expand(batch, -1, -1), return_dict=False)[0]
            got = static(x, t, embeds.expand(batch, -1, -1))
        assert torch.equal(got, expected)
    assert len(static._entries) == 2 and static.captures == 0
    assert renderer.unet.graphs is False  # the CPU renderer runs the same buffers eagerly


def test_padded_buckets_give_each_face_its_own_result(renderer, astronaut):
    """3 faces go in a bucket of 4 (padded): each equals the face rendered alone."""
    boxes = [ASTRONAUT_FACE, np.array([20, 300, 80, 380.0]), np.array([400, 40, 440, 90.0])]
    together = [job(astronaut, i, box=b) for i, b in enumerate(boxes)]
    renderer.render(together)
    for i, b in enumerate(boxes):
        alone = job(astronaut, i, box=b)
        renderer.render([alone])
        assert np.abs(alone.image.astype(int) - together[i].image).max() <= 1


def test_a_call_that_captures_a_graph_is_not_a_latency_sample(renderer, astronaut, monkeypatch):
    """Capturing a CUDA graph makes a bucket's first call slow; the planner must learn the replayed speed.
    (The capture is counted by StaticUNet; here its counter is advanced as a capture would.)"""
    build = renderer.unet._build

    def capturing(*args):
        renderer.unet.captures += 1
        return build(*args)

    monkeypatch.setattr(renderer.unet, "_build", capturing)
    monkeypatch.setattr(renderer.unet, "_entries", {})
    before = renderer.latency.counts().get((1, RES), 0)
    renderer.render([job(astronaut)])  # new shape: "captured"
    assert renderer.latency.counts().get((1, RES), 0) == before
    renderer.render([job(astronaut)])  # replayed
    assert renderer.latency.counts()[(1, RES)] == before + 1
