"""Parity checks for UNet fixtures (format of ``../shared/reference/fixtures/t2v_tiny_*``, ``i2v_tiny``).

The runner (``tests/parity/__main__.py``) calls ``matches(config)`` and ``check(config_path)``.
Everything is read from the config JSON and the safetensors files, so other fixtures of the same
format (other shapes, seeds, batch sizes, frame counts, fps as tensor / int / absent) work:

- ``detect_unet_config`` on the weight keys must equal the config built from ``unet_kwargs``;
- the weights load with ``strict=True`` (prefix ``model.diffusion_model.`` stripped);
- ``out/y_f32`` and ``out/y_fps_default16_f32`` (<= 1e-5 abs), ``out/y_f64`` in float64 (<= 1e-9 abs);
- every ``mid/*`` hook capture of the ``y_f32`` call, <= 1e-5 x max(1, max|ref|) abs. The scaling
  is needed because float32 rounding is relative: inner activations reach |x| ~ 10, and there the
  reference's *own* float32 error (against our float64 run, which matches ``out/y_f64`` to 1e-14)
  is already ~1.1e-5, so no float32 implementation can be within 1e-5 of it everywhere. Each mid
  line's note prints that measured reference error;
- I2V (``resampler_kwargs``): the Resampler on ``in/image_tokens`` → ``out/image_emb_*``, and
  the UNet given the image tokens both as the original concatenated context and as
  ``image_context=``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity.report import Comparison, compare
from tests.parity.report import failed as _failed
from videocrafter_suite.models.image.resampler import Resampler, ResamplerConfig, detect_resampler_config
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet
from videocrafter_suite.models.unet.detect import UNET_PREFIX, config_differences, detect_unet_config

F32_ATOL = 1e-5
F64_ATOL = 1e-9
RESAMPLER_PREFIX = "image_proj_model."


def matches(config: dict) -> bool:
    """UNet fixtures: ``unet_kwargs`` and the plain-UNet calls, without a StyleCrafter adapter."""
    calls = config.get("calls")
    return (isinstance(config.get("unet_kwargs"), dict) and isinstance(calls, dict)
            and "out/y_f32" in calls and config.get("adapter_config") is None)


def _files(config_path: Path) -> tuple[Path, Path]:
    stem = config_path.name[: -len(".config.json")]
    return config_path.with_name(stem + ".weights.safetensors"), config_path.with_name(stem + ".io.safetensors")


def _count(fixture: str, name: str, problems: list[str], note_ok: str) -> Comparison:
    """A structural check printed as a comparison: max_abs is the number of problems."""
    n = float(len(problems))
    return Comparison(fixture, name, n, n, atol=0.0, note="; ".join(problems[:6]) or note_ok)


def load_unet(config: dict, weights: dict, dtype=torch.float32) -> VideoCrafterUNet:
    """Build from ``unet_kwargs`` and load the fixture weights strictly."""
    model = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(config["unet_kwargs"]), dtype=dtype)
    state = {k[len(UNET_PREFIX):]: v.to(dtype) for k, v in weights.items() if k.startswith(UNET_PREFIX)}
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_resampler(config: dict, weights: dict, dtype=torch.float32) -> Resampler:
    model = Resampler(ResamplerConfig(**config["resampler_kwargs"]), dtype=dtype)
    state = {k[len(RESAMPLER_PREFIX):]: v.to(dtype) for k, v in weights.items() if k.startswith(RESAMPLER_PREFIX)}
    model.load_state_dict(state, strict=True)
    return model.eval()


def _fps_input(config: dict, io: dict):
    """``in/fps`` tensor if stored; else a plain number from the config's inputs; else None."""
    if "in/fps" in io:
        return io["in/fps"]
    value = config.get("inputs", {}).get("fps")
    return value if isinstance(value, (int, float)) else None


def _hooks(model: VideoCrafterUNet, names: list[str], store: dict) -> list:
    """Forward hooks that store what each ``mid/<name>`` describes (see the config's calls)."""
    handles = []
    inputs = {"t_emb_sinusoid": "time_embed", "fps_emb_sinusoid": "fps_embedding"}
    outputs = {"time_embed_out": "time_embed", "fps_embedding_out": "fps_embedding"}
    for name in names:
        if name in inputs:
            module = model.get_submodule(inputs[name])
            handles.append(module.register_forward_pre_hook(
                lambda m, args, name=name: store.__setitem__(name, args[0].detach().clone())))
            continue
        path = outputs.get(name, name)
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        handles.append(module.register_forward_hook(
            lambda m, args, out, name=name: store.__setitem__(name, out.detach().clone())))
    return handles


