"""Parity checks for DDIM sampler fixtures (format of ``../shared/reference/fixtures/sampler_ddim_vc2_tiny``).

The runner (``tests/parity/__main__.py``) calls ``matches(config)`` and ``check(config_path)``. Everything is
parsed from the config JSON and the safetensors keys, so other fixtures of the same format (other S, eta,
cfg, seeds, shapes, fps int or tensor) work unchanged:

- ``schedule/<buffer>``: the DDPM buffers (ddpm3d.py:113-165) and ``scale_arr`` (ddpm3d.py:362-376) of the
  model in ``latent_diffusion_config_resolved``; ``schedule/scale_arr_<preset>`` against a named preset;
  ``*_f64_numpy`` against the float64 values before the cast. Exact (atol 0), dtype included.
- ``ddim_<preset>/S<n>/<array>``: ``DDIMSampler.make_schedule`` arrays (ddim.py:22-60), exact, dtype included.
- ``run_<tag>/*``: (a) the noise stream (x_T + one draw per step) from ``OriginalOrderNoise(seed)``, exact;
  (b) every step recomputed with ``ddim_step`` from the stored eps / noise / previous x, and the whole chain from
  ``x_T`` alone, <= 1e-6 relative; (c) for float32 runs, the full sampling loop with our UNet
  (``models/unet/unet3d.py``) from the recorded x_T and noise, final latent <= 1e-4 relative (README §5.5).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity.report import Comparison, compare
from tests.parity.report import failed as _failed
from videocrafter_suite.models.sampling import ddim as D
from videocrafter_suite.models.sampling import schedule as S

STEP_RTOL = 1e-6     # step recomputation from stored captures (upstream's own CPU sqrt may differ by 1 ulp)
E2E_RTOL = 1e-4      # end-to-end sampler with the float32 UNet (README §5.5)
UNET_PREFIX = "model.diffusion_model."

_DDIM_NAMES = {"timesteps": "timesteps", "ddim_alphas": "alphas", "ddim_alphas_prev": "alphas_prev",
               "ddim_sqrt_one_minus_alphas": "sqrt_one_minus_alphas", "ddim_scale_arr": "scale_arr",
               "ddim_scale_arr_prev": "scale_arr_prev"}


# ---------------------------------------------------------------------------------------------- detection
def matches(config: dict) -> bool:
    """True for configs of the DDIM-sampler fixture format (schedule/ddim_*/run_* with batch_ddim_sampling)."""
    calls = config.get("calls")
    if not isinstance(calls, dict) or "latent_diffusion_config_resolved" not in config:
        return False
    keys = list(calls)
    has_sched = any(k.startswith("schedule/") or re.match(r"ddim_[^/]+/S", k) for k in keys)
    has_run = any(k.startswith("run_") and "batch_ddim_sampling" in str(v) for k, v in calls.items())
    return has_sched or has_run


# ---------------------------------------------------------------------------------------------- helpers
def _tensor_file(config_path: Path) -> Path:
    stem = config_path.name[: -len(".config.json")] if config_path.name.endswith(".config.json") else config_path.stem
    for suffix in (".safetensors", ".io.safetensors"):
        p = config_path.with_name(stem + suffix)
        if p.is_file():
            return p
    raise FileNotFoundError(f"no tensor file for {config_path} ({stem}.safetensors / {stem}.io.safetensors)")


def _exact(fixture: str, name: str, actual: torch.Tensor, expected: torch.Tensor) -> Comparison:
    """Exact comparison, and the dtype must be the one upstream produced."""
    if actual.dtype != expected.dtype:
        return _failed(fixture, name, f"dtype {actual.dtype} != expected {expected.dtype}")
    return compare(fixture, name, actual, expected, atol=0.0)


def _parse_eta(tag: str) -> float | None:
    m = re.search(r"eta(\d+(?:[p.]\d+)?)", tag)
    return float(m.group(1).replace("p", ".")) if m else None


def _find(pattern: str, *texts: str, cast=float):
    for text in texts:
        m = re.search(pattern, text or "")
        if m:
            return cast(m.group(1))
    return None


def _preset(tag: str, model_schedule: S.VideoCrafterSchedule) -> tuple[S.VideoCrafterSchedule, str]:
    if tag in S.PRESETS:
        return S.PRESETS[tag], f"preset {tag}"
    return model_schedule, f"unknown preset '{tag}': used the model's schedule"


def _steps_for_ladder(ladder_desc: list[int], timesteps: int) -> int | None:
    """An S whose 'uniform' ladder equals the recorded one (any S with the same stride gives the same arrays)."""
    want = sorted(ladder_desc)
    for s in range(1, timesteps + 1):
        c = timesteps // s
        if len(range(0, timesteps, c)) == len(want) and [t + 1 for t in range(0, timesteps, c)] == want:
            return s
    return None


# ---------------------------------------------------------------------------------------------- checks
def _check_schedule(fx: str, tensors: dict, model_schedule: S.VideoCrafterSchedule) -> list[Comparison]:
    out = []
    buffers = model_schedule.buffers()
    for key in sorted(k for k in tensors if k.startswith("schedule/")):
        name = key.split("/", 1)[1]
        exp = tensors[key]
        if name in buffers:
            out.append(_exact(fx, key, buffers[name], exp))
        elif name.startswith("scale_arr_"):
            tag = name[len("scale_arr_"):]
            if tag not in S.PRESETS:
                out.append(_failed(fx, key, f"unknown preset '{tag}'"))
                continue
            arr = S.PRESETS[tag].scale_arr
            out.append(_exact(fx, key, arr, exp) if arr is not None else _failed(fx, key, f"{tag} has no use_scale"))
        elif name == "betas_f64_numpy":
            out.append(_exact(fx, key, model_schedule.betas, exp))
        elif name == "alphas_cumprod_f64_numpy":
            out.append(_exact(fx, key, torch.from_numpy(S.alphas_cumprod_f64(model_schedule.betas)), exp))
        else:
            out.append(_failed(fx, key, "no recipe for this schedule key"))
    return out


def _check_ddim_arrays(fx: str, tensors: dict, model_schedule: S.VideoCrafterSchedule) -> list[Comparison]:
    out = []
    groups: dict[tuple[str, int], list[str]] = {}
    for key in tensors:
        m = re.match(r"ddim_([^/]+)/S(\d+)/(.+)$", key)
        if m:
            groups.setdefault((m.group(1), int(m.group(2))), []).append(key)
    for (tag, n), keys in sorted(groups.items()):
        sched, note = _preset(tag, model_schedule)
        cache: dict[float, D.DDIMArrays] = {}

        def arrays(eta: float) -> D.DDIMArrays:
            if eta not in cache:
                cache[eta] = D.make_ddim_arrays(sched, n, eta)
            return cache[eta]

        for key in sorted(keys):
            name = key.rsplit("/", 1)[1]
            exp = tensors[key]
            if name.startswith("ddim_sigmas_eta"):
                eta = _parse_eta(name)
                out.append(_exact(fx, key, arrays(eta).sigmas, exp))
            elif name in _DDIM_NAMES:
                act = getattr(arrays(0.0), _DDIM_NAMES[name])
                out.append(_exact(fx, key, act, exp) if act is not None else _failed(fx, key, f"{note}: no use_scale"))
            else:
                out.append(_failed(fx, key, "no recipe for this DDIM key"))
            if not note.startswith("preset"):
                out[-1].note = (out[-1].note + "; " if out[-1].note else "") + note
    return out


def _run_arrays(tensors: dict, tag: str, model_schedule: S.VideoCrafterSchedule):
    """DDIM arrays of run ``tag`` (ladder from timesteps_per_step, eta from the tag, dtype from x_T)."""
    pre = f"run_{tag}/"
    ladder = [int(t) for t in tensors[pre + "timesteps_per_step"]]
    steps = _steps_for_ladder(ladder, model_schedule.timesteps)
    eta = _parse_eta(tag)
    if steps is None or eta is None:
        return None, f"cannot infer S (ladder {ladder}) or eta (tag '{tag}')"
    f64 = tensors[pre + "x_T"].dtype == torch.float64
    arrays = D.make_ddim_arrays(model_schedule, steps, eta,
                                buffer_dtype=torch.float64 if f64 else torch.float32)
    return arrays, f"S={steps} eta={eta:g}" + (" model .double()" if f64 else "")


def _guided(tensors: dict, pre: str, i: int, cfg: float) -> torch.Tensor:
    e_c = tensors[pre + "e_t_cond_per_step"][i]
    if pre + "e_t_uncond_per_step" in tensors and cfg != 1.0:
        return D.cfg_eps(e_c, tensors[pre + "e_t_uncond_per_step"][i], cfg)
    return e_c


def _check_steps(fx: str, tensors: dict, tag: str, arrays: D.DDIMArrays, cfg: float, info: str) -> list[Comparison]:
    pre = f"run_{tag}/"
    n = tensors[pre + "x_prev_per_step"].shape[0]
    idx = [int(i) for i in tensors[pre + "index_per_step"]] if pre + "index_per_step" in tensors \
        else [arrays.num_steps - i - 1 for i in range(n)]
    xs, ps, exact = [], [], 0
    x_chain = tensors[pre + "x_T"]
    for i in range(n):
        x_in = tensors[pre + "x_T"] if i == 0 else tensors[pre + "x_prev_per_step"][i - 1]
        e_t = _guided(tensors, pre, i, cfg)
        noise = tensors[pre + "noise_per_step"][i]
        x_prev, pred = D.ddim_step(x_in, e_t, idx[i], arrays, noise)
        xs.append(x_prev)
        ps.append(pred)
        exact += int(torch.equal(x_prev, tensors[pre + "x_prev_per_step"][i])
                     and torch.equal(pred, tensors[pre + "pred_x0_per_step"][i]))
        x_chain, _ = D.ddim_step(x_chain, e_t, idx[i], arrays, noise)
    note = f"{info}, cfg={cfg:g}, {exact}/{n} steps bit-exact"
    return [
        compare(fx, f"{pre}step_recompute/x_prev_per_step", torch.stack(xs), tensors[pre + "x_prev_per_step"],
                rtol=STEP_RTOL, note=note),
        compare(fx, f"{pre}step_recompute/pred_x0_per_step", torch.stack(ps), tensors[pre + "pred_x0_per_step"],
                rtol=STEP_RTOL, note=note),
        compare(fx, f"{pre}step_recompute/chained_final_latent", x_chain, tensors[pre + "final_latent"],
                rtol=STEP_RTOL, note="chain from x_T with stored eps and noise"),
    ]


def _check_noise(fx: str, tensors: dict, tag: str, seed: int | None) -> list[Comparison]:
    pre = f"run_{tag}/"
    if seed is None:
        return [_failed(fx, f"{pre}noise_stream", "no seed found in the config")]
    x_T = tensors[pre + "x_T"]
    gen = D.OriginalOrderNoise(seed, x_T.shape)
    draws = [gen.x_T()] + [gen(i, x_T.shape) for i in range(tensors[pre + "noise_per_step"].shape[0])]
    expected = torch.cat([x_T.float()[None], tensors[pre + "noise_per_step"].float()])
    return [compare(fx, f"{pre}noise_stream(x_T+noise_per_step)", torch.stack(draws), expected, atol=0.0,
                    note=f"OriginalOrderNoise(seed={seed})")]


def _load_unet(config: dict, config_path: Path):
    """Our UNet with the fixture's weights (``model.diffusion_model.*`` keys, fp16 stored, cast to float32)."""
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    params = config["latent_diffusion_config_resolved"]["params"]
    kwargs = dict(params["unet_config"]["params"])
    name = _find(r"([\w.\-]+\.weights\.safetensors)", str(config.get("model", "")), cast=str)
    if name is None:
        raise FileNotFoundError("the config's model description names no *.weights.safetensors file")
    weights = config_path.parent / name
    sd = {k[len(UNET_PREFIX):]: v.float() for k, v in load_file(str(weights)).items() if k.startswith(UNET_PREFIX)}
    unet = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(kwargs))
    unet.load_state_dict(sd, strict=True)
    return unet.float().eval(), weights.name


