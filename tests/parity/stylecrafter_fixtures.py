"""Parity checks for StyleCrafter fixtures (format of ``../shared/reference/fixtures/stylecrafter_tiny``).

The runner (``tests/parity/__main__.py``) calls ``matches(config)`` and ``check(config_path)``. Sizes,
head counts and the attention variant of each tensor are read from the config and the tensor names
(reference README §5.4), so other fixtures of the same format work unchanged:

- the adapter's sizes detected from its keys (heads from the config) and a strict load;
- ``out/adapter_context_*`` (StyleTransformer) and ``out/scale_scalar_*`` (ScaleEncoder);
- every ``out/y_*`` UNet output: with style tokens + per-layer factors, without style, unconditional,
  factors None, and image mode (``UNet2DModel``: one frame, temporal layers off). ``*_f32`` use the
  original's pure-PyTorch style attention (unscaled logits), ``*_xformers_emulated_f32`` the scaled
  one (our default); ``*_f64`` run our float64 model (pure variant);
- ``mid/*`` hook captures of the ``y_text_style_f32`` call (tolerance scaled by max|ref| as in
  ``unet_fixtures``);
- the ``sampler_*`` runs of ``style_guided_synthesis`` (DDIMStyleSampler, λ_t 15, λ_s 7.5): the DDIM
  arrays exactly, the noise stream exactly, every step recomputed from the stored three predictions
  with ``models.sampling.guidance.multi_condition_cfg`` (≤ 1e-6 rel), and the full 10-step loop with our UNet
  from the recorded x_T and noise (≤ 1e-4 rel, README §5.5).
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
from videocrafter_suite.models.sampling.guidance import multi_condition_cfg
from videocrafter_suite.models.style.adapter import StyleAdapter, StyleAdapterConfig, attach_style_layers
from videocrafter_suite.models.style.layout import ADAPTER_PREFIX
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

UNET_PREFIX = "model.diffusion_model."
F32_ATOL = 1e-5
F64_ATOL = 1e-9
STEP_RTOL = 1e-6
E2E_RTOL = 1e-4
XFORMERS_TAG = "_xformers_emulated"


PRIORITY = 10  # before unet_fixtures: these configs carry unet_kwargs too


def matches(config: dict) -> bool:
    """StyleCrafter fixtures: UNet kwargs plus a style ``adapter_config``."""
    return isinstance(config.get("unet_kwargs"), dict) and isinstance(config.get("adapter_config"), dict)


def _heads(config: dict) -> tuple[int, int]:
    params = config["adapter_config"]["params"]
    return (int(params["image_context_config"]["params"]["num_heads"]),
            int(params["scale_predictor_config"]["params"]["num_heads"]))


class _Models:
    """The fixture's UNet (+ style layers attached) and adapter, built once per dtype."""

    def __init__(self, config: dict, weights: dict):
        self.config, self.weights, self.cache = config, weights, {}

    def __call__(self, dtype):
        if dtype not in self.cache:
            unet_state = {k[len(UNET_PREFIX):]: v.to(dtype) for k, v in self.weights.items() if k.startswith(UNET_PREFIX)}
            adapter_state = {k[len(ADAPTER_PREFIX):]: v.to(dtype) for k, v in self.weights.items()
                             if k.startswith(ADAPTER_PREFIX)}
            unet = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(self.config["unet_kwargs"]), dtype=dtype)
            unet.load_state_dict(unet_state, strict=True)
            style_heads, scale_heads = _heads(self.config)
            adapter_config = StyleAdapterConfig.from_state(adapter_state, style_heads=style_heads,
                                                           scale_heads=scale_heads)
            adapter = StyleAdapter(adapter_config, {k: v.shape for k, v in unet_state.items()}, dtype=dtype)
            adapter.load_state_dict(adapter_state, strict=True)
            attach_style_layers(unet, adapter)
            self.cache[dtype] = (unet.eval(), adapter.eval())
        return self.cache[dtype]


def _variant(key: str) -> tuple[torch.dtype, bool, float]:
    """dtype, scaled style logits, tolerance of an output named like ``out/y_text_style_xformers_emulated_f32``."""
    if key.endswith("_f64"):
        return torch.float64, False, F64_ATOL
    return torch.float32, XFORMERS_TAG in key, F32_ATOL


