"""FreeNoise parity (reference ``longvideo/README.md`` §2, §4.1-4.3): rescheduled noise, fused UNet, sampler runs."""
from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file

import tests.pack  # noqa: F401
from tests.parity.longvideo_common import (E2E_RTOL, F32_ATOL, F64_ATOL, STEP_RTOL, Captures, exact, failed,
                                           find_weights, fixture_name, load_unet, scaled, tensor_file)
from tests.parity.report import Comparison, compare
from videocrafter_suite.models.longvideo import freenoise as FN
from videocrafter_suite.models.sampling import ddim as D
from videocrafter_suite.models.sampling.schedule import schedule_from_config


# ------------------------------------------------------------------------------------------------ noise
def check_noise(config_path: Path, config: dict) -> list[Comparison]:
    """Per combo: Python-random permutations and gather indices exact; raw draw and x_T_total bit-exact."""
    fx = fixture_name(config_path, config)
    tensors = load_file(str(tensor_file(config_path)))
    out = []
    for name, combo in sorted(config["combos"].items()):
        seed, frames = int(combo["seed"]), int(combo["frames"])
        window, stride = int(combo["window_size"]), int(combo["window_stride"])
        n_samples, bs = int(combo.get("n_samples", 1)), int(combo.get("bs", 1))
        shape = (int(combo.get("channels", 4)), frames, int(combo["h"]), int(combo["w"]))
        src, blocks = FN.rescheduled_source_index(frames, window, stride, seed=seed)
        frame_index = list(range(window, frames, stride))
        pre = f"{name}/"
        expected = {
            "src_index": torch.tensor(combo["src_index"], dtype=torch.int64),
            "frame_index": torch.tensor(combo.get("frame_index", []), dtype=torch.int64),
            "shuffled_list_index": torch.tensor(combo.get("shuffled_list_index", []), dtype=torch.int64),
        }
        ours = {"src_index": torch.tensor(src, dtype=torch.int64),
                "frame_index": torch.tensor(frame_index, dtype=torch.int64),
                "shuffled_list_index": torch.tensor(blocks, dtype=torch.int64)}
        for key in ("src_index", "frame_index", "shuffled_list_index"):
            stored = tensors.get(pre + key, expected[key])
            if ours[key].numel() == 0 and stored.numel() == 0:
                out.append(compare(fx, pre + key, torch.zeros(0), torch.zeros(0), atol=0.0, note="no shuffle"))
                continue
            out.append(exact(fx, pre + key, ours[key].reshape(stored.shape), stored,
                             note=f"random.Random({seed}), window {window}, stride {stride}"))
        if pre + "raw_randn" in tensors:
            generator = torch.Generator().manual_seed(seed)
            raw = torch.randn([n_samples, 1, *shape], generator=generator)
            out.append(exact(fx, pre + "raw_randn", raw, tensors[pre + "raw_randn"]))
        if pre + "x_T_total" in tensors:
            x_T = FN.freenoise_initial_noise(seed, shape, window, stride, n_samples=n_samples, batch_prompts=bs)
            out.append(exact(fx, pre + "x_T_total", x_T, tensors[pre + "x_T_total"],
                             note="one randn + gather by src_index, repeated over the prompts"))
    return out


# ------------------------------------------------------------------------------------------------ fused UNet
_OUT = re.compile(r"out/y_T(\d+)((?:_w\d+_s\d+)?)_(fused|plain)_(f32|f64)$")


def _views(io: dict, config: dict, frames: int, tag_ws: str) -> list[tuple[int, int]]:
    window, stride = int(config.get("window", FN.DEFAULT_WINDOW)), int(config.get("stride", FN.DEFAULT_STRIDE))
    m = re.match(r"_w(\d+)_s(\d+)", tag_ws)
    if m:
        window, stride = int(m.group(1)), int(m.group(2))
    stored = io.get(f"in/views_T{frames}_w{window}_s{stride}")
    if stored is not None:
        return [(int(s), int(e)) for s, e in stored.tolist()]
    return FN.get_views(frames, window, stride)


def _input(io: dict, frames: int, tag_ws: str) -> torch.Tensor:
    for key in (f"in/x_T{frames}{tag_ws}", f"in/x_T{frames}"):
        if key in io:
            return io[key]
    return io["in/x"][:, :, :frames]


