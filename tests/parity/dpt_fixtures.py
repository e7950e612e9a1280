"""Parity of the MiDaS DPT depth path (Make-Your-Video reference, ``../shared/reference/makeyourvideo``).

Two kinds of input, recognised by content:

* **depth fixtures** (``myv_depth_tiny``: a config with ``reduced_architecture`` whose ``tiny`` entry
  has ``dpt_features``): the DPT is built from the weight file's shapes (heads from the config, the
  one size no shape shows) and loaded strictly; the original's ``get_batch_depth`` is replayed on
  ``in/video``: the 384² bicubic input (``mid/x_midas_*``), the DPT output (``out/dpt_raw_*``), the
  hook captures (``mid/dpt/*``: names say frame/channel slices, parsed), and every normalised output
  ``out/depth_*_norm*`` (target size = the stored tensor's spatial size; ``temporal_norm`` from the
  name). Steps 4-6 (resize + min-max) are replayed by a small private function here — the pack's
  structure conditioning lives in another module and has its own fixture (``myv_depth_preproc``).
  ``*_timm045_*`` is informational upstream (another timm's weight standardisation) and is skipped.
* **DPT manifests** (``midas_dpt_hybrid.json``, ``midas_dpt_large.json``: ``keys`` + ``scratch_in_channels``):
  sizes detected from the manifest's shapes, the model built on the meta device, keys and shapes
  compared exactly (0 missing / 0 unexpected), parameter count compared with the manifest's.

Tolerances: float32 outputs ≤ 1e-5 × max(1, max|ref|) abs (the reference's own f64-vs-f32 gap is
2.1e-6 on the raw map and 7.6e-6 on the normalised depth; min-max divides by the frame's range,
so the normalised outputs get the scale ``2/(range)`` applied to the raw tolerance, stated per line);
float64 outputs ≤ 1e-9 abs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity.report import Comparison, compare
from videocrafter_suite.models.depth.dpt import DPTConfig, DPTDepthModel, detect_backbone
from videocrafter_suite.models.depth.dpt_run import estimate_inverse_depth
from videocrafter_suite.models.depth.structure import midas_input

F32_ATOL = 1e-5
F64_ATOL = 1e-9
DEFAULT_PREFIX = "depth_stage_model.model."
CAPTURE_NAMES = {"stem_out": "stem", "stage0_out": "stage0", "vit_tokens_after_norm": "vit_tokens"}


def matches(config: dict) -> bool:
    tiny = (config.get("reduced_architecture") or {}).get("tiny") if isinstance(config, dict) else None
    if isinstance(tiny, dict) and "dpt_features" in tiny:
        return True
    return isinstance(config.get("keys"), dict) and "scratch_in_channels" in config


def check(config_path: Path) -> list[Comparison]:
    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    if "keys" in config:
        return check_manifest(config_path.stem, config)
    return check_fixture(config_path, config)


def _count(fixture: str, name: str, problems: list[str], ok: str) -> Comparison:
    n = float(len(problems))
    return Comparison(fixture, name, n, n, atol=0.0, note="; ".join(problems[:6]) or ok)


def check_manifest(name: str, manifest: dict) -> list[Comparison]:
    expected = {k: tuple(v) for k, v in manifest["keys"].items()}
    meta = {k: torch.empty(v, device="meta") for k, v in expected.items()}
    backbone = detect_backbone(meta)
    with torch.device("meta"):
        model = DPTDepthModel(DPTConfig.from_state_dict(meta), device="meta")
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing {k}" for k in sorted(set(expected) - set(actual))]
    problems += [f"unexpected {k}" for k in sorted(set(actual) - set(expected))]
    problems += [f"shape {k}: {actual[k]} != {expected[k]}" for k in sorted(set(expected) & set(actual))
                 if actual[k] != expected[k]]
    results = [_count(name, f"{backbone} keys/shapes (meta)", problems, f"{len(expected)} keys equal")]
    hooks = manifest.get("hooks")
    if hooks is not None:
        results.append(_count(name, "hooks", [] if list(model.config.hooks) == list(hooks)
                              else [f"{model.config.hooks} != {hooks}"], str(hooks)))
    count = sum(p.numel() for p in model.parameters())
    want = manifest.get("parameter_count")
    if want is not None:
        results.append(_count(name, "parameter count", [] if count == want else [f"{count} != {want}"], f"{count:,}"))
    released = DPTConfig.dpt_hybrid() if backbone == "vitb_rn50_384" else DPTConfig.dpt_large()
    results.append(_count(name, "detected config == released preset",
                          [] if model.config == released else [f"{model.config} != {released}"], backbone))
    return results


def _frames(video: torch.Tensor) -> torch.Tensor:
    """``[B, 3, T, H, W]`` → ``(b t) 3 H W`` (get_batch_depth step 1)."""
    b, c, t, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def _normalise(raw: torch.Tensor, batch: int, size: tuple[int, int], temporal: bool) -> torch.Tensor:
    """get_batch_depth steps 4-6 (ddpm3d.py:669-680), private replay for this checker."""
    depth = F.interpolate(raw, size=size, mode="bicubic", align_corners=False)
    n, c, h, w = depth.shape
    depth = depth.reshape(batch, n // batch, c, h, w)
    dims = (1, 2, 3, 4) if temporal else (2, 3, 4)
    low, high = depth.amin(dim=dims, keepdim=True), depth.amax(dim=dims, keepdim=True)
    depth = 2.0 * (depth - low) / (high - low + 1e-7) - 1.0
    return depth.permute(0, 2, 1, 3, 4)


def _slice(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the ``_frame{i}`` / ``_ch{a}-{b}`` / ``_strided{s}`` selections a stored name encodes."""
    frame = re.search(r"_frame(\d+)", name)
    if frame:
        index = int(frame.group(1))
        tensor = tensor[index:index + 1]
    channels = re.search(r"_ch(\d+)-(\d+)", name)
    if channels:
        tensor = tensor[:, int(channels.group(1)):int(channels.group(2)) + 1]
    stride = re.search(r"_strided(\d+)", name)
    if stride:
        s = int(stride.group(1))
        tensor = tensor[..., ::s, ::s]
    return tensor