def _unet_output(key: str, models: _Models, io: dict) -> torch.Tensor | None:
    """Recompute ``out/y_<case>_<variant>`` with the recipe the config states for it (README §5.4)."""
    dtype, scaled, _ = _variant(key)
    case = re.sub(rf"^out/y_|({XFORMERS_TAG})?_f(32|64)$", "", key)
    unet, adapter = models(dtype)
    x, t = io["in/x"].to(dtype), io["in/timesteps"]
    text = io["in/context_text"].to(dtype)
    with torch.no_grad():
        style = adapter(io["in/style_tokens_fp16"].to(dtype))
        scales = adapter.scale_factors(style, text)
        kw = dict(style_scaled_logits=scaled)
        if case == "text_style":
            return unet(x, t, text, style_context=style, style_scales=scales, **kw)
        if case == "text_style_scalarNone":
            return unet(x, t, text, style_context=style, style_scales=None, **kw)
        if case == "text_nostyle":
            return unet(x, t, text, **kw)
        if case == "uncond":
            return unet(x, t, io["in/context_uncond"].to(dtype), **kw)
        if case == "image_mode_UNet2DModel":
            return unet(x[:, :, :1], t, text, style_context=style, style_scales=scales, temporal_enabled=False, **kw)
    return None


def _check_outputs(fx: str, io: dict, models: _Models) -> list[Comparison]:
    out = []
    for key in sorted(k for k in io if k.startswith("out/")):
        dtype, scaled, atol = _variant(key)
        variant = "scaled style logits" if scaled else "unscaled style logits (pure-PyTorch path)"
        if key.startswith(("out/adapter_context_", "out/scale_scalar_")):
            _, adapter = models(dtype)
            with torch.no_grad():
                style = adapter(io["in/style_tokens_fp16"].to(dtype))
                value = style if "adapter_context" in key else adapter.scale_factors(style, io["in/context_text"].to(dtype))
            out.append(compare(fx, key, value, io[key], atol=atol))
            continue
        value = _unet_output(key, models, io)
        if value is None:
            out.append(_failed(fx, key, "no recipe for this output"))
        else:
            out.append(compare(fx, key, value, io[key], atol=atol, note=variant))
    return out


def _check_mids(fx: str, io: dict, models: _Models) -> list[Comparison]:
    """Hook captures of the ``y_text_style_f32`` call, measured against our own float64 run too."""
    names = [k[len("mid/"):] for k in io if k.startswith("mid/")]
    captured: dict[str, dict[str, torch.Tensor]] = {}
    for dtype in (torch.float32, torch.float64):
        unet, adapter = models(dtype)
        store = captured.setdefault(str(dtype), {})
        handles = []
        for name in names:
            hook_pre = name == "t_emb_sinusoid"
            path = {"t_emb_sinusoid": "time_embed", "time_embed_out": "time_embed"}.get(name, name)
            try:
                module = unet.get_submodule(path)
            except AttributeError:
                continue
            if hook_pre:
                handles.append(module.register_forward_pre_hook(
                    lambda m, args, name=name, store=store: store.__setitem__(name, args[0].detach().clone())))
            else:
                handles.append(module.register_forward_hook(
                    lambda m, args, o, name=name, store=store: store.__setitem__(name, o.detach().clone())))
        try:
            with torch.no_grad():
                text = io["in/context_text"].to(dtype)
                style = adapter(io["in/style_tokens_fp16"].to(dtype))
                unet(io["in/x"].to(dtype), io["in/timesteps"], text, style_context=style,
                     style_scales=adapter.scale_factors(style, text), style_scaled_logits=False)
        finally:
            for handle in handles:
                handle.remove()
    ours, truth = captured[str(torch.float32)], captured[str(torch.float64)]
    out = []
    for name in sorted(names):
        expected = io["mid/" + name]
        if name not in ours:
            out.append(_failed(fx, "mid/" + name, "no recipe to capture this tensor"))
            continue
        scale = max(1.0, float(expected.abs().max()))
        own = float((expected.double() - truth[name]).abs().max())
        out.append(compare(fx, "mid/" + name, ours[name], expected, atol=F32_ATOL * scale,
                           note=f"1e-5 x max|ref| {scale:.3g}; ref f32 vs our f64: {own:.2e}"))
    return out