def check_unet(config_path: Path, config: dict) -> list[Comparison]:
    """Every ``out/y_T*_{fused,plain}_{f32,f64}`` and the ``mid/*`` captures of the main fused f32 call."""
    fx = fixture_name(config_path, config)
    io = load_file(str(tensor_file(config_path)))
    weights = find_weights(config_path, config.get("weights", ""))
    models = {"f32": load_unet(config["unet_kwargs"], weights, torch.float32),
              "f64": load_unet(config["unet_kwargs"], weights, torch.float64)}
    t, ctx, fps = io["in/timesteps"], io["in/context_text"], io.get("in/fps")
    main_frames = io["in/x"].shape[2]
    mids = sorted(k[len("mid/"):] for k in io if k.startswith("mid/"))
    out, captured = [], {}
    for key in sorted(k for k in io if k.startswith("out/")):
        m = _OUT.match(key)
        if not m:
            out.append(failed(fx, key, "no recipe for this output"))
            continue
        frames, tag_ws, mode, tag = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        dtype = torch.float64 if tag == "f64" else torch.float32
        x = _input(io, frames, tag_ws).to(dtype)
        override = None
        note = "plain temporal attention"
        if mode == "fused":
            views = _views(io, config, frames, tag_ws)
            override = FN.WindowFusedAttention(views=tuple(views))
            note = f"views {views}"
        kwargs = {"fps": fps} if fps is not None else {}
        capture_here = mode == "fused" and tag == "f32" and frames == main_frames and not tag_ws and mids
        with Captures(models[tag], mids if capture_here else []) as values, torch.inference_mode():
            y = models[tag](x, t, ctx.to(dtype), temporal_attention=override, **kwargs)
        if capture_here:
            captured = dict(values)
        out.append(compare(fx, key, y, io[key], atol=F64_ATOL if tag == "f64" else F32_ATOL, note=note))
    for name in mids:
        key = "mid/" + name
        if name not in captured:
            out.append(failed(fx, key, "not captured (module or call not found)"))
            continue
        out.append(scaled(fx, key, captured[name], io[key], F32_ATOL))
    return out


# ------------------------------------------------------------------------------------------------ sampler
def _arrays_match(fx: str, tensors: dict, pre: str, arrays: D.DDIMArrays) -> list[Comparison]:
    names = {"ddim_timesteps": "timesteps", "ddim_alphas": "alphas", "ddim_alphas_prev": "alphas_prev",
             "ddim_sigmas": "sigmas", "ddim_sqrt_one_minus_alphas": "sqrt_one_minus_alphas",
             "ddim_scale_arr": "scale_arr", "ddim_scale_arr_prev": "scale_arr_prev"}
    out = []
    for key in sorted(k for k in tensors if k.startswith(pre + "schedule/")):
        name = key.rsplit("/", 1)[1]
        ours = getattr(arrays, names[name]) if name in names else None
        out.append(exact(fx, key, ours, tensors[key]) if ours is not None else failed(fx, key, "no recipe"))
    return out


