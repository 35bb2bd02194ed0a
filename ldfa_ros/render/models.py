"""Diffusion weights: found offline (a local folder or the Hugging Face cache), loaded with diffusers.

Nothing is ever downloaded implicitly: a vehicle or CI machine must not reach out to the network
mid-drive. Missing weights raise one error that names every missing id and the command that fetches
them (`ldfa models download ...`), which is the only place that goes online.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ..settings import Settings
    from .ldfa import LdfaRenderer

log = logging.getLogger("ldfa_ros")

# Parts of a diffusers inpainting pipeline the renderer needs (the safety checker is not one).
PIPELINE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# What must be present for each kind of weights to count as found.
REQUIRED = {"model": ("model_index.json", "unet/config.json"), "tiny_vae": ("config.json",), "lora": ("*.safetensors",)}
NOT_CACHED = "not a folder, and not in the local Hugging Face cache"
# As README "Installation" says: torch first and pinned (an unpinned one pulls a multi-GB CUDA build).
DIFFUSION_INSTALL = ("install torch first, pinned to the build for this machine (pip install torch==<version>), "
                     "then pip install -e '.[diffusion]' (README, Installation)")
NO_FOLDER = "no such folder (and not a Hugging Face id)"
DEFAULT_STEPS = {"lcm": 4}  # steps when `steps` is 0; the other samplers: 20
LCM_MAX_STEPS = 50  # LCMScheduler's original_inference_steps: its distilled schedule has no more
SCHEDULERS = {"lcm": "LCMScheduler", "dpm": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler",
              "euler": "EulerAncestralDiscreteScheduler"}


class ModelMissingError(FileNotFoundError):
    """Diffusion weights not present on this machine; the text says how to fetch them.

    `missing` maps each kind of weights (model, lora, tiny_vae) to (the name asked for, why it was not found).
    """

    def __init__(self, missing: dict[str, tuple[str, str]]) -> None:
        self.missing = missing
        lines = [f"  {kind} {name!r}: {why}" for kind, (name, why) in missing.items()]
        ids = [name for name, why in missing.values() if why != NO_FOLDER and not Path(name).expanduser().is_dir()]
        fetch = f"\nfetch with (on a machine with internet access): ldfa models download {' '.join(ids)}" if ids else ""
        super().__init__("diffusion weights not found offline:\n" + "\n".join(lines) + fetch)


class ModelError(ValueError):
    """Weights that are present but unusable (e.g. not an inpainting model, a LoRA for another model)."""


@dataclass
class DiffusionModel:
    """What the renderer drives. The prompt is encoded once here and the text encoder dropped."""

    unet: Any  # diffusers UNet2DConditionModel with 9 input channels
    vae: Any  # diffusers AutoencoderKL or AutoencoderTiny (TAESD)
    scheduler: Any  # a diffusers scheduler
    prompt_embeds: torch.Tensor  # (1, tokens, dim)
    negative_embeds: torch.Tensor | None  # set when guidance > 1
    device: torch.device
    dtype: torch.dtype


def resolve(name: str, kind: str, cache_dir: str | Path | None = None) -> Path:
    """The folder holding weights `name` (a local folder, or a Hugging Face id in the local cache).

    Raises ModelMissingError naming `name` and the download command when absent or incomplete.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    path = Path(name).expanduser()
    if not path.is_dir():
        try:
            path = Path(snapshot_download(name, local_files_only=True, cache_dir=cache_dir))
        except HFValidationError:
            raise ModelMissingError({kind: (name, NO_FOLDER)}) from None
        except LocalEntryNotFoundError:
            raise ModelMissingError({kind: (name, NOT_CACHED)}) from None
    lacking = [pattern for pattern in REQUIRED[kind] if not any(path.glob(pattern))]
    if lacking:
        raise ModelMissingError({kind: (name, f"incomplete: no {', '.join(lacking)} in {path}")})
    return path


