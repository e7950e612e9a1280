"""Benchmark: activation memory per latent element, and the ``memory_usage_factor`` it implies.

Run from the repo root: ``python benchmarks/unet_memory_factor.py [--cases tiny:4x16x16,mid:8x24x32]``.

ComfyUI decides how many latents it may sample at once (and whether to offload) from
``BaseModel.memory_required(input_shape)``, which is linear in the latent "area"
``batch · h · w`` (batch-as-frames: batch = frames × cond/uncond) times ``memory_usage_factor``:

* attention-efficient path (CUDA flash / xformers): ``area · dtype_size · 0.01 · factor`` MiB;
* otherwise (the CPU): ``area · 0.15 · factor`` MiB.

Here each case runs one fp32 forward of our UNet (seeded random weights, VC2-512 layout, width from
``model_channels``) in its own spawned child: peak RSS reset before the forward, VmHWM after it
minus VmRSS before it (glibc mmap threshold fixed at 64 KiB so freed tensors leave RSS; see
benchmarks/unet_vs_original.py). The table shows MiB per latent element and the smallest factor
for which each of ComfyUI's formulas is an upper bound (fp16/bf16 activations taken as half the
fp32 ones — measured 0.50× in benchmarks/unet_vs_original.py).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.unet_attention import _proc_status_mib, _reset_peak_rss  # noqa: E402
from benchmarks.unet_vs_original import VC2_512  # noqa: E402

WIDTHS = {"tiny": 32, "mid": 64, "wide": 128, "vc2-512": 320}


def _measure(width: int, size: str, queue):
    import torch
    import devkit.pack  # noqa: F401
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    kwargs = dict(VC2_512, model_channels=width, num_head_channels=min(64, width // 2))
    torch.manual_seed(0)
    model = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(kwargs)).eval()
    t, h, w = (int(v) for v in size.split("x"))
    x = torch.randn(t, 4, h, w)
    context = torch.randn(t, 77, kwargs["context_dim"])
    timesteps = torch.full((t,), 421.0)
    with torch.inference_mode():
        model(x, timesteps, context, 28, num_frames=t)  # warm-up
        if not _reset_peak_rss():
            raise SystemExit("needs Linux /proc/self/clear_refs to reset the peak RSS")
        base = _proc_status_mib("VmRSS")
        model(x, timesteps, context, 28, num_frames=t)
        queue.put(_proc_status_mib("VmHWM") - base)


def measure(width: int, size: str) -> float:
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(width, size, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="tiny:4x16x16,tiny:8x32x32,mid:8x16x16,mid:8x24x32",
                        help="comma-separated WIDTH:TxHxW, WIDTH one of " + ", ".join(WIDTHS) + " or a number")
    args = parser.parse_args(argv)
    print("| model_channels | latent T×h×w | peak activation MiB (fp32) | MiB per latent element "
          "| factor for CPU formula (0.15) | factor for GPU formula (fp16, 0.02) |")
    print("|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        name, size = case.split(":")
        width = WIDTHS.get(name) or int(name)
        t, h, w = (int(v) for v in size.split("x"))
        mib = measure(width, size)
        per = mib / (t * h * w)
        print(f"| {width} | {size} | {mib:.1f} | {per:.4f} | {per / 0.15:.3f} | {per / 2 / 0.02:.3f} |", flush=True)


if __name__ == "__main__":
    main()