def _capture_key(name: str) -> str:
    base = re.sub(r"(_frame\d+|_ch\d+-\d+|_f32|_f64)", "", name.split("/")[-1])
    return CAPTURE_NAMES.get(base, base)


def check_fixture(config_path: Path, config: dict) -> list[Comparison]:
    fx = config.get("fixture") or config_path.name[: -len(".config.json")]
    stem = config_path.name[: -len(".config.json")]
    weights = load_file(config_path.with_name(stem + ".weights.safetensors"))
    io = load_file(config_path.with_name(stem + ".io.safetensors"))
    prefix = str(config.get("weights_key_prefix", DEFAULT_PREFIX)).split()[0]
    state = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    heads = int(config["reduced_architecture"]["tiny"]["vit_num_heads"])
    results: list[Comparison] = []
    video = io["in/video"]
    batch = video.shape[0]
    runs = {}
    with torch.inference_mode():
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            model = DPTDepthModel.from_state_dict({k: v.to(dtype) for k, v in state.items()}, num_heads=heads,
                                                  dtype=dtype).eval()
            frames = _frames(video.to(dtype))
            capture = {} if tag == "f32" else None
            x = midas_input(frames)
            raw = model(x, capture)
            # the public entry point (steps 1-3) must give the same map
            runs[tag] = (x, raw, capture, estimate_inverse_depth(model, frames))
    for key in sorted(io):
        expected = io[key]
        tag = "f64" if "_f64" in key else "f32"
        if key.startswith("in/") or "timm045" in key or tag not in runs:
            continue
        x, raw, capture, entry = runs[tag]
        atol = F64_ATOL if tag == "f64" else F32_ATOL
        if key.startswith("mid/x_midas"):
            results.append(compare(fx, key, _slice(x, key), expected, atol=atol))
        elif key.startswith("out/dpt_raw"):
            results.append(compare(fx, key, _slice(raw, key), expected, atol=atol))
            if tag == "f32":
                results.append(compare(fx, key + " (estimate_inverse_depth)", _slice(entry[:, 0], key), expected,
                                       atol=atol))
        elif key.startswith("mid/dpt/"):
            got = _slice(capture[_capture_key(key)], key)
            scale = max(1.0, float(expected.abs().max()))
            results.append(compare(fx, key, got, expected, atol=atol * scale, note=f"x max|ref| {scale:.3g}"))
        elif key.startswith("mid/depth_prenorm"):
            got = F.interpolate(entry, size=tuple(expected.shape[-2:]), mode="bicubic", align_corners=False)
            results.append(compare(fx, key, got, expected, atol=atol))
        elif key.startswith("out/depth_") and "_norm" in key:
            size = tuple(expected.shape[-2:])
            temporal = "temporal_norm" in key
            got = _normalise(entry, batch, size, temporal)
            prenorm = F.interpolate(runs["f32"][3], size=size, mode="bicubic", align_corners=False)
            spread = float((prenorm.amax(dim=(1, 2, 3)) - prenorm.amin(dim=(1, 2, 3))).min())
            gain = max(1.0, 2.0 / spread)
            results.append(compare(fx, key, got, expected, atol=atol * gain,
                                   note=f"x 2/range {gain:.3g}" + (" (temporal_norm)" if temporal else "")))
    return results


def not_checked(config_path: Path) -> list[str]:
    if not Path(config_path).name.endswith(".config.json"):
        return []
    stem = Path(config_path).name[: -len(".config.json")]
    try:
        keys = load_file(Path(config_path).with_name(stem + ".io.safetensors")).keys()
    except OSError:
        return []
    return [f"{k}: informational (timm 0.4.5 weight standardisation, reference README §5.3)"
            for k in sorted(keys) if "timm045" in k]
