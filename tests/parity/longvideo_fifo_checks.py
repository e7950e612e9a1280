"""FIFO-Diffusion parity (reference ``longvideo/README.md`` §3, §4.4): per-frame-timestep UNet calls, the
fork's DDIM schedule, the base clip, queue initialisation, every ``fifo_onestep``, popped frames, full runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

import tests.pack  # noqa: F401
from tests.parity.longvideo_common import (E2E_RTOL, F32_ATOL, F64_ATOL, STEP_RTOL, Captures, exact, failed,
                                           find_weights, fixture_name, load_unet, scaled, sha256, tensor_file)
from tests.parity.report import Comparison, compare
from videocrafter_suite.models.longvideo import fifo as F
from videocrafter_suite.models.sampling import ddim as D
from videocrafter_suite.models.sampling.schedule import schedule_from_config

_MID_MODULES = {"t_emb_sinusoid": ("time_embed", "input"), "time_embed_out": ("time_embed", "output"),
                "fps_embedding_out": ("fps_embedding", "output")}


def not_checked(config: dict) -> list[str]:
    return ["iter/frames_uint8 (tensor2image of popped_decoded; popped_decoded itself is checked)"] \
        if config.get("pipeline_runs") else []


def _unet_calls(fx: str, io: dict, models: dict) -> list[Comparison]:
    x, ctx, fps = io["in/x"], io["in/context_text"], io.get("in/fps")
    kwargs = {} if fps is None else {"fps": fps}
    out, ours = [], {}
    mids = sorted(k for k in io if k.startswith("mid/"))
    for key in sorted(k for k in io if k.startswith("out/y_")):
        stem, tag = key[len("out/y_"):].rsplit("_", 1)          # e.g. per_frame_distinct, f32
        ts_key = f"in/timesteps_{stem}"
        if ts_key not in io or tag not in models:
            out.append(failed(fx, key, f"no input {ts_key} / dtype {tag}"))
            continue
        dtype = models[tag][1]
        capture = [m for m in mids if m.startswith(f"mid/{stem}/")] if tag == "f32" else []
        names = [f"{_MID_MODULES[m.rsplit('/', 1)[1]][0]}/{_MID_MODULES[m.rsplit('/', 1)[1]][1]}"
                 for m in capture if m.rsplit("/", 1)[1] in _MID_MODULES]
        with Captures(models[tag][0], names) as values, torch.inference_mode():
            y = models[tag][0](x.to(dtype), io[ts_key], ctx.to(dtype), **kwargs)
        ours[(stem, tag)] = y
        n = io[ts_key].numel()
        out.append(compare(fx, key, y, io[key], atol=F64_ATOL if tag == "f64" else F32_ATOL,
                           note=f"{n} timestep{'s' if n > 1 else ''} {io[ts_key].tolist()[:6]}{'...' if n > 6 else ''}"))
        for mid in capture:
            what = mid.rsplit("/", 1)[1]
            if what not in _MID_MODULES:
                out.append(failed(fx, mid, "no recipe for this capture"))
                continue
            name = "/".join(_MID_MODULES[what])
            out.append(scaled(fx, mid, values[name], io[mid], F32_ATOL) if name in values
                       else failed(fx, mid, "not captured"))
    for tag in ("f32", "f64"):
        if ("per_frame_equal", tag) in ours and ("scalar", tag) in ours:
            out.append(compare(fx, f"ours: per_frame_equal == scalar ({tag})", ours[("per_frame_equal", tag)],
                               ours[("scalar", tag)], atol=0.0, note="equal per-frame timesteps take the per-video path"))
    return out


class _Recorder:
    """A generator-backed draw source that keeps every draw in order."""

    def __init__(self, seed: int):
        self.draw = F.generator_draws(torch.Generator().manual_seed(seed))
        self.draws: list[torch.Tensor] = []

    def __call__(self, shape, like):
        value = self.draw(shape, like)
        self.draws.append(value)
        return value


def _replay(values):
    values = list(values)
    return lambda shape, like: values.pop(0).reshape(shape).to(like)


def _run(fx: str, io: dict, run: str, info: dict, config: dict, unet) -> list[Comparison]:
    args = info["args"]
    pre = f"{run}/"
    settings = F.FifoSettings(int(args["video_length"]), int(args["num_partitions"]), int(args["new_video_length"]),
                              bool(args["lookahead_denoising"]), float(args["eta"]))
    cfg, seed = float(args["unconditional_guidance_scale"]), int(args["seed"])
    params = config["model"]["model_params_from_yaml"]
    arrays = F.fifo_ddim_arrays(schedule_from_config(params), settings.num_steps, settings.eta)
    plain = F.without_scale(arrays)
    out = []

    names = {"ddim_timesteps": "timesteps", "ddim_alphas": "alphas", "ddim_alphas_prev": "alphas_prev",
             "ddim_sigmas": "sigmas", "ddim_sqrt_one_minus_alphas": "sqrt_one_minus_alphas",
             "ddim_scale_arr": "scale_arr", "ddim_scale_arr_prev": "scale_arr_prev"}
    q_ts, q_idx = F.queue_schedule(plain, settings)
    for key in sorted(k for k in io if k.startswith(pre + "schedule/")):
        name = key.rsplit("/", 1)[1]
        if name == "fifo_timesteps":
            out.append(exact(fx, key, torch.from_numpy(q_ts.astype(np.int64)), io[key]))
        elif name == "fifo_indices":
            out.append(exact(fx, key, torch.from_numpy(q_idx.astype(np.int64)), io[key]))
        elif name in names and getattr(arrays, names[name]) is not None:
            out.append(exact(fx, key, getattr(arrays, names[name]), io[key]))
        else:
            out.append(failed(fx, key, "no recipe"))

    ctx, uctx = io["cond/text_emb"], io["cond/uncond_emb"]
    fps = torch.tensor([int(args.get("fps", 8))])

    def guided(x, t, log=None):
        e_c = unet(x, t, ctx, fps=fps)
        e_u = unet(x, t, uctx, fps=fps)
        if log is not None:
            log.append((e_c, e_u))
        return D.cfg_eps(e_c, e_u, cfg)

    # 1. Every fifo_onestep from its recorded input: UNet with per-frame timesteps, CFG, per-frame DDIM step.
    rows = io[pre + "onestep/latents_in"].shape[0]
    e_c_all, e_u_all, outs, preds, ts_ok = [], [], [], [], 0
    with torch.inference_mode():
        for k in range(rows):
            start, rank = int(io[pre + "onestep/start_idx"][k]), int(io[pre + "onestep/rank"][k])
            s_, _, e_ = settings.window(rank)
            ts_ok += int(s_ == start and np.array_equal(q_ts[s_:e_], io[pre + "onestep/timesteps"][k].numpy())
                         and np.array_equal(q_idx[s_:e_], io[pre + "onestep/indices"][k].numpy()))
            log = []
            guided(io[pre + "onestep/latents_in"][k], io[pre + "onestep/timesteps"][k], log)
            e_c_all.append(log[0][0])
            e_u_all.append(log[0][1])
            stored_e = D.cfg_eps(io[pre + "onestep/e_t_cond"][k], io[pre + "onestep/e_t_uncond"][k], cfg)
            x_out, p, _, _ = F.fifo_onestep(lambda x, t: stored_e, io[pre + "onestep/latents_in"][k],
                                            io[pre + "onestep/timesteps"][k].numpy(),
                                            io[pre + "onestep/indices"][k].tolist(), plain,
                                            noise=list(io[pre + "onestep/step_noise"][k]))
            outs.append(x_out)
            preds.append(p)
    out.append(compare(fx, pre + "onestep/window schedule (start, timesteps, indices)", torch.tensor(float(rows - ts_ok)),
                       torch.tensor(0.0), atol=0.0, note=f"{ts_ok}/{rows} rows match rank -> queue positions"))
    out.append(scaled(fx, pre + "onestep/e_t_cond", torch.stack(e_c_all), io[pre + "onestep/e_t_cond"], F32_ATOL,
                      note="per-frame timesteps, recorded inputs"))
    out.append(scaled(fx, pre + "onestep/e_t_uncond", torch.stack(e_u_all), io[pre + "onestep/e_t_uncond"], F32_ATOL,
                      note="per-frame timesteps, recorded inputs"))
    out.append(compare(fx, pre + "onestep/latents_out (stored eps, noise)", torch.stack(outs),
                       io[pre + "onestep/latents_out"], rtol=STEP_RTOL, note="per-frame DDIM without scale_arr"))
    out.append(compare(fx, pre + "onestep/pred_x0 (stored eps, noise)", torch.stack(preds), io[pre + "onestep/pred_x0"],
                       rtol=STEP_RTOL))

    # 2. Queue initialisation from the recorded base clip and draws.
    queue, _ = F.init_queue(io[pre + "base/final_latent"], plain, settings, _replay(io[pre + "queue/init_randn"]))
    out.append(exact(fx, pre + "queue/init (recorded clip + draws)", queue, io[pre + "queue/init"],
                     note="sqrt(a_i)·clip[max(0, i-(S-f))] + sqrt(1-a_i)·randn, no scale_arr"))

    # 3. The whole official run with our UNet and our generator: base clip, queue, diagonal loop.
    recorder = _Recorder(seed)
    shape = tuple(io[pre + "base/x_T"].shape)
    base_log, base_x = [], []
    with torch.inference_mode():
        base = D.ddim_sample(lambda x, t, index: guided(x, t, base_log), recorder(shape, ctx), arrays,
                             lambda i, s: recorder(s, ctx), callback=lambda i, index, x, p: base_x.append(x))
    steps = settings.num_steps
    out.append(exact(fx, pre + "base/x_T", recorder.draws[0], io[pre + "base/x_T"], note=f"seed {seed}"))
    out.append(exact(fx, pre + "base/noise_per_step", torch.stack(recorder.draws[1:1 + steps]),
                     io[pre + "base/noise_per_step"]))
    out.append(compare(fx, pre + "base/e_t_cond_per_step", torch.stack([e for e, _ in base_log]),
                       io[pre + "base/e_t_cond_per_step"], rtol=E2E_RTOL, note="FIFO ladder, scale_arr applied"))
    out.append(compare(fx, pre + "base/x_prev_per_step", torch.stack(base_x), io[pre + "base/x_prev_per_step"],
                       rtol=E2E_RTOL))
    out.append(compare(fx, pre + "base/final_latent", base, io[pre + "base/final_latent"], rtol=E2E_RTOL))

    onesteps, pops, queues_before = [], [], []
    with torch.inference_mode():
        video = F.fifo_sample(lambda x, t: guided(x, t), base, arrays, settings, recorder,
                              on_step=lambda it, step: onesteps.append(step),
                              on_pop=lambda it, frame, q: (pops.append(frame), queues_before.append(q.clone())))
    n_queue = settings.queue_length
    init_draws = recorder.draws[1 + steps:1 + steps + n_queue]
    out.append(exact(fx, pre + "queue/init_randn", torch.stack(init_draws), io[pre + "queue/init_randn"]))
    out.append(exact(fx, pre + "onestep/step_noise", torch.stack([torch.stack(s.step_noise) for s in onesteps]),
                     io[pre + "onestep/step_noise"], note=f"{settings.video_length} draws per window, also discarded halves"))
    per_iter = len(settings.ranks) * settings.video_length + 1
    shift = [recorder.draws[1 + steps + n_queue + (i + 1) * per_iter - 1] for i in range(settings.iterations)]
    out.append(exact(fx, pre + "iter/shift_noise", torch.stack(shift), io[pre + "iter/shift_noise"]))
    out.append(compare(fx, pre + "e2e/onestep/latents_out", torch.stack([s.latents_out for s in onesteps]),
                       io[pre + "onestep/latents_out"], rtol=E2E_RTOL, note=f"{len(onesteps)} windows"))
    out.append(compare(fx, pre + "e2e/iter/queue_before_shift", torch.stack(queues_before),
                       io[pre + "iter/queue_before_shift"], rtol=E2E_RTOL))
    out.append(compare(fx, pre + "e2e/iter/popped_latent", torch.stack(pops), io[pre + "iter/popped_latent"],
                       rtol=E2E_RTOL, note=f"{settings.iterations} popped frames"))
    scale_factor = float(params.get("scale_factor", 0.18215))
    out.append(compare(fx, pre + "e2e/iter/popped_decoded", torch.stack(pops) * (1.0 / scale_factor),
                       io[pre + "iter/popped_decoded"], rtol=E2E_RTOL, note="identity first stage"))
    expected_video = torch.cat(list(io[pre + "iter/popped_latent"][-settings.new_video_length:]), dim=2)
    out.append(compare(fx, pre + "e2e/video (last N popped)", video, expected_video, rtol=E2E_RTOL,
                       note=f"N={settings.new_video_length}"))
    return out


def check_fifo(config_path: Path, config: dict) -> list[Comparison]:
    fx = fixture_name(config_path, config)
    io = load_file(str(tensor_file(config_path)))
    weights = find_weights(config_path, config.get("weights", ""))
    out = []
    expected_sha = config.get("weights", {}).get("sha256") if isinstance(config.get("weights"), dict) else None
    if expected_sha:
        got = sha256(weights)
        out.append(compare(fx, f"weights sha256 ({weights.name})", torch.tensor(float(got != expected_sha)),
                           torch.tensor(0.0), atol=0.0, note=got[:16]))
    models = {"f32": (load_unet(config["unet_kwargs"], weights, torch.float32), torch.float32),
              "f64": (load_unet(config["unet_kwargs"], weights, torch.float64), torch.float64)}
    out += _unet_calls(fx, io, models)
    for run, info in sorted(config.get("pipeline_runs", {}).items()):
        out += _run(fx, io, run, info, config, models["f32"][0])
    return out
