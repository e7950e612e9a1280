"""Where the pack keeps the original's float32 instead of ComfyUI's storage default.

Core stores text and image encoder weights in float16 even on the CPU
(``model_management.text_encoder_dtype``) and casts them up per layer there, which only rounds
the weights (≈1e-3 on the embeddings) and buys no speed. The original runs its OpenCLIP
encoders in float32, so on the CPU our encoders keep float32 unless the user asked for an
encoder dtype (``--fp16-text-enc`` ...). On a GPU core's choice stands; ``--fp32-text-enc``
gives the original's float32 there.
"""
from __future__ import annotations

import comfy.model_management
import torch

_ENCODER_DTYPE_FLAGS = ("fp16_text_enc", "bf16_text_enc", "fp8_e4m3fn_text_enc", "fp8_e5m2_text_enc", "fp32_text_enc")


def encoder_dtype_requested() -> bool:
    """True when ComfyUI was started with an explicit text-encoder dtype flag."""
    from comfy.cli_args import args

    return any(getattr(args, flag, False) for flag in _ENCODER_DTYPE_FLAGS)


def keep_encoder_float32(device: torch.device | None = None) -> bool:
    """Should an encoder on ``device`` (default: core's text-encoder device) keep float32 weights?"""
    device = comfy.model_management.text_encoder_device() if device is None else device
    return not encoder_dtype_requested() and comfy.model_management.is_device_cpu(device)
