#!/usr/bin/env python3
"""Train the demonstration model: a tiny VideoCrafter2 that follows "a red circle moving left ..." prompts.

    python3 scripts/host.py python -- scripts/train_demo_model.py            # full run, resumes if interrupted
    ... scripts/train_demo_model.py --vae-steps 60 --unet-steps 60 --work /tmp/t   # a smoke run

Stages (each resumable from checkpoints under ``--work``, default ``~/.cache/videocrafter-suite/train/demo``,
never inside the repository):

1. **KL-VAE** (core's ``AutoencoderKL``, the module the loader builds): reconstruction (L1 + L2) and a
   small KL term on frames of :mod:`devkit.shapes_dataset`; then its latent is normalised by folding
   mean/std into ``quant_conv``/``post_quant_conv`` so the UNet sees unit-std latents after core's
   0.18215 SD15 scaling (``devkit.demo_recipe.fold_latent_normalisation``).
2. **Latent pool**: a fixed set of training clips encoded once by the frozen VAE.
3. **UNet + text tower jointly**: the pack's pure-PyTorch ``VideoCrafterUNet`` (VC2 switches) and core's
   SD2/OpenCLIP text model fed by core's real tokenizer, on the VC2 forward process with its scale
   schedule (``x_t = √ᾱ_t·s_t·x0 + √(1−ᾱ_t)·ε``, ddpm3d.py:412-417), ε objective weighted by
   ``min(1 + 1/SNR, 25)`` (the v-prediction weighting, truncated: see ``high_noise_weights``), 10 % empty
   captions for classifier-free guidance, EMA weights exported. A caption probe (``caption_probe``) logs how
   much the model's error grows with another clip's caption, i.e. whether it reads the text at all.
4. **Export**: the released monolithic layout in fp16 safetensors (``--output``, default
   ``devkit/demo_model/videocrafter_demo_vc2_shapes.safetensors``), reloaded through the pack's loader.

Everything is seeded; the data of step ``n`` depends only on ``(seed, n)``, so a resumed run equals an
uninterrupted one. Progress and loss are printed every ``--log-every`` steps.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import host  # noqa: E402

import devkit.pack  # noqa: E402,F401  (registers the pack as `videocrafter_suite`)

sys.path.insert(0, str(host.comfy_dir()))  # ComfyUI first: its `nodes.py` must win over the pack's `nodes/`

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from comfy.cli_args import args as comfy_args  # noqa: E402

if not torch.cuda.is_available():
    comfy_args.cpu = True

import comfy.clip_model  # noqa: E402
import comfy.ldm.models.autoencoder  # noqa: E402


def _clip_layer_out_of_place(self, x, mask=None, optimized_attention=None):
    """Core's ``CLIPLayer.forward`` with out-of-place residual adds (core adds in place, which autograd
    cannot differentiate through); the same numbers, so the tower trained here is the one core runs."""
    x = x + self.self_attn(self.layer_norm1(x), mask, optimized_attention)
    return x + self.mlp(self.layer_norm2(x))


comfy.clip_model.CLIPLayer.forward = _clip_layer_out_of_place  # this training process only

from videocrafter_suite.bridge.checkpoint import build_clip, load_videocrafter_checkpoint  # noqa: E402
from videocrafter_suite.devkit import shapes_dataset as data  # noqa: E402
from videocrafter_suite.devkit.demo_recipe import (DEMO_CHECKPOINT, DEMO_SPEC, FPS, LATENT_SCALE,  # noqa: E402
                                                    SCHEDULES, VAE_DDCONFIG, checkpoint_state,
                                                    comfy_text_to_openclip, fold_latent_normalisation, schedule_of,
                                                    unet_config)
from videocrafter_suite.models.checkpoints.companions import openclip_text_layout  # noqa: E402
from videocrafter_suite.devkit.tiny_checkpoint import _random_from_layout  # noqa: E402
from videocrafter_suite.models.unet.unet3d import VideoCrafterUNet  # noqa: E402


#: first step of the "layout" range of ``--layout-fraction``: from here on (SNR < 0.04 on the VC2 and VC1
#: schedules) a 16-frame trajectory can hardly be read from x_t, so the caption alone decides the motion.
LAYOUT_STEPS = 900


def log(message: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {message}", flush=True)


def step_generator(seed: int, stage: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 10_007 + step)


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix="partial-", suffix=".pt", dir=path.parent)
    os.close(handle)
    torch.save(obj, temporary)
    os.replace(temporary, path)


def load_if_any(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Meter:
    def __init__(self, total: int, start: int):
        self.total, self.start, self.began, self.values = total, start, time.time(), []

    def add(self, value: float) -> None:
        self.values.append(value)

    def line(self, step: int) -> str:
        done = step + 1 - self.start
        rate = done / max(1e-6, time.time() - self.began)
        recent = self.values[-50:]
        eta = (self.total - step - 1) / max(rate, 1e-6)
        return (f"step {step + 1}/{self.total} loss {sum(recent) / len(recent):.4f} "
                f"({rate:.2f} it/s, eta {eta / 60:.1f} min)")


# --- stage 1: VAE ---------------------------------------------------------------------------------------------

def new_vae() -> torch.nn.Module:
    torch.manual_seed(0)
    vae = comfy.ldm.models.autoencoder.AutoencoderKL(embed_dim=4, ddconfig=dict(VAE_DDCONFIG))
    for module in vae.modules():  # core's ops skip init (weights normally come from a file): initialise here
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.GroupNorm):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return vae


def vae_batch(args, step: int) -> torch.Tensor:
    """``[B, 3, crop, crop]`` in [-1, 1]: random crops (multiples of 8 px, so the checker texture stays
    aligned with the latent grid) of random frames of random training clips. The VAE is convolutional
    (its one attention layer mixes whatever positions it gets), and crops cost a quarter of full frames."""
    generator = step_generator(args.seed, 1, step)
    clips = data.sample_clips(args.vae_batch // 2, int(torch.randint(2 ** 31 - 1, (1,), generator=generator)))
    frames = []
    for clip in clips:
        picks = torch.randint(data.FRAMES, (2,), generator=generator)
        for pick in picks.tolist():
            frame = clip.frames[pick]
            # crop around the object half of the time, so shapes are not rare in the crops
            if bool(torch.rand((), generator=generator) < 0.5):
                cx, cy = clip.centres[pick].tolist()
            else:
                cx, cy = (float(v) for v in torch.randint(data.SIZE, (2,), generator=generator))
            x0 = int(min(max(cx - args.vae_crop / 2, 0), data.SIZE - args.vae_crop)) // 8 * 8
            y0 = int(min(max(cy - args.vae_crop / 2, 0), data.SIZE - args.vae_crop)) // 8 * 8
            frames.append(frame[y0:y0 + args.vae_crop, x0:x0 + args.vae_crop])
    return torch.stack(frames).permute(0, 3, 1, 2) * 2 - 1


def vae_losses(vae, x: torch.Tensor, generator: torch.Generator):
    moments = vae.quant_conv(vae.encoder(x))
    mean, logvar = moments.chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator)
    reconstruction = vae.decoder(vae.post_quant_conv(z))
    rec = (reconstruction - x).abs().mean() + (reconstruction - x).pow(2).mean()
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    return rec, kl


def train_vae(args, work: Path) -> dict:
    path = work / "vae.pt"
    vae = new_vae()
    optimiser = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    start = 0
    saved = load_if_any(path)
    if saved is not None:
        vae.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        start = saved["step"]
        log(f"VAE: resumed at step {start}")
    if start < args.vae_steps:
        log(f"VAE: training {args.vae_steps - start} steps, batch {args.vae_batch} crops of {args.vae_crop} px")
    meter = Meter(args.vae_steps, start)
    vae.train()
    for step in range(start, args.vae_steps):
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step, args.vae_steps, args.vae_lr)
        x = vae_batch(args, step)
        rec, kl = vae_losses(vae, x, step_generator(args.seed, 2, step))
        loss = rec + args.kl_weight * kl
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        meter.add(float(rec.detach()))
        if (step + 1) % args.log_every == 0 or step + 1 == args.vae_steps:
            log(f"VAE {meter.line(step)} (kl {float(kl.detach()):.3f})")
        if (step + 1) % args.save_every == 0 or step + 1 == args.vae_steps:
            save_atomic({"model": vae.state_dict(), "optimiser": optimiser.state_dict(), "step": step + 1}, path)
    vae.eval()
    return {k: v.detach().clone() for k, v in vae.state_dict().items()}


@torch.no_grad()
def encode_frames(vae, frames: torch.Tensor) -> torch.Tensor:
    """Posterior means of ``[N, 64, 64, 3]`` frames in [0, 1] (core's VAE encodes the mode too)."""
    out = []
    for chunk in frames.split(64):
        moments = vae.quant_conv(vae.encoder(chunk.permute(0, 3, 1, 2) * 2 - 1))
        out.append(moments.chunk(2, dim=1)[0])
    return torch.cat(out)


def normalised_vae(args, work: Path, vae_state: dict) -> dict:
    """Fold latent mean/std (measured on seeded clips) into the VAE's 1x1 convolutions."""
    path = work / "vae_normalised.pt"
    saved = load_if_any(path)
    if saved is not None:
        return saved
    vae = new_vae()
    vae.load_state_dict(vae_state)
    vae.eval()
    clips = data.sample_clips(64, args.seed + 7)
    latents = encode_frames(vae, torch.cat([c.frames for c in clips]))
    mean = latents.mean(dim=(0, 2, 3))
    std = float((latents - mean.view(1, -1, 1, 1)).std())
    log(f"VAE latent: channel means {[round(v, 3) for v in mean.tolist()]}, std {std:.3f} -> folded")
    state = fold_latent_normalisation(vae_state, mean, std)
    save_atomic(state, path)
    return state


# --- stage 2: latent pool -------------------------------------------------------------------------------------

def latent_pool(args, work: Path, vae_state: dict) -> dict:
    path = work / (f"latents_{args.pool}.pt" if args.paths == "anywhere" else f"latents_{args.pool}_{args.paths}.pt")
    saved = load_if_any(path)
    if saved is not None and saved["latents"].shape[0] == args.pool:
        return saved
    vae = new_vae()
    vae.load_state_dict(vae_state)
    vae.eval()
    specs = data.training_specs()
    generator = torch.Generator().manual_seed(args.seed + 11)
    picks = [i % len(specs) for i in range(args.pool)]  # every training caption equally often
    seeds = torch.randint(2 ** 31 - 1, (args.pool,), generator=generator).tolist()
    latents, captions = [], []
    began = time.time()
    for n, (i, seed) in enumerate(zip(picks, seeds)):
        clip = data.make_clip(specs[i], seed, paths=args.paths)
        latents.append(encode_frames(vae, clip.frames) * LATENT_SCALE)  # what the UNet sees
        captions.append(clip.caption)
        if (n + 1) % 200 == 0:
            log(f"latent pool {n + 1}/{args.pool} ({time.time() - began:.0f}s)")
    pool = {"latents": torch.stack(latents).half(), "captions": captions}
    log(f"latent pool: {args.pool} clips, model-space std {float(pool['latents'].float().std()):.3f}")
    save_atomic(pool, path)
    return pool


# --- stage 3: UNet + text tower -------------------------------------------------------------------------------

def initial_text_state(spec) -> dict:
    generator = torch.Generator().manual_seed(spec.seed + 3)
    return _random_from_layout(openclip_text_layout(spec.text_width, spec.text_layers), generator)


def text_model(text_state_openclip: dict):
    """Core's CLIP (SD2 tokenizer + OpenCLIP text model) built by the pack's loader code."""
    clip = build_clip({k: v.float() for k, v in text_state_openclip.items()})
    tower = clip.cond_stage_model.clip_h
    tower.transformer.train()
    for parameter in tower.transformer.parameters():
        parameter.requires_grad_(True)
    return clip, tower


def tokens_of(clip, captions: list[str]) -> dict[str, list[int]]:
    return {c: [int(t) for t, _w in clip.tokenize(c)["h"][0]] for c in captions}


def encode_text(tower, tokens: list[list[int]]) -> torch.Tensor:
    return tower(tokens)[0]


def train_unet(args, work: Path, pool: dict):
    path = work / "unet.pt"
    model_spec = args.spec
    clip, tower = text_model(initial_text_state(model_spec))
    torch.manual_seed(model_spec.seed)
    unet = VideoCrafterUNet(unet_config(model_spec))
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    ema_text = {k: v.detach().clone() for k, v in tower.transformer.state_dict().items()}
    text_parameters = list(tower.transformer.parameters())
    if args.text_lr_factor == 0:  # a frozen tower: its seeded initialisation is what gets exported
        for parameter in text_parameters:
            parameter.requires_grad_(False)
        groups = [{"params": list(unet.parameters())}]
    elif args.text_lr_factor == 1:  # one group, as before the option existed: older unet.pt files still resume
        groups = [{"params": list(unet.parameters()) + text_parameters}]
    else:
        groups = [{"params": list(unet.parameters())}, {"params": text_parameters, "scale": args.text_lr_factor}]
    parameters = [p for group in groups for p in group["params"]]
    optimiser = torch.optim.AdamW(groups, lr=args.unet_lr, weight_decay=0.0)
    start = 0
    saved = load_if_any(path)
    if saved is not None:
        unet.load_state_dict(saved["unet"])
        tower.transformer.load_state_dict(saved["text"])
        optimiser.load_state_dict(saved["optimiser"])
        ema, ema_text, start = saved["ema"], saved["ema_text"], saved["step"]
        log(f"UNet: resumed at step {start}")
    elif args.init_from is not None:  # warm start: another run's weights and EMA, a fresh optimiser, step 0
        init = torch.load(args.init_from, map_location="cpu", weights_only=True)
        unet.load_state_dict(init["unet"])
        ema = init["ema"]
        if not args.fresh_text:
            tower.transformer.load_state_dict(init["text"])
            ema_text = init["ema_text"]
        log(f"UNet: warm start from {args.init_from} (its step {init['step']})"
            + ("; the text tower starts afresh" if args.fresh_text else ""))
    captions = pool["captions"]
    # Time reversal turns "left" into "right" etc. exactly; never into a held-back combination.
    backwards = {}
    for caption in set(captions):
        spec = data.reversed_spec(data.parse_caption(caption))
        backwards[caption] = None if spec.held_back else spec.caption
    probed = {c for swapped in probe_captions(sorted(set(captions))).values() for c in swapped}
    token_table = tokens_of(clip, sorted(set(captions) | probed) + [""])  # probed: every reversed caption too
    latents = pool["latents"]
    schedule = schedule_of(model_spec)
    acp = schedule.alphas_cumprod.float()
    signal = schedule.signal_scale(torch.arange(1000)).float()  # sqrt(acp_t) * s_t (s_t = 1 without use_scale)
    noise_std = (1.0 - acp).sqrt()
    weights = high_noise_weights(signal, noise_std, args.high_noise_weight)
    frames = data.FRAMES
    probe = caption_probe(args, pool, token_table, signal, noise_std)
    layout_check = layout_probe(pool, token_table, signal, noise_std)
    total = args.unet_steps + args.extra_steps
    meter = Meter(total, start)
    if start < total:
        log(f"UNet+text: training {total - start} steps, batch {args.batch} clips of {frames} frames")
    unet.train()
    for step in range(start, total):
        for group in optimiser.param_groups:  # cosine over --unet-steps, then constant (any stop point reproduces)
            group["lr"] = group.get("scale", 1.0) * (lr_at(step, args.unet_steps, args.unet_lr)
                                                     if step < args.unet_steps else args.unet_lr * args.extra_lr_factor)
        generator = step_generator(args.seed, 3, step)
        # The VC2 temporal convs train with dropout 0.1 (the original's TemporalConvBlock), drawn from the global
        # generator: seed it per step too, or a resumed run differs from an uninterrupted one.
        torch.manual_seed(step_generator(args.seed, 4, step).initial_seed())
        picks = torch.randint(latents.shape[0], (args.batch,), generator=generator)
        x0 = latents[picks].float()  # [B, T, 4, h, w]
        flip = torch.rand(args.batch, generator=generator) < args.time_flip
        drop = torch.rand(args.batch, generator=generator) < args.caption_dropout
        texts = []
        for row, (i, f) in enumerate(zip(picks.tolist(), flip.tolist())):
            if f and backwards[captions[i]]:
                x0[row] = x0[row].flip(0)
                texts.append(backwards[captions[i]])
            else:
                texts.append(captions[i])
        tokens = [token_table["" if d else text] for text, d in zip(texts, drop.tolist())]
        t = torch.randint(1000, (args.batch,), generator=generator)
        if args.layout_fraction:  # the noisiest steps, where only the caption can say where the object goes
            layout = torch.rand(args.batch, generator=generator) < args.layout_fraction
            t = torch.where(layout, torch.randint(LAYOUT_STEPS, 1000, (args.batch,), generator=generator), t)
        eps = torch.randn(x0.shape, generator=generator)
        if args.offset_noise:
            eps = eps + args.offset_noise * torch.randn((args.batch, 1, x0.shape[2], 1, 1), generator=generator)
        prediction = predict_noise(unet, tower, x0, eps, t, tokens, signal, noise_std)
        per_clip = (prediction - eps.flatten(0, 1)).pow(2).unflatten(0, (args.batch, frames)).mean(dim=(1, 2, 3, 4))
        loss = (weights[t] * per_clip).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for store, module in ((ema, unet), (ema_text, tower.transformer)):
                for k, v in module.state_dict().items():
                    if v.dtype.is_floating_point:
                        store[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        meter.add(float(per_clip.detach().mean()))
        if (step + 1) % args.log_every == 0 or step + 1 == total:
            log(f"UNet {meter.line(step)}")
        if (step + 1) % args.probe_every == 0 or step + 1 == total:
            log(f"UNet step {step + 1}: {probe(unet, tower)}; {layout_check(unet, tower)}")
        if (step + 1) % args.save_every == 0 or step + 1 == total:
            save_atomic({"unet": unet.state_dict(), "text": tower.transformer.state_dict(), "ema": ema,
                         "ema_text": ema_text, "optimiser": optimiser.state_dict(), "step": step + 1,
                         "recent_losses": meter.values[-200:]}, path)
    recent = meter.values[-200:] or load_if_any(path)["recent_losses"]
    log(f"UNet: final loss (mean of the last {len(recent)} steps) {sum(recent) / len(recent):.4f}")
    text_state = comfy_text_to_openclip(ema_text, model_spec.text_layers)
    used = sorted({token for tokens in token_table.values() for token in tokens})
    return ema, blank_unused_tokens(text_state, used)


def predict_noise(unet, tower, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, tokens: list,
                  signal: torch.Tensor, noise_std: torch.Tensor) -> torch.Tensor:
    """The UNet's ε for clips ``x0`` ``[B, T, 4, h, w]`` noised to per-clip steps ``t`` on VC2's forward process
    (``x_t = √ᾱ_t·s_t·x₀ + √(1−ᾱ_t)·ε``), captions ``tokens``; batch-as-frames ``[B·T, 4, h, w]``."""
    frames = x0.shape[1]
    xt = signal[t].view(-1, 1, 1, 1, 1) * x0 + noise_std[t].view(-1, 1, 1, 1, 1) * eps
    context = encode_text(tower, tokens).repeat_interleave(frames, 0)
    return unet(xt.flatten(0, 1), t.repeat_interleave(frames), context=context, fps=FPS, num_frames=frames)


def high_noise_weights(signal: torch.Tensor, noise_std: torch.Tensor, cap: float) -> torch.Tensor:
    """Per-timestep loss weight ``min(1 + 1/SNR_t, cap)`` with ``SNR_t = (√ᾱ_t·s_t)² / (1 − ᾱ_t)``.

    With ``x_t = a·x₀ + σ·ε`` an ε error is an x₀ error times ``a/σ``: where the latent is mostly
    noise (SNR ≪ 1) a wrong x₀ — the wrong colour, the wrong direction — costs almost nothing in the
    plain ε loss, yet those steps are exactly where only the caption can say what to draw (measured:
    with the plain ε loss the model's error did not depend on the caption at all at t = 900).
    ``1 + 1/SNR`` is the weight that turns the ε loss into the v-prediction loss (Salimans & Ho,
    "Progressive Distillation", ICLR 2022; the released VideoCrafter models are all ε-parameterised,
    manifests ``model_attrs.parameterization``, so the output stays ε and only the loss is reweighted); it is
    truncated at ``cap`` so the nearly pure-noise steps do not drown the detail steps. ``cap`` 1 is
    the plain ε objective of the original training.
    """
    snr = (signal / noise_std).pow(2)
    return (1.0 + snr.reciprocal()).clamp(max=max(1.0, cap))


#: One word of a caption swapped for another of its kind, for the caption probe's per-word gains.
WORD_SWAPS = {
    "colour": lambda c: data.ClipSpec({"red": "green", "green": "red", "blue": "yellow", "yellow": "blue"}[c.colour],
                                      c.shape, c.motion, c.background),
    "shape": lambda c: data.ClipSpec(c.colour, {"circle": "square", "square": "triangle", "triangle": "circle"}[c.shape],
                                     c.motion, c.background),
    "motion": data.reversed_spec,  # left <-> right, up <-> down, growing <-> shrinking
    "background": lambda c: data.ClipSpec(c.colour, c.shape, c.motion,
                                          {"grey": "black", "black": "checkered", "checkered": "grey"}[c.background]),
}


def probe_captions(captions: list[str]) -> dict[str, list[str]]:
    """For each kind of word, the captions with that word swapped (see :data:`WORD_SWAPS`)."""
    return {kind: [swap(data.parse_caption(c)).caption for c in captions] for kind, swap in WORD_SWAPS.items()}


def caption_probe(args, pool: dict, token_table: dict, signal: torch.Tensor, noise_std: torch.Tensor,
                  levels=(300, 600, 900, 990)):
    """A fixed check of which words the model reads, and at which noise level.

    The ε error of 8 fixed training clips (fixed noise) with their own captions, and ``gain`` = error with a
    changed caption ÷ error with the own caption − 1 (0: that part of the caption is ignored): ``other`` is another
    clip's whole caption; ``colour``, ``shape``, ``motion`` (the time-reversed motion: "left" for "right") and
    ``background`` swap one word. At t = 990 the latent is almost pure noise, so there the gains say whether the
    words lay the clip out (the demo model reads colour and background there, not shape and motion;
    docs/demo_model.md). ``token_table`` must hold the swapped captions (:func:`probe_captions`).
    """
    generator = torch.Generator().manual_seed(args.seed + 101)
    picks = torch.randint(pool["latents"].shape[0], (8,), generator=generator)
    x0 = pool["latents"][picks].float()
    own = [pool["captions"][i] for i in picks.tolist()]
    changed = {"other": own[3:] + own[:3], **probe_captions(own)}
    eps = torch.randn(x0.shape, generator=generator)

    @torch.no_grad()
    def error(unet, tower, captions, t) -> float:
        prediction = predict_noise(unet, tower, x0, eps, t, [token_table[c] for c in captions], signal, noise_std)
        return float(F.mse_loss(prediction, eps.flatten(0, 1)))

    def probe(unet, tower) -> str:
        was_training = unet.training
        unet.eval()
        parts = []
        for level in levels:
            t = torch.full((x0.shape[0],), level)
            base = error(unet, tower, own, t)
            gains = " ".join(f"{kind} {error(unet, tower, captions, t) / base - 1:+.1%}"
                             for kind, captions in changed.items())
            parts.append(f"t={level} eps {base:.4f} gain {gains}")
        unet.train(was_training)
        return "caption probe: " + "; ".join(parts)

    return probe


def layout_probe(pool: dict, token_table: dict, signal: torch.Tensor, noise_std: torch.Tensor, level: int = 900,
                 draws: int = 4):
    """Does the model lay a clip out in time, and by the direction words? Two scores at a high-noise step.

    The model's mean x0 prediction over ``draws`` fixed pure-noise latents (``x̂0 = (x_t − σ·ε̂)/a``, x_t = σ·ε)
    is compared with the training pool's own averages:

    * ``time order``: with the empty caption, the cosine between x̂0's first − last frame and the pool's mean
      first − last frame: it grows towards 1 once the model knows which frame comes first (objects start at the
      edges with ``--paths crossing``); meaningless for data that looks the same played backwards (``anywhere``);
    * ``direction``: x̂0("… moving right …") − x̂0("… moving left …") projected on the pool's mean right − left
      clip (and down − up), ``(a·b)/(b·b)``: 1 = as far apart as in the data, exactly 0 while the direction word
      is ignored.
    """
    latents = pool["latents"].float()
    motions = [data.parse_caption(c).motion for c in pool["captions"]]
    template = {m: latents[[i for i, k in enumerate(motions) if k == m]].mean(0) for m in set(motions)}
    pairs = []
    for motion in ("right", "down"):
        opposite = data.REVERSED_MOTION[motion]
        caption = next((c for c, m in zip(pool["captions"], motions) if m == motion), None)
        if caption is not None and opposite in template:
            reverse = data.reversed_spec(data.parse_caption(caption)).caption
            pairs.append((caption, reverse, template[motion] - template[opposite]))
    order = latents.mean(0)
    order = order[0] - order[-1]
    eps = torch.randn((draws,) + tuple(latents.shape[1:]), generator=torch.Generator().manual_seed(202))

    def along(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a * b).sum() / (b * b).sum().clamp(min=1e-12))

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12))

    @torch.no_grad()
    def mean_x0(unet, tower, caption: str) -> torch.Tensor:
        t = torch.full((draws,), level)
        prediction = predict_noise(unet, tower, torch.zeros_like(eps), eps, t, [token_table[caption]] * draws,
                                   signal, noise_std).unflatten(0, eps.shape[:2])
        return (noise_std[level] * (eps - prediction) / signal[level]).mean(0)

    def probe(unet, tower) -> str:
        was_training = unet.training
        unet.eval()
        blank = mean_x0(unet, tower, "")
        direction = [along(mean_x0(unet, tower, a) - mean_x0(unet, tower, b), truth) for a, b, truth in pairs]
        unet.train(was_training)
        shown = " ".join(f"{d:+.2f}" for d in direction) if direction else "n/a"
        return f"layout at t={level}: time order {cosine(blank[0] - blank[-1], order):+.2f}, direction {shown}"

    return probe