def find(settings: Settings, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Folders of every weight `settings` asks for; one ModelMissingError listing all that are missing."""
    wanted = {"model": settings.model, "tiny_vae": settings.tiny_vae, "lora": settings.lora}
    if not settings.model:
        raise ModelError("model is empty: name an inpainting model folder or Hugging Face id")
    found: dict[str, Path] = {}
    missing: dict[str, tuple[str, str]] = {}
    for kind, name in wanted.items():
        if not name:
            continue
        try:
            found[kind] = resolve(name, kind, cache_dir)
        except ModelMissingError as exc:
            missing.update(exc.missing)
    if missing:
        raise ModelMissingError(missing)
    return found


def pick_device(setting: str) -> tuple[torch.device, torch.dtype]:
    """cuda in fp16 when asked for or (auto) available, else cpu in fp32."""
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise ModelError("diffusion_device is cuda but torch sees no CUDA GPU (is a CPU-only torch installed?)")
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda"), torch.float16
    return torch.device("cpu"), torch.float32


def load(settings: Settings, cache_dir: str | Path | None = None) -> DiffusionModel:
    """Load the inpainting model, fuse the LoRA, swap in TAESD, encode the prompt once."""
    import diffusers
    import torch
    from diffusers import AutoencoderTiny, StableDiffusionInpaintPipeline

    paths = find(settings, cache_dir)
    device, dtype = pick_device(settings.diffusion_device)
    half = _dtype_argument(dtype)
    tiny = AutoencoderTiny.from_pretrained(paths["tiny_vae"], **half) if "tiny_vae" in paths else None
    pipe = StableDiffusionInpaintPipeline.from_pretrained(
        paths["model"], local_files_only=True, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False, **half, **({"vae": None} if tiny is not None else {}))
    if pipe.unet.config.in_channels != 9:
        raise ModelError(f"{settings.model}: not an inpainting model (its UNet takes {pipe.unet.config.in_channels}"
                         " input channels; an SD inpainting UNet takes 9)")
    pipe.to(device)
    if "lora" in paths:
        try:
            pipe.load_lora_weights(str(paths["lora"]))
            pipe.fuse_lora()
            pipe.unload_lora_weights()
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(f"LoRA {settings.lora!r} does not fit model {settings.model!r} ({exc}); "
                             "LCM-LoRA for SD 1.5 needs an SD 1.5 model; use --lora '' for none") from exc
    guided = settings.guidance > 1.0
    with torch.inference_mode():
        positive, negative = pipe.encode_prompt(settings.prompt, device, 1, guided, settings.negative_prompt or None)
    scheduler = getattr(diffusers, SCHEDULERS[scheduler_name(settings, paths)]).from_config(pipe.scheduler.config)
    vae = (tiny if tiny is not None else pipe.vae).to(device)
    unet = pipe.unet
    del pipe  # the text encoder and tokenizer go with it
    for module in (unet, vae):
        module.requires_grad_(False).eval()
    return DiffusionModel(unet, vae, scheduler, positive, negative if guided else None, device, dtype)


def scheduler_name(settings: Settings, paths: dict[str, Path]) -> str:
    """The sampler `settings` ask for; auto: LCM with a LoRA (LCM-LoRA), DPM++ without."""
    return settings.scheduler if settings.scheduler != "auto" else ("lcm" if "lora" in paths else "dpm")


def denoising_steps(settings: Settings, scheduler: str) -> int:
    """`settings.steps`, or the sampler's default for 0 (LCM: 4; DPM++ and the others need about 20).
    LCM cannot take more steps than its distillation schedule has: that is refused here, before loading."""
    steps = settings.steps or DEFAULT_STEPS.get(scheduler, 20)
    if scheduler == "lcm" and steps > LCM_MAX_STEPS:
        raise ModelError(f"steps {steps}: the lcm scheduler takes at most {LCM_MAX_STEPS} (2-4 suit LCM-LoRA); "
                         "for more, use --scheduler dpm")
    return steps


def build_renderer(settings: Settings, cache_dir: str | Path | None = None) -> LdfaRenderer | None:
    """The diffusion renderer `settings` ask for, with its latency table (loaded from
    `settings.latency_file`, or measured by a warm-up when a budget is set).

    For method auto, None and one warning when the weights or the diffusion packages are missing;
    for method ldfa, those are errors.
    """
    try:
        paths = find(settings, cache_dir)  # before importing torch: auto on a core install must stay cheap
        from .ldfa import LdfaRenderer
    except (ModelMissingError, ImportError) as exc:
        if settings.method == "auto":
            log.warning("method auto: latent diffusion unavailable, faces will be blurred. %s", exc)
            return None
        if isinstance(exc, ImportError):
            raise ModelError(f"method ldfa needs the diffusion packages: {DIFFUSION_INSTALL} "
                             f"({exc})") from exc
        raise
    from ..budget import LatencyModel

    steps = denoising_steps(settings, scheduler_name(settings, paths))
    model = load(settings, cache_dir)
    signature = {name: getattr(settings, name) for name in
                 ("model", "lora", "tiny_vae", "scheduler", "resolution", "guidance")}
    signature["steps"] = steps
    signature["device"] = str(model.device) if model.device.type != "cuda" else _gpu_name()
    table = Path(settings.latency_file) if settings.latency_file else None
    latency = LatencyModel.load(table, signature) if table else None
    renderer = LdfaRenderer(model, resolution=settings.resolution, steps=steps,
                            guidance=settings.guidance, seed=settings.seed, latency=latency)
    if latency is None and settings.budget_ms > 0:
        log.info("measuring diffusion latency for the budget planner (warm-up)")
        renderer.warmup(settings.budget_ms)
        if table:
            renderer.latency.save(table, signature)
    elif model.device.type == "cuda":
        renderer.warmup(repeats=0)  # capture every bucket's CUDA graph now, not during the first frames
    return renderer


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name()


def _dtype_argument(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """from_pretrained's precision argument: none for fp32 (the default), `dtype` on diffusers 0.42+
    (where `torch_dtype` is deprecated), `torch_dtype` before."""
    import diffusers
    import torch
    from packaging.version import Version

    if dtype == torch.float32:
        return {}
    return {"dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype": dtype}


def wanted_files(files: list[str]) -> list[str]:
    """Which files of a repository to fetch: configs, tokenizer files and one full-precision copy of
    each weight (not the single-file checkpoints, fp16/EMA variants or the safety checker)."""
    def plain_weights(folder: str) -> list[str]:
        inside = [f for f in files if f.rsplit("/", 1)[0] == folder] if folder else [f for f in files if "/" not in f]
        for suffix in (".safetensors", ".bin"):
            chosen = [f for f in inside if f.endswith(suffix) and f.rsplit("/", 1)[-1].count(".") == 1]
            if chosen:
                return chosen
        return []

    if "model_index.json" not in files:  # a single model (TAESD) or a LoRA
        return [f for f in files if "/" not in f and f.endswith(".json")] + plain_weights("")
    keep = ["model_index.json"]
    for part in PIPELINE_PARTS:
        keep += [f for f in files if f.startswith(part + "/") and f.endswith((".json", ".txt"))]
        keep += plain_weights(part)
    return keep


def download(repo_id: str) -> Path:
    """Fetch `repo_id` from the Hugging Face Hub into the local cache, where `resolve` finds it."""
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(repo_id)
    return Path(snapshot_download(repo_id, allow_patterns=wanted_files(files)))


def _require_hub() -> None:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"needs the diffusion packages: {DIFFUSION_INSTALL} ({exc})") from exc


def run_download(args: argparse.Namespace) -> int:
    from ..settings import Settings

    _require_hub()
    defaults = Settings()
    failed = 0
    for repo_id in args.ids or [defaults.model, defaults.lora, defaults.tiny_vae]:
        try:
            print(f"{repo_id}: {download(repo_id)}")
        except Exception as exc:  # noqa: BLE001 - network, auth or unknown-repo errors: report, go on
            print(f"ldfa models download: {repo_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def run_check(args: argparse.Namespace) -> int:
    from ..cli import settings_from_args

    settings = settings_from_args(args)
    _require_hub()
    try:
        paths = find(settings)
    except ModelMissingError as exc:
        print(exc)
        return 1
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def add_commands(subparsers: Any) -> None:
    from ..cli import add_settings_arguments

    p = subparsers.add_parser("models", help="fetch or check the diffusion weights",
                              description="Diffusion weights are only ever read offline; these commands "
                                          "fetch them into the Hugging Face cache and check what is there.")
    sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION", help="download or check")
    d = sub.add_parser("download", help="fetch weights from the Hugging Face Hub (needs internet)",
                       description="Download Hugging Face repositories into the local cache (HF_HOME), "
                                   "skipping single-file checkpoints, fp16/EMA duplicates and the safety "
                                   "checker. Without IDs: the default inpainting model, LCM-LoRA and TAESD.")
    d.add_argument("ids", nargs="*", metavar="ID", help="Hugging Face repository ids")
    d.set_defaults(run=run_download)
    c = sub.add_parser("check", help="say where the configured weights are, or how to fetch them",
                       description="Exit 0 when every weight the settings ask for is present offline.")
    add_settings_arguments(c, only=("model", "lora", "tiny_vae"))  # the weights `find` looks for
    c.set_defaults(run=run_check)