def check_sampler(config_path: Path, config: dict) -> list[Comparison]:
    """FreeNoise runs: noise stream exact, schedule exact, each DDIM step recomputed, the UNet per step on the
    recorded inputs and the whole run end to end with our fused UNet (<= 1e-4 relative)."""
    fx = fixture_name(config_path, config)
    tensors = load_file(str(tensor_file(config_path)))
    sampler = config["sampler"]
    params = config["model"]["model_params_from_yaml"]
    schedule = schedule_from_config(params)
    scale_factor = float(params.get("scale_factor", 0.18215))
    unet = load_unet(config["unet_kwargs"], find_weights(config_path, config.get("weights", "")))
    frames, window, stride = int(sampler["frames"]), int(sampler["window_size"]), int(sampler["window_stride"])
    seed, cfg, batch = int(sampler["seed"]), float(sampler["cfg"]), int(sampler.get("B", 1))
    ctx = tensors["cond/text_emb"]
    uctx = tensors["cond/uncond_emb_row"].expand(ctx.shape[0], *tensors["cond/uncond_emb_row"].shape[-2:])
    fps = tensors.get("cond/fps", int(sampler.get("fps", 16)))
    out = []
    for run, info in sorted(config["runs"].items()):
        pre = f"{run}/"
        eta = float(info["eta"])
        views = info.get("apply_model_kwargs", {}).get("context_next") or FN.get_views(frames, window, stride)
        override = FN.WindowFusedAttention(window, stride, views=tuple(tuple(v) for v in views))
        steps = int(info.get("n_steps", sampler["steps"]))
        arrays = D.make_ddim_arrays(schedule, steps, eta)
        out += _arrays_match(fx, tensors, pre, arrays)
        x_T_ref = tensors[pre + "x_T"]
        channels, h, w = x_T_ref.shape[1], x_T_ref.shape[3], x_T_ref.shape[4]

        # The random stream: seed -> x_T_total (one randn + gather), then one randn(x.shape) per step.
        generator = torch.Generator().manual_seed(seed)
        raw = torch.randn([1, 1, channels, frames, h, w], generator=generator)
        src, _ = FN.rescheduled_source_index(frames, window, stride, seed=seed)
        x_T = FN.reschedule_noise(raw, src, 3).repeat(1, batch, 1, 1, 1, 1)[0]
        out.append(exact(fx, pre + "x_T", x_T, x_T_ref, note=f"seed {seed}, window {window}, stride {stride}"))
        noise = torch.stack([torch.randn(x_T.shape, generator=generator) for _ in range(steps)])
        out.append(exact(fx, pre + "noise_per_step", noise, tensors[pre + "noise_per_step"]))

        def eps(x, t, _index=None, log=None):
            e_c = unet(x, t, ctx, fps=fps, temporal_attention=override)
            e_u = unet(x, t, uctx, fps=fps, temporal_attention=override)
            if log is not None:
                log[0].append(e_c)
                log[1].append(e_u)
            return D.cfg_eps(e_c, e_u, cfg)

        # Per step on the recorded inputs: UNet (fused) and the DDIM update from the stored eps/noise.
        with torch.inference_mode():
            per_c, per_u, xs = [], [], []
            for i, index in enumerate(tensors[pre + "index_per_step"].tolist()):
                x_in = tensors[pre + "x_in_per_step"][i]
                eps(x_in, tensors[pre + "timesteps_per_step"][i], log=(per_c, per_u))
                e_ref = D.cfg_eps(tensors[pre + "e_t_cond_per_step"][i], tensors[pre + "e_t_uncond_per_step"][i], cfg)
                xs.append(D.ddim_step(x_in, e_ref, int(index), arrays, tensors[pre + "noise_per_step"][i])[0])
        out.append(compare(fx, pre + "per_step/e_t_cond", torch.stack(per_c), tensors[pre + "e_t_cond_per_step"],
                           rtol=E2E_RTOL, note="fused UNet on the recorded x_in"))
        out.append(compare(fx, pre + "per_step/e_t_uncond", torch.stack(per_u), tensors[pre + "e_t_uncond_per_step"],
                           rtol=E2E_RTOL, note="fused UNet on the recorded x_in"))
        out.append(compare(fx, pre + "per_step/x_prev (stored eps)", torch.stack(xs), tensors[pre + "x_prev_per_step"],
                           rtol=STEP_RTOL))

        # End to end from our own x_T and noise.
        e_log, x_log, p_log = ([], []), [], []
        with torch.inference_mode():
            final = D.ddim_sample(lambda x, t, index: eps(x, t, log=e_log), x_T, arrays, lambda i, s: noise[i],
                                  callback=lambda i, index, x, p: (x_log.append(x), p_log.append(p)))
        note = f"eta {eta:g}, cfg {cfg:g}, {steps} steps, views {views}"
        out.append(compare(fx, pre + "e2e/e_t_cond_per_step", torch.stack(e_log[0]), tensors[pre + "e_t_cond_per_step"],
                           rtol=E2E_RTOL, note=note))
        out.append(compare(fx, pre + "e2e/x_prev_per_step", torch.stack(x_log), tensors[pre + "x_prev_per_step"],
                           rtol=E2E_RTOL, note=note))
        out.append(compare(fx, pre + "e2e/pred_x0_per_step", torch.stack(p_log), tensors[pre + "pred_x0_per_step"],
                           rtol=E2E_RTOL, note=note))
        out.append(compare(fx, pre + "e2e/final_latent", final, tensors[pre + "final_latent"], rtol=E2E_RTOL, note=note))
        key = pre + "batch_ddim_sampling_freenoise_return"
        if key in tensors:
            out.append(compare(fx, key, (final / scale_factor).unsqueeze(1), tensors[key], rtol=E2E_RTOL,
                               note=f"identity first stage: z / {scale_factor:g}"))
    return out
