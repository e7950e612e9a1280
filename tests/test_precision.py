"""Reduced precision as a real mode: the UNet in bf16 / fp16 through ComfyUI's own dtype handling.

Each golden UNet fixture (``../shared/reference/fixtures/t2v_tiny_*``, ``i2v_tiny``) is loaded by the
pack's loader (``bridge/checkpoint.build_model``) with ``model_options={"dtype": ...}``, exactly as the
ComfyUI loaders pass ``weight_dtype`` / ``--bf16-unet``; ComfyUI then picks the storage dtype and,
through ``model_management.unet_manual_cast``, whether layers run via ``comfy.ops.manual_cast``. The
UNet is called the way ``BaseModel._apply_model`` calls it: inputs cast to ``manual_cast_dtype`` if
set, else ``get_dtype()``, batch-as-frames, output ``.float()``. Modes:

* ``bf16``: bf16 weights, bf16 compute (what ComfyUI does on a device it reports bf16-capable —
  CUDA Ampere+, or a CPU with bf16 matrix units when the user passes ``--bf16-unet``; here
  ``should_use_bf16`` is answered True so the same code path runs on any CPU);
* ``fp32 weights, bf16 manual_cast``: fp32 weights, every layer casting them to bf16 per call
  (``unet_manual_cast`` answered bf16, as for fp8 / unsupported storage on a bf16 device);
* ``bf16 storage, core's CPU choice``: what core itself decides for bf16 weights on this CPU;
* ``fp16``: fp16 weights and compute (CPU fp16 kernels exist in torch; the CUDA path is the same code).

Tolerances (max |y − y_f32_original| over the output; the fixtures have |y| ≤ 2.9, inner activations
up to |a| ≈ 9.5, see ``mid/*``): each low-precision op rounds its operands and result with unit
roundoff u = 2^-9 (bf16, 8 significant bits) or 2^-12 (fp16, 11), about 2u = 2^-8 / 2^-11 per op for a
product of two rounded operands. Along the tiny UNets' deepest path there are N ≈ 40 such ops (convs,
linears, attention matmuls, norms, residual adds); independent rounding errors add like a random walk,
so the expected bound is sqrt(N)·2u·max|a| ≈ 6.3 · 2^-8 · 10 ≈ 0.25 for bf16 and 0.031 for fp16.
Measured (docs/performance.md, ``python -m tests.test_precision``): bf16 0.044-0.098, fp32 weights with
bf16 manual_cast 0.054-0.103, fp16 0.0052-0.011 — all within the bound, 2.4-2.8× below it. The fp32
mode must stay at the fp32 parity tolerance (1e-5). A low-precision mode must also show an error above
1e-4: fp32 arithmetic gives ~5e-6 here, so a smaller error would mean a silent fp32 fallback.

"No hidden fp32 fallbacks": forward hooks on every leaf module of the UNet must see floating outputs in
the compute dtype only (the float32 GroupNorms of the original, ``GroupNormSpecific``, compute in fp32
but return the input dtype, as the original does), and in bf16-storage modes every parameter is bf16.
"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.pack import REFERENCE_DIR

FIXTURES = REFERENCE_DIR / "fixtures"
# i2v_tiny's Resampler has dim_head 8, which the loader (made for the released dim_head 64) refuses; its
# UNet (with the image cross-attention) is loaded alone and the Resampler runs in fp32 beside it, as the
# I2V model does (bridge/model.py).
UNET_FIXTURES = {"t2v_tiny_vc2style": "vc2_t2v_512", "t2v_tiny_vc1style_relpos": "vc1_t2v_1024",
                 "i2v_tiny": "vc2_t2v_512"}
# mode -> (model_options dtype, patch: answer for should_use_bf16/should_use_fp16/unet_manual_cast,
#          expected storage dtype, expected compute dtype, tolerance)
BF16_TOL = 0.25  # sqrt(40) * 2^-8 * 10, see the module docstring
FP16_TOL = 0.031  # sqrt(40) * 2^-11 * 10
MODES = {
    "fp32": (torch.float32, {}, torch.float32, torch.float32, 1e-5),
    "bf16": (torch.bfloat16, {"should_use_bf16": True}, torch.bfloat16, torch.bfloat16, BF16_TOL),
    "fp32 weights, bf16 manual_cast": (torch.float32, {"unet_manual_cast": torch.bfloat16}, torch.float32,
                                       torch.bfloat16, BF16_TOL),
    "fp16": (torch.float16, {"should_use_fp16": True}, torch.float16, torch.float16, FP16_TOL),
}


def _patched(monkeypatch, patch: dict):
    import comfy.model_management as mm
    for name, answer in patch.items():
        if name == "unet_manual_cast":
            original = mm.unet_manual_cast
            monkeypatch.setattr(mm, name, lambda weight_dtype, *a, _o=original, **k:
                                answer if weight_dtype == torch.float32 else _o(weight_dtype, *a, **k))
        else:
            monkeypatch.setattr(mm, name, lambda *a, **k: answer)


def load_fixture(name: str):
    config = json.loads((FIXTURES / f"{name}.config.json").read_text())
    weights = {k: v.float() for k, v in load_file(FIXTURES / f"{name}.weights.safetensors").items()}
    io = load_file(FIXTURES / f"{name}.io.safetensors")
    return config, weights, io


def run_fixture(name: str, model_options: dict, dtype_hooks: list | None = None):
    """The fixture's ``out/y_f32`` call through the pack's loader and ComfyUI's dtype choice.

    Returns (output float32 [B,C,T,H,W], the reference, the ModelPatcher)."""
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.models.checkpoints.layout import VARIANTS
    from videocrafter_suite.models.sampling.schedule import VC2_512
    from tests.parity.unet_fixtures import load_resampler

    config, weights, io = load_fixture(name)
    state = {k: v for k, v in weights.items() if not k.startswith("image_proj_model.")}
    state.update(VC2_512.buffers())
    patcher = build_model(state, VARIANTS[UNET_FIXTURES[name]], VC2_512, model_options)
    base = patcher.model
    dtype = base.manual_cast_dtype or base.get_dtype()  # BaseModel._apply_model's choice
    x, t, context = io["in/x"], io["in/timesteps"], io["in/context_text"]
    b, c, frames, h, w = x.shape
    extra = {}
    if "in/fps" in io:
        extra["fps"] = io["in/fps"].repeat_interleave(frames)
    if config.get("resampler_kwargs"):  # the Resampler runs in fp32 (bridge/model.py), its output is cast
        with torch.inference_mode():
            extra["image_context"] = load_resampler(config, weights)(io["in/image_tokens"]).to(dtype)
    handles = []
    if dtype_hooks is not None:
        for module_name, module in base.diffusion_model.named_modules():
            if not list(module.children()):
                handles.append(module.register_forward_hook(
                    lambda m, a, out, n=module_name: dtype_hooks.append((n, type(m).__name__, out.dtype))
                    if isinstance(out, torch.Tensor) and out.is_floating_point() else None))
    try:
        with torch.inference_mode():
            y = base.diffusion_model(x.transpose(1, 2).reshape(b * frames, c, h, w).to(dtype),
                                     t.repeat_interleave(frames).float(),
                                     context=context.repeat_interleave(frames, 0).to(dtype),
                                     num_video_frames=frames, **extra).float()
    finally:
        for handle in handles:
            handle.remove()
    y = y.reshape(b, frames, c, h, w).transpose(1, 2)
    return y, io["out/y_f32"], patcher


def _cpu_supports(dtype) -> bool:
    try:
        a = torch.ones(8, 8, dtype=dtype)
        torch.nn.functional.conv2d(a[None, None], a[None, None][..., :3, :3])
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("name", sorted(UNET_FIXTURES))
@pytest.mark.parametrize("mode", list(MODES))
def test_reduced_precision_against_fp32_reference(comfy, monkeypatch, name, mode):
    options_dtype, patch, storage, compute, tolerance = MODES[mode]
    if not _cpu_supports(compute):
        pytest.skip(f"this torch build has no CPU {compute} convolution")
    _patched(monkeypatch, patch)
    seen: list = []
    y, reference, patcher = run_fixture(name, {"dtype": options_dtype}, seen)
    base = patcher.model
    assert (base.manual_cast_dtype or base.get_dtype()) == compute
    params = {p.dtype for p in base.diffusion_model.parameters()}
    assert params == {storage}, f"parameters stored in {params}, expected {storage}"
    assert len(seen) > 50  # every leaf module reported
    stray = sorted({(n, kind, str(dt)) for n, kind, dt in seen if dt != compute})
    assert not stray, f"layers returning another dtype than {compute}: {stray[:8]}"
    error = (y - reference).abs().max().item()
    assert torch.isfinite(y).all()
    assert error <= tolerance, f"{mode}: max |y - y_f32| = {error:.3g} > {tolerance}"
    if compute != torch.float32:
        # the error is that of rounding, not zero: the mode really computed in the low precision
        assert error > 1e-4, f"{mode}: error {error:.3g} too small for {compute} arithmetic (fp32 fallback?)"


def test_core_cpu_choice_for_bf16_weights_is_stated(comfy):
    """Without a bf16-capable device core stores bf16 and computes via manual_cast: state what it picks."""
    import comfy.model_management as mm
    y, reference, patcher = run_fixture("t2v_tiny_vc2style", {"dtype": torch.bfloat16})
    base = patcher.model
    assert base.get_dtype() == torch.bfloat16
    expected_compute = None if mm.should_use_bf16(mm.get_torch_device()) else torch.float32
    assert base.manual_cast_dtype == expected_compute
    assert (y - reference).abs().max().item() <= BF16_TOL


def measured_table() -> str:
    """Markdown table of max |y − y_f32_original| per fixture and mode (for docs/performance.md)."""
    import comfy.model_management as mm  # noqa: F401

    class _Patch:
        def __init__(self):
            self.saved = []

        def setattr(self, obj, name, value):
            self.saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

        def undo(self):
            for obj, name, value in reversed(self.saved):
                setattr(obj, name, value)

    lines = ["| fixture | " + " | ".join(MODES) + " |", "|---" * (len(MODES) + 1) + "|"]
    for name in sorted(UNET_FIXTURES):
        cells = []
        for mode, (options_dtype, patch, _s, _c, tol) in MODES.items():
            p = _Patch()
            _patched(p, patch)
            try:
                y, reference, _ = run_fixture(name, {"dtype": options_dtype})
                cells.append(f"{(y - reference).abs().max().item():.2e} (tol {tol:g})")
            finally:
                p.undo()
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # host python: python -m tests.test_precision  (prints the docs table)
    import sys

    import tests.pack  # noqa: F401
    from tests.server.harness import host

    sys.path.insert(0, str(host.comfy_dir()))
    from comfy.cli_args import args

    args.cpu = not torch.cuda.is_available()
    import comfy.model_management  # noqa: F401
    print(measured_table())