def _check_end_to_end(fx: str, tensors: dict, tag: str, arrays: D.DDIMArrays, cfg: float, scale_factor: float,
                      unet, info: str) -> list[Comparison]:
    pre = f"run_{tag}/"
    ctx = tensors["cond/text_emb"].float()
    uctx = tensors.get("cond/uncond_emb")
    fps_t = tensors.get("cond/fps")
    fps = None if fps_t is None else (int(fps_t) if fps_t.dim() == 0 else fps_t)
    use_cfg = cfg != 1.0 and uctx is not None
    e_c_all, e_u_all, xs, ps = [], [], [], []

    def eps_fn(x, t, index):
        kw = {} if fps is None else {"fps": fps}
        e_c = unet(x, t, context=ctx, **kw)          # upstream order: cond first, then uncond (ddim.py:230-231)
        e_c_all.append(e_c)
        if not use_cfg:
            return e_c
        e_u = unet(x, t, context=uctx.float(), **kw)
        e_u_all.append(e_u)
        return D.cfg_eps(e_c, e_u, cfg)

    noise = tensors[pre + "noise_per_step"]
    with torch.no_grad():
        final = D.ddim_sample(eps_fn, tensors[pre + "x_T"].float(), arrays, lambda i, shape: noise[i],
                              callback=lambda i, index, x, p: (xs.append(x), ps.append(p)))
        decoded = (1. / scale_factor * final).unsqueeze(1)  # decode_first_stage_2DAE with identity VAE (ddpm3d.py:559)
    note = f"{info}, cfg={cfg:g}, float32 UNet"
    out = [compare(fx, f"{pre}e2e/e_t_cond_per_step", torch.stack(e_c_all), tensors[pre + "e_t_cond_per_step"],
                   rtol=E2E_RTOL, note=note)]
    if use_cfg:
        out.append(compare(fx, f"{pre}e2e/e_t_uncond_per_step", torch.stack(e_u_all),
                           tensors[pre + "e_t_uncond_per_step"], rtol=E2E_RTOL, note=note))
    out += [
        compare(fx, f"{pre}e2e/x_prev_per_step", torch.stack(xs), tensors[pre + "x_prev_per_step"],
                rtol=E2E_RTOL, note=note),
        compare(fx, f"{pre}e2e/final_latent", final, tensors[pre + "final_latent"], rtol=E2E_RTOL, note=note),
    ]
    if pre + "batch_ddim_sampling_return" in tensors:
        ret = tensors[pre + "batch_ddim_sampling_return"]
        out.append(compare(fx, f"{pre}e2e/batch_ddim_sampling_return", decoded, ret, rtol=E2E_RTOL, note=note))
        out.append(compare(fx, f"{pre}decode(final_latent)", (1. / scale_factor * tensors[pre + "final_latent"])
                           .unsqueeze(1), ret, atol=0.0, note=f"z * (1/{scale_factor:g}), identity first stage"))
    return out


