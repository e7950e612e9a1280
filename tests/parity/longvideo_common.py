"""Helpers shared by the long-video parity checks: files, weights, comparisons, module captures."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

import tests.pack  # noqa: F401
from tests.parity.report import Comparison, compare
from tests.parity.report import failed
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

UNET_PREFIX = "model.diffusion_model."
F32_ATOL = 1e-5      # fp32 UNet outputs (|y| ~ 1)
F64_ATOL = 1e-9      # fp64 UNet outputs
E2E_RTOL = 1e-4      # sampler end to end and per step (max|diff| / max|ref|), README §4.3
STEP_RTOL = 1e-6     # one DDIM update recomputed from stored eps and noise


def fixture_name(config_path: Path, config: dict) -> str:
    return config.get("fixture") or config_path.name[: -len(".config.json")]


def tensor_file(config_path: Path) -> Path:
    stem = config_path.name[: -len(".config.json")]
    for suffix in (".io.safetensors", ".safetensors"):
        path = config_path.with_name(stem + suffix)
        if path.is_file():
            return path
    raise FileNotFoundError(f"no tensor file beside {config_path.name} ({stem}.io.safetensors / {stem}.safetensors)")


def exact(fx: str, name: str, actual: torch.Tensor, expected: torch.Tensor, note: str = "") -> Comparison:
    """Bit-exact comparison, dtype included."""
    if actual.dtype != expected.dtype:
        return failed(fx, name, f"dtype {actual.dtype} != expected {expected.dtype}")
    return compare(fx, name, actual, expected, atol=0.0, note=note)


def scaled(fx: str, name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, note: str = ""):
    """``atol x max(1, max|ref|)``: float rounding is relative, and inner activations exceed 1."""
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    extra = f"{atol:g} x max|ref| {scale:.3g}" + (f"; {note}" if note else "")
    return compare(fx, name, actual, expected, atol=atol * scale, note=extra)


def find_weights(config_path: Path, spec) -> Path:
    """The weights a config names: a string containing ``*.weights.safetensors`` or a dict with file/path.

    Looked up beside the config, then under every ancestor (``path`` is written relative to a workspace root),
    then in ``../../fixtures`` (the VideoCrafter reference fixtures the long-video data reuses)."""
    if isinstance(spec, dict):
        rel, name = spec.get("path"), spec.get("file")
    else:
        match = re.search(r"([\w.\-]+\.weights\.safetensors)", str(spec))
        rel, name = None, match.group(1) if match else None
    candidates = []
    if name:
        candidates.append(config_path.with_name(name))
    if rel:
        candidates += [parent / rel for parent in config_path.resolve().parents]
    if name:
        candidates.append(config_path.resolve().parents[2] / "fixtures" / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"weights {spec!r} not found (looked at {[str(c) for c in candidates[:4]]})")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_unet(unet_kwargs: dict, weights_path: Path, dtype=torch.float32) -> VideoCrafterUNet:
    """Our UNet from the fixture kwargs, weights cast from fp16 storage, strict load."""
    model = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(unet_kwargs), dtype=dtype)
    state = {k[len(UNET_PREFIX):]: v.to(dtype) for k, v in load_file(str(weights_path)).items()
             if k.startswith(UNET_PREFIX)}
    model.load_state_dict(state, strict=True)
    return model.eval()


class Captures:
    """Forward hooks keyed like the fixtures' ``mid/<module>/<what>``: input, output, fused_before_to_out
    (the input of ``<module>.to_out``)."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        self.values: dict[str, torch.Tensor] = {}
        self.handles = []
        for name in names:
            module_path, what = name.rsplit("/", 1)
            try:
                module = model.get_submodule(module_path)
            except AttributeError:
                continue
            if what == "input":
                self.handles.append(module.register_forward_pre_hook(self._store_arg(name)))
            elif what == "output":
                self.handles.append(module.register_forward_hook(self._store_out(name)))
            elif what == "fused_before_to_out" and hasattr(module, "to_out"):
                self.handles.append(module.to_out.register_forward_pre_hook(self._store_arg(name)))

    def _store_arg(self, name):
        return lambda module, args: self.values.__setitem__(name, args[0].detach().clone())

    def _store_out(self, name):
        return lambda module, args, out: self.values.__setitem__(name, out.detach().clone())

    def __enter__(self):
        return self.values

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
