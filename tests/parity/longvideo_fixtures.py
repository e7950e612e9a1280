"""Parity checks for the long-video fixtures (``../shared/reference/longvideo/``: FreeNoise, FIFO-Diffusion).

The runner (``tests/parity/__main__.py``) calls ``matches(config)`` and ``check(config_path)``. Dispatch is on
the config's content, never on file names, so fixtures of the same formats with other seeds, frame counts,
windows, strides, sample counts or run names pass without code changes:

- noise rescheduling (``combos`` with ``src_index``/``window_size``): ``tests/parity/longvideo_freenoise_checks.py``;
- window-fused UNet (``unet_kwargs`` + ``*_fused_*`` calls) and FreeNoise sampler runs (``sampler.window_size``);
- FIFO (``pipeline_runs`` / per-frame ``unet_calls``): ``tests/parity/longvideo_fifo_checks.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity import longvideo_fifo_checks as fifo_checks
from tests.parity import longvideo_freenoise_checks as freenoise_checks
from tests.parity.report import Comparison


def _kind(config: dict) -> str | None:
    combos = config.get("combos")
    if isinstance(combos, dict) and combos and all(
            isinstance(c, dict) and "src_index" in c and "window_size" in c for c in combos.values()):
        return "freenoise_noise"
    calls = config.get("calls")
    if isinstance(config.get("unet_kwargs"), dict) and isinstance(calls, dict) and any(
            "_fused_" in k for k in calls):
        return "freenoise_unet"
    sampler = config.get("sampler")
    if isinstance(sampler, dict) and "window_size" in sampler and isinstance(config.get("runs"), dict):
        return "freenoise_sampler"
    if isinstance(config.get("pipeline_runs"), dict) or (
            isinstance(config.get("unet_calls"), dict) and any("per_frame" in k for k in config["unet_calls"])):
        return "fifo"
    return None


def matches(config: dict) -> bool:
    """FreeNoise noise / fused UNet / sampler fixtures and FIFO fixtures (see the module docstring)."""
    return _kind(config) is not None


def check(config_path: Path) -> list[Comparison]:
    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    kind = _kind(config)
    if kind == "freenoise_noise":
        return freenoise_checks.check_noise(config_path, config)
    if kind == "freenoise_unet":
        return freenoise_checks.check_unet(config_path, config)
    if kind == "freenoise_sampler":
        return freenoise_checks.check_sampler(config_path, config)
    if kind == "fifo":
        return fifo_checks.check_fifo(config_path, config)
    raise ValueError(f"{config_path.name}: not a long-video fixture")


def not_checked(config_path: Path) -> list[str]:
    config = json.loads(Path(config_path).read_text())
    return fifo_checks.not_checked(config) if _kind(config) == "fifo" else []
