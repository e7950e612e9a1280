"""Parity checks for the Make-Your-Video fixtures (``../shared/reference/makeyourvideo/fixtures``).

The runner calls ``matches(config)`` and ``check(config_path)``. Three fixture kinds are recognised from their
content (never their names), and everything else is read from the config JSON and the tensor keys, so other
shapes, frame counts, seeds, steps and etas in the same conventions pass without code changes:

* **UNet** (``unet_kwargs`` + ``out/y_<tag>_f32`` calls, e.g. ``myv_unet_tiny``): for every ``in/x_<tag>``,
  ``detect_unet_config(keys)`` equals the kwargs; the weights load strictly; ``out/y_<tag>_f32`` ≤ 1e-5 abs
  (5-D and batch-as-frames, under ``torch.inference_mode()`` as ComfyUI runs it); ``out/y_<tag>_f64`` ≤ 1e-9
  abs; every ``mid/<tag>/*`` hook capture ≤ 1e-5 × max(1, max|ref|) (float32 rounding is relative; see
  ``unet_fixtures.py``), and ``temporal_mask_slice`` exactly.
* **Sampler** (``latent_depth_diffusion_config_resolved``, e.g. ``myv_sampler_tiny``): DDPM buffers and DDIM
  arrays exactly (dtype included); per run the original-order noise stream exactly, every step recomputed from
  the stored eps ≤ 1e-6 rel, and the full float32 loop with our UNet on ``cat([x, cond/depth], 1)`` (hybrid
  conditioning, cond then uncond, CFG) ≤ 1e-4 rel per step and at the end (reference README §4.4).
* **Depth preprocessing without the DPT** (``out/depth_<target>_norm_<dtype>`` calls and a fixed depth map
  ``in/depth_map*``, e.g. ``myv_depth_preproc``): ``models/depth/structure.py`` against ``get_batch_depth``,
  exactly (atol 0: same ops in the same order).

Configs that need the MiDaS DPT network (``reduced_architecture``, e.g. ``myv_depth_tiny``) are left to
``tests/parity/dpt_fixtures.py``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity.report import Comparison, compare
from tests.parity.unet_fixtures import _hooks as unet_hooks
from tests.parity.sampler_fixtures import _DDIM_NAMES, _check_noise, _check_steps, _exact, _failed, _parse_eta, \
    _run_arrays
from videocrafter_suite.models.sampling import ddim as D
from videocrafter_suite.models.sampling import schedule as S
from videocrafter_suite.models.depth.structure import depth_structure, midas_input
from videocrafter_suite.models.unet.causal_window import sliding_causal_mask
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet
from videocrafter_suite.models.unet.detect import UNET_PREFIX, config_differences, detect_unet_config

F32_ATOL = 1e-5   # fp32 UNet (the reference's own f32-vs-f64 error is 7.3e-6 at output std 0.54)
F64_ATOL = 1e-9   # float64 runs agree to ~1e-14; 1e-9 leaves room for summation-order differences only
E2E_RTOL = 1e-4   # end-to-end sampler, float32 UNet, CFG 7.5 amplifies float32 rounding (README §5 caveat 4)
UPSTREAM = "AILab-CVC/Make-Your-Video"


def _kind(config: dict) -> str | None:
    if not str(config.get("upstream", "")).startswith(UPSTREAM) or "reduced_architecture" in config:
        return None  # not Make-Your-Video, or needs the DPT network (dpt_fixtures.py)
    calls = config.get("calls") if isinstance(config.get("calls"), dict) else {}
    if isinstance(config.get("unet_kwargs"), dict) and any(re.match(r"out/y_\w+_f32$", k) for k in calls):
        return "unet"
    if isinstance(config.get("latent_depth_diffusion_config_resolved"), dict):
        return "sampler"
    if any(k.startswith("out/depth_") for k in calls) and "in/depth_map_fp16" in config.get("inputs", {}):
        return "preproc"
    return None


def matches(config: dict) -> bool:
    return _kind(config) is not None


def check(config_path: Path) -> list[Comparison]:
    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    fx = config.get("fixture") or config_path.name[: -len(".config.json")]
    return {"unet": _check_unet, "sampler": _check_sampler, "preproc": _check_preproc}[_kind(config)](
        fx, config, config_path)


def _stem(path: Path) -> str:
    return path.name[: -len(".config.json")]


# ----------------------------------------------------------------------------------------------------- UNet
def load_unet(kwargs: dict, weights: dict, dtype=torch.float32) -> VideoCrafterUNet:
    model = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(kwargs), dtype=dtype)
    model.load_state_dict({k[len(UNET_PREFIX):]: v.to(dtype) for k, v in weights.items() if k.startswith(UNET_PREFIX)},
                          strict=True)
    return model.eval()


def _run(model, x, t, ctx, mids, store):
    """Run under ``inference_mode`` with the unet checker's hooks; ``<path>_temporal_transformer`` names the
    output of the TemporalTransformer at ``<path>``."""
    paths = {name: name.replace("_temporal_transformer", "") for name in mids}
    raw: dict = {}
    handles = unet_hooks(model, sorted(set(paths.values())), raw)
    try:
        with torch.inference_mode():
            return model(x, t, ctx)
    finally:
        for handle in handles:
            handle.remove()
        store.update({name: raw[path] for name, path in paths.items() if path in raw})


def _check_unet(fx: str, config: dict, config_path: Path) -> list[Comparison]:
    weights_path = config_path.with_name(_stem(config_path) + ".weights.safetensors")
    io = load_file(config_path.with_name(_stem(config_path) + ".io.safetensors"))
    weights = load_file(weights_path)
    with safe_open(weights_path, "pt") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    expected = UNet3DConfig.from_upstream_kwargs(config["unet_kwargs"])
    problems = config_differences(expected, detect_unet_config(shapes))
    out = [Comparison(fx, "detect_unet_config(keys) == unet_kwargs", len(problems), len(problems), atol=0.0,
                      note="; ".join(problems) or "same config (tempspatial_aware, causal window from keys)")]
    model32 = load_unet(config["unet_kwargs"], weights)
    model64 = load_unet(config["unet_kwargs"], weights, torch.float64)
    for tag in sorted(k[len("in/x_"):] for k in io if k.startswith("in/x_")):
        x, t, ctx = io[f"in/x_{tag}"], io[f"in/timesteps_{tag}"], io[f"in/context_{tag}"]
        mids = [k[len(f"mid/{tag}/"):] for k in io if k.startswith(f"mid/{tag}/")]
        truth, captured = {}, {}
        y64 = _run(model64, x.double(), t, ctx.double(), mids, truth)
        y32 = _run(model32, x, t, ctx, mids, captured)
        frames = x.shape[2]
        note = f"B={x.shape[0]} T={frames}" + (" (> 16: sliding causal window active)" if frames > 16 else "")
        if f"out/y_{tag}_f32" in io:
            ref = io[f"out/y_{tag}_f32"]
            out.append(compare(fx, f"out/y_{tag}_f32", y32, ref, atol=F32_ATOL, note=note))
            with torch.inference_mode():
                flat = model32(x.transpose(1, 2).flatten(0, 1), t, ctx, num_frames=frames)
            flat = flat.reshape(x.shape[0], frames, *flat.shape[1:]).transpose(1, 2)
            out.append(compare(fx, f"out/y_{tag}_f32 (batch-as-frames)", flat, ref, atol=F32_ATOL, note=note))
        if f"out/y_{tag}_f64" in io:
            out.append(compare(fx, f"out/y_{tag}_f64", y64, io[f"out/y_{tag}_f64"], atol=F64_ATOL, note=note))
        for name in sorted(mids):
            ref = io[f"mid/{tag}/{name}"]
            if name == "temporal_mask_slice":
                ours = sliding_causal_mask(ref.shape[-1]).to(ref.dtype)[None]
                out.append(compare(fx, f"mid/{tag}/{name}", ours, ref, atol=0.0, note="models/unet/causal_window.py"))
            elif name in captured:
                scale = max(1.0, float(ref.abs().max()))
                own = float((ref.double() - truth[name]).abs().max())
                out.append(compare(fx, f"mid/{tag}/{name}", captured[name], ref, atol=F32_ATOL * scale,
                                   note=f"1e-5 x max|ref| {scale:.3g}; ref f32 vs our f64: {own:.2e}"))
            else:
                out.append(_failed(fx, f"mid/{tag}/{name}", "no recipe to capture this tensor"))
    return out


# -------------------------------------------------------------------------------------------------- sampler
def _check_sampler(fx: str, config: dict, config_path: Path) -> list[Comparison]:
    tensors = load_file(config_path.with_name(_stem(config_path) + ".safetensors"))
    params = config["latent_depth_diffusion_config_resolved"]["params"]
    schedule = S.schedule_from_config(params)
    out = []
    buffers = schedule.buffers()
    for key in sorted(k for k in tensors if k.startswith("schedule/")):
        name = key.split("/", 1)[1]
        if name in buffers:
            out.append(_exact(fx, key, buffers[name], tensors[key]))
        elif name == "betas_f64_numpy":
            out.append(_exact(fx, key, schedule.betas, tensors[key]))
        elif name == "alphas_cumprod_f64_numpy":
            out.append(_exact(fx, key, torch.from_numpy(S.alphas_cumprod_f64(schedule.betas)), tensors[key]))
        else:
            out.append(_failed(fx, key, "no recipe for this schedule key"))
    if schedule.use_scale or "scale_arr" in buffers:
        out.append(_failed(fx, "schedule/scale_arr", "Make-Your-Video has no scale_arr"))
    for key in sorted(k for k in tensors if re.match(r"ddim/S\d+/", k)):
        steps, name = int(key.split("/")[1][1:]), key.rsplit("/", 1)[1]
        if name.startswith("ddim_sigmas_eta"):
            out.append(_exact(fx, key, D.make_ddim_arrays(schedule, steps, _parse_eta(name)).sigmas, tensors[key]))
        elif name in _DDIM_NAMES and _DDIM_NAMES[name] != "scale_arr":
            out.append(_exact(fx, key, getattr(D.make_ddim_arrays(schedule, steps, 0.0), _DDIM_NAMES[name]),
                              tensors[key]))
        else:
            out.append(_failed(fx, key, "no recipe for this DDIM key"))

    unet = None
    for tag in sorted({k.split("/", 1)[0][len("run_"):] for k in tensors if re.match(r"run_\w+/x_T$", k)}):
        call = str(config.get("calls", {}).get(f"run_{tag}", ""))
        seed = _number(r"manual_seed\((\d+)\)", call, int)
        cfg = _number(r"unconditional_guidance_scale\s*=\s*([0-9.]+)", call, float)
        arrays, info = _run_arrays(tensors, tag, schedule)
        if arrays is None or cfg is None:
            out.append(_failed(fx, f"run_{tag}/*", info if arrays is None else "no guidance scale in the call"))
            continue
        out += _check_noise(fx, tensors, tag, seed)
        out += _check_steps(fx, tensors, tag, arrays, cfg, info)
        if unet is None:
            unet = load_unet(params["unet_config"]["params"], load_file(_unet_weights(config, config_path)))
        out += _sampler_end_to_end(fx, tensors, tag, arrays, cfg, float(params.get("scale_factor", 1.0)), unet, info)
    return out


def _number(pattern: str, text: str, cast):
    match = re.search(pattern, text)
    return cast(match.group(1)) if match else None


def _unet_weights(config: dict, config_path: Path) -> Path:
    name = re.search(r"([\w.\-]+\.weights\.safetensors)\s*\(model\.diffusion_model", str(config.get("model", "")))
    if name is None:
        raise FileNotFoundError("the sampler config names no UNet *.weights.safetensors (model.diffusion_model.*)")
    return config_path.parent / name.group(1)


def _sampler_end_to_end(fx, tensors, tag, arrays, cfg, scale_factor, unet, info) -> list[Comparison]:
    """The whole DDIM loop with our UNet on the hybrid input ``cat([x, depth], 1)`` (ddpm3d.py:700-704)."""
    pre = f"run_{tag}/"
    depth, ctx, uctx = tensors["cond/depth"], tensors["cond/text_emb"], tensors["cond/uncond_emb"]
    e_c_all, e_u_all, xs, ps = [], [], [], []

    def eps_fn(x, t, index):
        hybrid = torch.cat([x, depth], dim=1)
        e_c = unet(hybrid, t, context=ctx)  # cond first, then uncond (ddim.py:214-216); same depth on both
        e_u = unet(hybrid, t, context=uctx)
        e_c_all.append(e_c)
        e_u_all.append(e_u)
        return D.cfg_eps(e_c, e_u, cfg)

    noise = tensors[pre + "noise_per_step"]
    with torch.inference_mode():
        final = D.ddim_sample(eps_fn, tensors[pre + "x_T"], arrays, lambda i, shape: noise[i],
                              callback=lambda i, index, x, p: (xs.append(x), ps.append(p)))
    note = f"{info}, cfg={cfg:g}, float32 UNet, depth on cond and uncond"
    out = [compare(fx, f"{pre}e2e/e_t_cond_per_step", torch.stack(e_c_all), tensors[pre + "e_t_cond_per_step"],
                   rtol=E2E_RTOL, note=note),
           compare(fx, f"{pre}e2e/e_t_uncond_per_step", torch.stack(e_u_all), tensors[pre + "e_t_uncond_per_step"],
                   rtol=E2E_RTOL, note=note)]
    worst = max(compare(fx, "", x, tensors[pre + "x_prev_per_step"][i], rtol=E2E_RTOL).max_rel for i, x in enumerate(xs))
    out.append(compare(fx, f"{pre}e2e/x_prev_per_step", torch.stack(xs), tensors[pre + "x_prev_per_step"],
                       rtol=E2E_RTOL, note=f"{note}; worst single step rel {worst:.2e}"))
    out.append(compare(fx, f"{pre}e2e/pred_x0_per_step", torch.stack(ps), tensors[pre + "pred_x0_per_step"],
                       rtol=E2E_RTOL, note=note))
    out.append(compare(fx, f"{pre}e2e/final_latent", final, tensors[pre + "final_latent"], rtol=E2E_RTOL, note=note))
    key = pre + "depth_guided_synthesis_return"
    if key in tensors:
        decoded = (final / scale_factor).unsqueeze(1)  # identity first stage: z / scale_factor, [B, n_samples, ...]
        out.append(compare(fx, f"{key} (e2e)", decoded, tensors[key], rtol=E2E_RTOL, note=note))
    return out


# ------------------------------------------------------------------------------------ depth preprocessing
def _check_preproc(fx: str, config: dict, config_path: Path) -> list[Comparison]:
    """``get_batch_depth`` with a fixed DPT output: resize (bicubic, no antialias) + min/max, exactly."""
    io = load_file(config_path.with_name(_stem(config_path) + ".safetensors"))
    targets = json.loads(_number(r"target sizes (\{[^}]*\})", str(config["calls"]), str) or "{}")
    video = io["in/video"]
    b, _, t = video.shape[:3]
    frames = video.transpose(1, 2).flatten(0, 1)
    out = []
    for key in sorted(io):
        dtype = torch.float64 if "f64" in key else torch.float32
        raw = io["in/depth_map_fp16"].to(dtype)[:, None]
        match = re.match(r"out/depth_([a-z0-9]+)_norm(_temporal_norm)?_f(32|64)$", key)
        if match:
            size, temporal = targets.get(match.group(1)), bool(match.group(2))
            if size is None:
                out.append(_failed(fx, key, f"no target size for '{match.group(1)}' in the config's calls"))
                continue
            ours = depth_structure(raw, size, frames=t, temporal=temporal)
            ours = ours.reshape(b, t, 1, *ours.shape[-2:]).transpose(1, 2)
            out.append(compare(fx, key, ours, io[key], atol=0.0, note=f"target {tuple(size)}, temporal={temporal}"))
        elif key.startswith("mid/midas_same_size_bicubic_"):
            same = torch.nn.functional.interpolate(raw, size=raw.shape[-2:], mode="bicubic", align_corners=False)
            identity = float(torch.equal(same, raw))
            out.append(Comparison(fx, key + " (our same-size bicubic is the identity too)", float(bool(io[key])) - identity,
                                  0.0, atol=0.0))
        elif key.startswith("mid/depth_resized_latent_prenorm_"):
            ours = torch.nn.functional.interpolate(raw, size=targets["latent"], mode="bicubic", align_corners=False)
            out.append(compare(fx, key, ours, io[key], atol=0.0))
        elif key.startswith("mid/x_midas_384_frame0"):
            out.append(compare(fx, key, midas_input(frames.to(dtype))[:1], io[key], atol=0.0))
        elif key.startswith("mid/x_midas_384_strided8"):
            out.append(compare(fx, key, midas_input(frames.to(dtype))[:, :, ::8, ::8], io[key], atol=0.0))
        elif key == "in/video":
            ours = (io["in/frames_uint8"].permute(0, 4, 1, 2, 3).float() / 255.0 - 0.5) * 2
            out.append(compare(fx, "in/video from in/frames_uint8", ours, io[key], atol=0.0,
                               note="(frames/255 - 0.5)*2, inference_videorerendering.py:86-87"))
    return out