def blank_unused_tokens(text_state: dict, used: list[int]) -> dict:
    """Zero the token-embedding rows no training caption uses (they were never trained: random init).

    The table keeps OpenCLIP's full 49408 rows, as the loader expects; zero rows make any other word a
    blank token and let git store the file compressed (most of the table is those rows).
    """
    key = next(k for k in text_state if k.endswith("token_embedding.weight"))
    table = torch.zeros_like(text_state[key])
    table[used] = text_state[key][used]
    log(f"text tower: {len(used)} token rows trained and kept, {table.shape[0] - len(used)} blanked")
    return {**text_state, key: table}


# --- stage 4: export ------------------------------------------------------------------------------------------

def export(args, unet_state: dict, vae_state: dict, text_state: dict) -> Path:
    from safetensors.torch import save_file

    state = checkpoint_state(unet_state, vae_state, text_state, schedule_of(args.spec))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=output.parent)
    os.close(handle)
    save_file(state, temporary, metadata={"videocrafter_suite": "demonstration model: tiny VC2 trained on "
                                          "procedural shapes by scripts/train_demo_model.py"})
    os.replace(temporary, output)
    output.chmod(0o644)
    loaded = load_videocrafter_checkpoint(str(output))  # the loader accepts it like a released model.ckpt
    log(f"exported {output} ({output.stat().st_size / 2 ** 20:.2f} MiB), loads as {loaded.variant.description}")
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=host.cache_dir() / "train" / "demo",
                        help="checkpoints and caches (outside the repository)")
    parser.add_argument("--output", type=Path, default=DEMO_CHECKPOINT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared, loaded CPU 1 is far faster than 2 (no thread barriers)")
    parser.add_argument("--variant", choices=sorted(SCHEDULES), default=DEMO_SPEC.variant,
                        help="released layout (and its schedule) of the UNet")
    parser.add_argument("--model-channels", type=int, default=DEMO_SPEC.model_channels, help="UNet width")
    parser.add_argument("--text-width", type=int, default=DEMO_SPEC.text_width, help="text tower width")
    parser.add_argument("--vae-steps", type=int, default=3000)
    parser.add_argument("--vae-batch", type=int, default=8)
    parser.add_argument("--vae-crop", type=int, default=32, help="training crop side in pixels (multiple of 8)")
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--kl-weight", type=float, default=1e-5,
                        help="KL weight (mean over latent elements vs mean over pixels); 1e-3 washed colours out")
    parser.add_argument("--pool", type=int, default=576, help="training clips encoded once (3 per training caption)")
    parser.add_argument("--unet-steps", type=int, default=100,
                        help="warm-up (and cosine) phase; the constant-lr phase (--extra-steps) follows")
    parser.add_argument("--extra-steps", type=int, default=4900,
                        help="steps after --unet-steps at a constant lr (unet-lr x extra-lr-factor)")
    parser.add_argument("--extra-lr-factor", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--unet-lr", type=float, default=1e-3)
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--high-noise-weight", type=float, default=25.0,
                        help="cap of the loss weight min(1 + 1/SNR, cap) (the v-prediction weighting, truncated); "
                             "1 = the plain eps loss")
    parser.add_argument("--paths", choices=data.PATHS, default="anywhere",
                        help="how translating objects travel in the UNet's training clips (devkit/shapes_dataset.PATHS)")
    parser.add_argument("--time-flip", type=float, default=0.5,
                        help="probability of playing a training clip backwards with the reversed caption (left <-> "
                             "right, growing <-> shrinking); it doubles the clips per caption, but with start "
                             "positions symmetric about the centre it also makes every direction's object sit at the "
                             "same place on average (docs/demo_model.md)")
    parser.add_argument("--layout-fraction", type=float, default=0.0,
                        help=f"share of training clips whose step is drawn from [{LAYOUT_STEPS}, 999] instead of "
                             "[0, 999]: where the latent is (almost) pure noise the object's place in each frame "
                             "(the motion) can only come from the caption")
    parser.add_argument("--offset-noise", type=float, default=0.0,
                        help="std of a per-clip, per-channel constant added to the training noise (offset noise, "
                             "Guttenberg 2023): the clip-wide colour can then not be read from x_t at high noise, "
                             "only from the caption")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="warm start: the UNet, text tower and EMA of another run's unet.pt (same --variant, "
                             "--model-channels and --text-width); the optimiser and the step count start afresh")
    parser.add_argument("--text-lr-factor", type=float, default=1.0,
                        help="text tower learning rate / UNet learning rate; 0 keeps the tower frozen at its seeded "
                             "initialisation (a bag of words: every word moves every later token), as the released "
                             "models keep their OpenCLIP frozen. Trained at full rate, the tower amplifies the words the "
                             "UNet uses first (colour, background) until the direction words vanish from the context "
                             "(docs/demo_model.md)")
    parser.add_argument("--fresh-text", action="store_true",
                        help="with --init-from: take only the UNet; the text tower starts from its initialisation")
    parser.add_argument("--probe-every", type=int, default=250, help="steps between caption probes")
    parser.add_argument("--ema", type=float, default=0.995)
    parser.add_argument("--stop-after", choices=("vae", "pool"), default=None,
                        help="end after this stage (its result is cached; a later run resumes from it)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--save-every", type=int, default=50)
    args = parser.parse_args(argv)
    if args.fresh_text and args.init_from is None:
        parser.error("--fresh-text only applies to a warm start: give --init-from <work>/unet.pt as well")
    if args.text_lr_factor < 0:
        parser.error(f"--text-lr-factor must be >= 0 (0 freezes the text tower), got {args.text_lr_factor}")
    args.spec = replace(DEMO_SPEC, variant=args.variant, model_channels=args.model_channels,
                        text_width=args.text_width)
    torch.set_num_threads(args.threads)
    began = time.time()
    log(f"work dir {args.work}; output {args.output}; {args.spec}")
    vae_state = normalised_vae(args, args.work, train_vae(args, args.work))
    if args.stop_after == "vae":
        return 0
    pool = latent_pool(args, args.work, vae_state)
    if args.stop_after == "pool":
        return 0
    unet_state, text_state = train_unet(args, args.work, pool)
    export(args, unet_state, vae_state, text_state)
    log(f"done in {(time.time() - began) / 60:.1f} min wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
