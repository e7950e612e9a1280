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

Large clips at full width (issue 10 item 4, "peak memory for one step"), e.g.::

    python benchmarks/unet_memory_factor.py --cases vc2-512:16x40x64 --warmup 1x8x8 --dtypes fp32,bf16
    python benchmarks/unet_memory_factor.py --layout vc1-1024 --cases vc2-512:4x72x128,vc2-512:8x72x128 --warmup 1x8x8

``--layout`` picks the architecture dict of benchmarks/unet_vs_original.py (``vc2-512`` default,
``vc1-1024``: no temporal conv, relative-position temporal attention); ``--dtypes`` adds bf16 runs
(weights and activations in bf16, ComfyUI's ``--bf16-unet``); ``--warmup TxHxW`` warms up on a small
latent instead of a second full forward (halves the time of a large case; the warm-up only has to
load code and one-time state, the measured forward's buffers are mmapped and freed either way). The
wall time of the measured forward is printed too (CPU, one thread: set ``OMP_NUM_THREADS=1``).
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
from benchmarks.unet_vs_original import MODELS  # noqa: E402

WIDTHS = {"tiny": 32, "mid": 64, "wide": 128, "vc2-512": 320}


def _inputs(size: str, context_dim: int, dtype):
    import torch
    t, h, w = (int(v) for v in size.split("x"))
    x = torch.randn(t, 4, h, w).to(dtype)
    context = torch.randn(t, 77, context_dim).to(dtype)
    return x, torch.full((t,), 421.0), context, t


def _measure(width: int, size: str, queue, layout: str = "vc2-512", dtype_name: str = "fp32",
             warmup: str | None = None):
    import time
    import torch
    import devkit.pack  # noqa: F401
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    kwargs = dict(MODELS[layout], model_channels=width, num_head_channels=min(64, width // 2))
    torch.manual_seed(0)
    model = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(kwargs)).eval().to(dtype)
    x, timesteps, context, t = _inputs(size, kwargs["context_dim"], dtype)
    with torch.inference_mode():
        if warmup:  # a small latent: code, oneDNN and one-time state without a second large forward
            wx, wts, wctx, wt = _inputs(warmup, kwargs["context_dim"], dtype)
            model(wx, wts, wctx, 28, num_frames=wt)
            del wx, wts, wctx
        else:
            model(x, timesteps, context, 28, num_frames=t)  # warm-up
        if not _reset_peak_rss():
            raise SystemExit("needs Linux /proc/self/clear_refs to reset the peak RSS")
        base = _proc_status_mib("VmRSS")
        start = time.perf_counter()
        model(x, timesteps, context, 28, num_frames=t)
        wall = time.perf_counter() - start
        queue.put((_proc_status_mib("VmHWM") - base, wall))


def measure_with_time(width: int, size: str, layout: str = "vc2-512", dtype_name: str = "fp32",
                      warmup: str | None = None) -> tuple[float, float]:
    """(activation peak MiB, wall s) of one forward, in a spawned child."""
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(width, size, queue, layout, dtype_name, warmup))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def measure(width: int, size: str) -> float:
    return measure_with_time(width, size)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="tiny:4x16x16,tiny:8x32x32,mid:8x16x16,mid:8x24x32",
                        help="comma-separated WIDTH:TxHxW, WIDTH one of " + ", ".join(WIDTHS) + " or a number")
    parser.add_argument("--layout", choices=sorted(MODELS), default="vc2-512",
                        help="architecture of benchmarks/unet_vs_original.py (width still from --cases)")
    parser.add_argument("--dtypes", default="fp32", help="comma-separated of fp32,bf16,fp16 (weights+activations)")
    parser.add_argument("--warmup", default=None, metavar="TxHxW",
                        help="warm up on this latent instead of the measured one (saves a large forward)")
    args = parser.parse_args(argv)
    print(f"layout {args.layout}, warm-up {args.warmup or 'same latent'}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("| model_channels | latent T×h×w | dtype | peak activation MiB | MiB per latent element "
          "| factor for CPU formula (0.15) | factor for GPU formula (fp16, 0.02) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        name, size = case.split(":")
        width = WIDTHS.get(name) or int(name)
        t, h, w = (int(v) for v in size.split("x"))
        for dtype_name in args.dtypes.split(","):
            mib, wall = measure_with_time(width, size, args.layout, dtype_name, args.warmup)
            per = mib / (t * h * w)
            gpu = per / 2 if dtype_name == "fp32" else per  # the GPU column is for half-precision activations
            print(f"| {width} | {size} | {dtype_name} | {mib:.1f} | {per:.4f} | {per / 0.15:.3f} "
                  f"| {gpu / 0.02:.3f} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
