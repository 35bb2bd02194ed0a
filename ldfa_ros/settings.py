"""Anonymization settings: one typed, validated schema shared by the CLI, the bag tool and the node.

Every field carries its description and allowed range, so the ROS parameter descriptors and the
README's parameter table are generated from here and cannot drift apart.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

METHODS = ("blur", "pixelate", "mask", "ldfa", "auto")
CLASSIC_METHODS = ("blur", "pixelate", "mask")
# Detector presets (coverage and cost measured on WIDER dev: README "Detection settings and what they cover").
PRESETS: dict[str, dict[str, Any]] = {
    "realtime": {"threshold": 0.2, "scales": (1.0,), "flip": False},  # one native pass: the live node's default
    "recall": {"threshold": 0.22, "scales": (1.0, 2.0), "flip": True},  # 4 passes: offline commands' default
}
OFFLINE_PRESET = "recall"
PRESET_FIELDS = ("threshold", "scales", "flip")


def _spec(default: Any, description: str, *, low: float | None = None, high: float | None = None,
          choices: tuple[str, ...] | None = None, runtime: bool = False) -> Any:
    meta = {"description": description, "low": low, "high": high, "choices": choices, "runtime": runtime}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


class SettingsError(ValueError):
    """A setting with a wrong name, type or value; the text names it and what is allowed."""


@dataclass(frozen=True)
class Settings:
    """What to detect and how to hide it. Field metadata documents each one."""

    preset: str = _spec("realtime", "detector preset setting threshold, scales and flip: realtime (one native "
                        "pass) or recall (native and 2x passes, each also mirrored: about 10x the CPU cost); the "
                        "live node defaults to realtime, offline commands to recall; threshold, scales and flip "
                        "given as well override it", choices=tuple(PRESETS))
    threshold: float = _spec(0.2, "face detector score threshold; lower finds more faces and more false alarms",
                             low=0.01, high=0.99, runtime=True)
    scales: tuple[float, ...] = _spec((1.0,), "detector passes as image scale factors, merged by NMS; "
                                      "1.0 is native resolution, 2.0 adds a pass that finds faces half as large",
                                      low=0.25, high=4.0)
    flip: bool = _spec(False, "also detect on the mirrored frame (higher recall, twice the detector cost)")
    mask_scale: float = _spec(1.5, "face box dilation factor about its centre before hiding (the region is "
                              "another 1.15 times taller, for chin and forehead)", low=1.0, high=3.0,
                              runtime=True)
    shape: str = _spec("ellipse", "shape of the hidden region inside the dilated box", choices=("ellipse", "box"),
                       runtime=True)
    feather: float = _spec(0.1, "width of the soft edge outside the region, as a share of its size", low=0.0,
                           high=0.5, runtime=True)
    method: str = _spec("blur", "how faces are hidden: blur, pixelate, mask, ldfa (latent diffusion) or auto "
                        "(ldfa when its weights are present, else blur)", choices=METHODS, runtime=True)
    carry_frames: int = _spec(5, "frames a face stays hidden after the detector last saw it, per stream",
                              low=0, high=300, runtime=True)
    on_error: str = _spec("blur", "what a frame becomes when any stage fails: the whole frame blurred, or dropped",
                          choices=("blur", "drop"), runtime=True)
    budget_ms: float = _spec(0.0, "per-frame latency budget in ms for choosing diffusion vs blur (0: no budget)",
                             low=0.0, high=10000.0, runtime=True)
    device: str = _spec("cpu", "detector runtime: cpu, cuda or tensorrt (onnxruntime execution providers)",
                        choices=("cpu", "cuda", "tensorrt"))
    # Latent diffusion inpainting (method ldfa/auto); see ldfa_ros/render/ldfa.py.
    model: str = _spec("stable-diffusion-v1-5/stable-diffusion-inpainting",
                       "diffusion inpainting weights (SD 1.5 or SD 2 inpainting): a local diffusers folder or a "
                       "Hugging Face id found in the local cache (never downloaded implicitly)")
    lora: str = _spec("latent-consistency/lcm-lora-sdv1-5", "LoRA fused into the UNet at load, folder or id; "
                      "LCM-LoRA makes 4 steps work on SD 1.5; empty for none (e.g. with SD 2)")
    tiny_vae: str = _spec("madebyollin/taesd", "tiny autoencoder (TAESD) replacing the model's VAE for fast "
                          "encode/decode, folder or id; empty to use the model's own VAE")
    scheduler: str = _spec("auto", "diffusion sampler: lcm, dpm, ddim, euler (ancestral) or auto (lcm with a LoRA, "
                           "else dpm)", choices=("auto", "lcm", "dpm", "ddim", "euler"))
    steps: int = _spec(0, "denoising steps per face; 0: the scheduler's default (lcm 4, others 20); 2-4 suit "
                       "LCM-LoRA, which takes at most 50", low=0, high=100)
    resolution: int = _spec(256, "side in pixels of the square face crop the diffusion model works at, a multiple "
                            "of 64 (256 is fast; 512 is SD's native size)", low=64, high=1024)
    prompt: str = _spec("", "text prompt for the generated faces (the paper: empty)")
    negative_prompt: str = _spec("", "negative text prompt (only used when guidance > 1)")
    guidance: float = _spec(1.0, "classifier-free guidance scale; 1 turns it off (the paper's setting, half the "
                            "UNet work)", low=1.0, high=20.0)
    seed: int = _spec(0, "base seed; each tracked face's noise is derived from (seed, stream, track id), so one "
                      "person keeps one synthetic face", low=0, high=2**31 - 1)
    diffusion_device: str = _spec("auto", "where diffusion runs: cuda (fp16), cpu (fp32), or auto (cuda when "
                                  "available)", choices=("auto", "cpu", "cuda"))
    latency_file: str = _spec("", "JSON file keeping the measured diffusion latencies between runs (skips the "
                              "warm-up that measures them when a budget is set); empty: not kept")

    @staticmethod
    def describe() -> list[dict[str, Any]]:
        """Name, default, type, description and range of every setting."""
        rows = []
        for f in fields(Settings):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            rows.append({"name": f.name, "default": default, "type": type(default).__name__, **f.metadata})
        return rows

    def updated(self, **changes: Any) -> Settings:
        """A copy with `changes` applied after checking each one; a `preset` applies first, so the
        detector fields given with it override it."""
        known = {f.name: f for f in fields(Settings)}
        if "preset" in changes:
            preset = _check("preset", changes["preset"], self.preset, known["preset"].metadata)
            changes = {**PRESETS[preset], **changes, "preset": preset}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}; known: {', '.join(known)}")
            clean[name] = _check(name, value, getattr(self, name), known[name].metadata)
        return replace(self, **clean)


def from_parameters(values: dict[str, Any]) -> Settings:
    """Settings from a full set of values, as ROS parameters give them (every field has a value): a
    detector field left at its default takes the preset's value, so `preset: recall` alone is enough."""
    defaults = Settings()
    preset = values.get("preset", defaults.preset)
    clean = {k: v for k, v in values.items()
             if not (k in PRESET_FIELDS and _same(v, getattr(defaults, k)) and preset != defaults.preset)}
    return defaults.updated(**clean)


def _same(value: Any, default: Any) -> bool:
    return list(value) == list(default) if isinstance(default, tuple) else bool(value == default)


def _check(name: str, value: Any, current: Any, meta: Any) -> Any:
    if isinstance(current, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise SettingsError(f"{name} must be a list of numbers, got {value!r}")
        items = tuple(_check(name, v, 0.0, meta) for v in value)
        if not items:
            raise SettingsError(f"{name} must not be empty")
        return items
    if isinstance(current, bool) or isinstance(current, str):
        if not isinstance(value, type(current)):
            raise SettingsError(f"{name} must be a {type(current).__name__}, got {value!r}")
    elif isinstance(current, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{name} must be a number, got {value!r}")
        if isinstance(current, int) and not float(value).is_integer():
            raise SettingsError(f"{name} must be a whole number, got {value!r}")
        value = type(current)(value)
    if meta["choices"] and value not in meta["choices"]:
        raise SettingsError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta["low"] is not None and not meta["low"] <= value <= meta["high"]:
        raise SettingsError(f"{name} must be within [{meta['low']}, {meta['high']}], got {value!r}")
    return value