def _sampler_settings(config: dict) -> tuple[int, float, float, int]:
    """Seed, λ_t, λ_s and steps of ``style_guided_synthesis(...)`` as the config states the call."""
    call = str(config.get("calls", {}).get("sampler_*", ""))
    seed = int(re.search(r"manual_seed\((\d+)\)", call).group(1))
    steps = int(re.search(r"(?:ddim_steps=)?(\d+),\s*(?:ddim_)?eta\b", call).group(1))
    scales = re.search(r"eta,\s*([0-9.]+),\s*([0-9.]+)\)", call)
    return seed, float(scales.group(1)), float(scales.group(2)), steps


def _check_schedule(fx: str, io: dict, schedule: S.VideoCrafterSchedule, steps: int) -> list[Comparison]:
    out = []
    names = {"timesteps": "timesteps", "ddim_alphas": "alphas", "ddim_alphas_prev": "alphas_prev",
             "ddim_sqrt_one_minus_alphas": "sqrt_one_minus_alphas"}
    for key in sorted(k for k in io if k.startswith(f"sampler_schedule_S{steps}/")):
        name = key.rsplit("/", 1)[1]
        if name.startswith("ddim_sigmas_eta"):
            actual = D.make_ddim_arrays(schedule, steps, float(name[len("ddim_sigmas_eta"):])).sigmas
        elif name in names:
            actual = getattr(D.make_ddim_arrays(schedule, steps, 0.0), names[name])
        else:
            out.append(_failed(fx, key, "no recipe for this schedule key"))
            continue
        out.append(compare(fx, key, actual, io[key], atol=0.0) if actual.dtype == io[key].dtype
                   else _failed(fx, key, f"dtype {actual.dtype} != {io[key].dtype}"))
    return out


def _check_run(fx: str, io: dict, tag: str, models: _Models, schedule: S.VideoCrafterSchedule,
               settings: tuple[int, float, float, int], scale_factor: float) -> list[Comparison]:
    seed, text_scale, style_scale, steps = settings
    pre = f"{tag}/"
    eta = float(re.search(r"eta(\d+)", tag).group(1))
    scaled = XFORMERS_TAG in tag
    arrays = D.make_ddim_arrays(schedule, steps, eta)
    x_T, noise = io[pre + "x_T"], io[pre + "noise_per_step"]
    info = f"eta={eta:g}, λ_t={text_scale:g}, λ_s={style_scale:g}, " + ("scaled" if scaled else "unscaled") + " style logits"
    out = []

    stream = D.OriginalOrderNoise(seed, x_T.shape)
    draws = torch.stack([stream.x_T()] + [stream(i, x_T.shape) for i in range(noise.shape[0])])
    out.append(compare(fx, pre + "noise_stream(x_T+noise_per_step)", draws, torch.cat([x_T[None], noise]), atol=0.0,
                       note=f"OriginalOrderNoise(seed={seed})"))

    e_full, e_text, e_unc = (io[pre + f"e_t_{n}_per_step"] for n in ("text_style", "text_nostyle", "uncond"))
    xs, ps, x = [], [], x_T
    for i in range(noise.shape[0]):
        index = int(io[pre + "index_per_step"][i])
        x_in = x_T if i == 0 else io[pre + "x_prev_per_step"][i - 1]
        e_t = multi_condition_cfg(e_full[i], e_text[i], e_unc[i], text_scale, style_scale)
        x_prev, pred = D.ddim_step(x_in, e_t, index, arrays, noise[i])
        xs.append(x_prev)
        ps.append(pred)
    out.append(compare(fx, pre + "step_recompute/x_prev_per_step", torch.stack(xs), io[pre + "x_prev_per_step"],
                       rtol=STEP_RTOL, note=info))
    out.append(compare(fx, pre + "step_recompute/pred_x0_per_step", torch.stack(ps), io[pre + "pred_x0_per_step"],
                       rtol=STEP_RTOL, note=info))

    unet, adapter = models(torch.float32)
    text, uncond = io["in/context_text"], io["in/context_uncond"]
    with torch.no_grad():
        style = adapter(io["in/style_tokens_fp16"])
        scales = adapter.scale_factors(style, text)
    captured = {"text_style": [], "uncond": [], "text_nostyle": []}

    def eps_fn(x, t, index):
        # The original's call order: (text, style), (∅ text, ∅ style), (text, ∅ style) (SC ddim.py:355-362).
        e_ts = unet(x, t, text, style_context=style, style_scales=scales, style_scaled_logits=scaled)
        e_u = unet(x, t, uncond, style_scaled_logits=scaled)
        e_t0 = unet(x, t, text, style_scaled_logits=scaled)
        for name, value in (("text_style", e_ts), ("uncond", e_u), ("text_nostyle", e_t0)):
            captured[name].append(value)
        return multi_condition_cfg(e_ts, e_t0, e_u, text_scale, style_scale)

    xs = []
    with torch.no_grad():
        final = D.ddim_sample(eps_fn, x_T, arrays, lambda i, shape: noise[i],
                              callback=lambda i, index, x, p: xs.append(x))
    note = info + ", float32 UNet"
    for name, values in captured.items():
        out.append(compare(fx, f"{pre}e2e/e_t_{name}_per_step", torch.stack(values), io[pre + f"e_t_{name}_per_step"],
                           rtol=E2E_RTOL, note=note))
    out.append(compare(fx, pre + "e2e/x_prev_per_step", torch.stack(xs), io[pre + "x_prev_per_step"], rtol=E2E_RTOL, note=note))
    out.append(compare(fx, pre + "e2e/final_latent", final, io[pre + "final_latent"], rtol=E2E_RTOL, note=note))
    if pre + "style_guided_synthesis_return" in io:
        decoded = (1.0 / scale_factor * final).unsqueeze(1)  # identity first stage, [B, n_samples, C, T, H, W]
        out.append(compare(fx, pre + "e2e/style_guided_synthesis_return", decoded, io[pre + "style_guided_synthesis_return"],
                           rtol=E2E_RTOL, note=note))
    return out


