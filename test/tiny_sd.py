"""Tiny random-weight Stable Diffusion inpainting parts, built from the real diffusers/transformers
classes the way diffusers' own tests do (`get_dummy_components`): every real code path (loading,
LoRA fusing, TAESD, the batched denoising loop) runs in seconds on a CPU, with no download.

Saved with `save_pretrained`, they form the same folders users point `--model`, `--lora` and
`--tiny-vae` at.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import (AutoencoderKL, AutoencoderTiny, PNDMScheduler, StableDiffusionInpaintPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TEXT_DIM = 16


def tiny_vocab() -> dict[str, int]:
    """CLIP byte-pair vocabulary over single letters (no merges): enough for any lower-case prompt."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    return vocab


def tiny_tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer(vocab=tiny_vocab(), merges=[], model_max_length=77)


def write_sd_tokenizer(folder: Path) -> None:
    """Replace a saved tokenizer with the files SD repositories ship (vocab.json, merges.txt), which is
    what users' folders hold."""
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(tiny_vocab()))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))


def tiny_pipeline(flavour: str = "sd15", in_channels: int = 9, seed: int = 0) -> StableDiffusionInpaintPipeline:
    """SD 1.5 (`sd15`) or SD 2 (`sd2`: linear attention projections, per-block head sizes) inpainting
    architecture at toy size: UNet 8 x 8 latents, VAE with SD's 8x down-scaling, 2-layer CLIP."""
    torch.manual_seed(seed)
    sd2 = flavour == "sd2"
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=in_channels, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM, attention_head_dim=(2, 4) if sd2 else 4, use_linear_projection=sd2,
        norm_num_groups=8)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8), in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4,
        sample_size=64)
    tokenizer = tiny_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=TEXT_DIM, intermediate_size=32,
        num_attention_heads=2, num_hidden_layers=2, vocab_size=len(tokenizer),
        hidden_act="gelu" if sd2 else "quick_gelu"))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, prediction_type="v_prediction" if sd2 else "epsilon")
    return StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)


def tiny_taesd(seed: int = 0) -> AutoencoderTiny:
    """TAESD's architecture (8x down-scaling, 4 latent channels) with 8 channels per block."""
    torch.manual_seed(seed)
    return AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                           num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1), latent_channels=4)


def save_tiny_lora(pipe: StableDiffusionInpaintPipeline, folder: Path, seed: int = 0) -> Path:
    """A random LoRA on the UNet's attention projections, saved like LCM-LoRA (pytorch_lora_weights.safetensors)."""
    import copy

    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = copy.deepcopy(pipe.unet)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:  # peft starts lora_B at zero, which would make the LoRA a no-op
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    StableDiffusionInpaintPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(unet))
    return folder


def save_tiny_models(root: Path, flavour: str = "sd15", in_channels: int = 9) -> dict[str, Path]:
    """Save a tiny inpainting model, TAESD and LoRA under `root`; returns their folders by setting name."""
    pipe = tiny_pipeline(flavour, in_channels)
    paths = {"model": root / f"{flavour}-inpainting", "tiny_vae": root / "taesd", "lora": root / "lora"}
    pipe.save_pretrained(paths["model"])
    write_sd_tokenizer(paths["model"] / "tokenizer")
    tiny_taesd().save_pretrained(paths["tiny_vae"])
    save_tiny_lora(pipe, paths["lora"])
    return paths