def check(config_path: Path) -> list[Comparison]:
    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    fx = config.get("fixture") or config_path.name[: -len(".config.json")]
    weights_path, io_path = _files(config_path)
    weights = load_file(weights_path)
    io = load_file(io_path)
    results: list[Comparison] = []

    # Config detection from keys and shapes only.
    with safe_open(weights_path, "pt") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    expected_cfg = UNet3DConfig.from_upstream_kwargs(config["unet_kwargs"])
    results.append(_count(fx, "detect_unet_config(keys) == unet_kwargs",
                          config_differences(expected_cfg, detect_unet_config(shapes)), "same config"))

    x, t = io["in/x"], io["in/timesteps"]
    fps = _fps_input(config, io)
    ctx_text = io["in/context_text"]
    fps_kw = {} if fps is None else {"fps": fps}

    # I2V: image tokens through the Resampler, appended after the 77 text tokens.
    image_emb = {}
    if config.get("resampler_kwargs"):
        expected_rs = ResamplerConfig(**config["resampler_kwargs"])
        got_rs = detect_resampler_config(shapes, dim_head=expected_rs.dim_head)
        results.append(_count(fx, "detect_resampler_config(keys) == resampler_kwargs",
                              [] if got_rs == expected_rs else [f"{got_rs} != {expected_rs}"], "same config"))
        for dtype, tag, atol in ((torch.float32, "f32", F32_ATOL), (torch.float64, "f64", F64_ATOL)):
            with torch.no_grad():
                emb = load_resampler(config, weights, dtype)(io["in/image_tokens"].to(dtype))
            image_emb[tag] = emb
            if f"out/image_emb_{tag}" in io:
                results.append(compare(fx, f"out/image_emb_{tag}", emb, io[f"out/image_emb_{tag}"], atol=atol))

    def context_for(tag: str, dtype) -> torch.Tensor:
        ctx = ctx_text.to(dtype)
        return torch.cat([ctx, image_emb[tag]], dim=1) if tag in image_emb else ctx

    # Float64 run with the same hooks: the "truth" the float32 captures are measured against.
    mids = [k[len("mid/"):] for k in io if k.startswith("mid/") and k != "mid/context_full_f32"]
    truth: dict[str, torch.Tensor] = {}
    model64 = load_unet(config, weights, torch.float64)
    handles = _hooks(model64, mids, truth)
    try:
        with torch.no_grad():
            y64 = model64(x.double(), t, context_for("f64", torch.float64), **fps_kw)
    finally:
        for handle in handles:
            handle.remove()

    model = load_unet(config, weights)
    ctx32 = context_for("f32", torch.float32)
    if "mid/context_full_f32" in io:
        results.append(compare(fx, "mid/context_full_f32", ctx32, io["mid/context_full_f32"], atol=F32_ATOL))

    captured: dict[str, torch.Tensor] = {}
    handles = _hooks(model, mids, captured)
    try:
        with torch.no_grad():
            y = model(x, t, ctx32, **fps_kw)
    finally:
        for handle in handles:
            handle.remove()
    for key in sorted(io):
        expected = io[key]
        if key == "out/y_f32":
            results.append(compare(fx, key, y, expected, atol=F32_ATOL))
            if image_emb:
                with torch.no_grad():
                    y_ic = model(x, t, ctx_text, **fps_kw, image_context=image_emb["f32"])
                results.append(compare(fx, "out/y_f32 (image_context=)", y_ic, expected, atol=F32_ATOL))
            frames = x.shape[2]
            with torch.no_grad():
                y_bf = model(x.transpose(1, 2).flatten(0, 1), t, ctx32, **fps_kw, num_frames=frames)
            y_bf = y_bf.reshape(x.shape[0], frames, *y_bf.shape[1:]).transpose(1, 2)
            results.append(compare(fx, "out/y_f32 (batch-as-frames)", y_bf, expected, atol=F32_ATOL))
        elif key == "out/y_fps_default16_f32":
            with torch.no_grad():
                y16 = model(x, t, ctx32)
            results.append(compare(fx, key, y16, expected, atol=F32_ATOL))
        elif key == "out/y_f64":
            results.append(compare(fx, key, y64, expected, atol=F64_ATOL))
        elif key.startswith("mid/") and key != "mid/context_full_f32":
            name = key[len("mid/"):]
            if name in captured:
                scale = max(1.0, float(expected.abs().max()))
                own = float((expected.double() - truth[name]).abs().max()) if name in truth else float("nan")
                results.append(compare(fx, key, captured[name], expected, atol=F32_ATOL * scale,
                                       note=f"1e-5 x max|ref| {scale:.3g}; ref f32 vs f64: {own:.2e}"))
            else:
                results.append(_failed(fx, key, "no recipe to capture this tensor"))
        elif key.startswith("out/") and not key.startswith("out/image_emb_"):
            results.append(_failed(fx, key, "no recipe for this output"))
    return results