def check(config_path: Path) -> list[Comparison]:
    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    fx = config.get("fixture") or config_path.name[: -len(".config.json")]
    stem = config_path.name[: -len(".config.json")]
    weights = {k: v.float() for k, v in load_file(config_path.with_name(stem + ".weights.safetensors")).items()}
    io = load_file(config_path.with_name(stem + ".io.safetensors"))
    models = _Models(config, weights)
    adapter_state = {k[len(ADAPTER_PREFIX):]: v for k, v in weights.items() if k.startswith(ADAPTER_PREFIX)}
    style_heads, scale_heads = _heads(config)
    detected = StyleAdapterConfig.from_state(adapter_state, style_heads=style_heads, scale_heads=scale_heads)
    params = config["adapter_config"]["params"]
    stated = (params["image_context_config"]["params"], params["scale_predictor_config"]["params"])
    want = (stated[0]["in_dim"], stated[0]["out_dim"], stated[0]["num_tokens"], stated[0]["n_layers"],
            stated[1]["num_tokens"], stated[1]["n_layers"])
    got = (detected.style_in_dim, detected.context_dim, detected.style_tokens, detected.style_layers,
           detected.scale_tokens, detected.scale_layers)
    problems = [] if got == want else [f"detected {got} != config {want}"]
    results = [Comparison(fx, "StyleAdapterConfig.from_state(keys) == adapter_config", len(problems), len(problems),
                          atol=0.0, note="; ".join(problems) or "same sizes")]
    results += _check_outputs(fx, io, models)
    results += _check_mids(fx, io, models)

    latent = config["latent_diffusion_config_resolved"]["params"]
    schedule = S.schedule_from_config(latent)
    settings = _sampler_settings(config)
    results += _check_schedule(fx, io, schedule, settings[3])
    for tag in sorted({k.split("/", 1)[0] for k in io if k.startswith("sampler_eta") and k.endswith("/x_T")}):
        results += _check_run(fx, io, tag, models, schedule, settings, float(latent.get("scale_factor", 1.0)))
    return results