def check(config_path: Path) -> list[Comparison]:
    """All comparisons for one sampler fixture (``<name>.config.json`` beside ``<name>.safetensors``)."""
    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    fx = config_path.name[: -len(".config.json")] if config_path.name.endswith(".config.json") else config_path.stem
    tensors = load_file(str(_tensor_file(config_path)))
    params = config["latent_diffusion_config_resolved"]["params"]
    model_schedule = S.schedule_from_config(params)
    scale_factor = float(params.get("scale_factor", 1.0))
    calls = config.get("calls", {})

    out = _check_schedule(fx, tensors, model_schedule)
    out += _check_ddim_arrays(fx, tensors, model_schedule)

    tags = sorted({k.split("/", 1)[0][len("run_"):] for k in tensors if k.startswith("run_") and k.endswith("/x_T")})
    unet, unet_error = None, None
    for tag in tags:
        pre = f"run_{tag}/"
        texts = [str(calls.get(f"run_{tag}/*", "")), str(calls.get("run_<tag>/*", ""))] + \
            [str(v) for k, v in calls.items() if k.startswith("run_")]
        cfg = _find(r"cfg_scale\s*=\s*([0-9.]+)", *texts)
        cfg = 1.0 if cfg is None else cfg
        seed = _find(r"manual_seed\((\d+)\)", *texts, cast=int)
        arrays, info = _run_arrays(tensors, tag, model_schedule)
        if arrays is None:
            out.append(_failed(fx, pre + "*", info))
            continue
        out += _check_noise(fx, tensors, tag, seed)
        out += _check_steps(fx, tensors, tag, arrays, cfg, info)
        if tensors[pre + "x_T"].dtype != torch.float32:
            continue  # float64 shadow runs need the float64-patched UNet; informational only (README §5.5)
        if unet is None and unet_error is None:
            try:
                unet, wname = _load_unet(config, config_path)
            except Exception as exc:  # noqa: BLE001  (UNet module missing or incompatible: report, don't crash)
                unet_error = f"UNet unavailable: {type(exc).__name__}: {exc}"
        if unet is None:
            out.append(_failed(fx, f"{pre}e2e/final_latent", unet_error))
            continue
        out += _check_end_to_end(fx, tensors, tag, arrays, cfg, scale_factor, unet, info)
    return out
