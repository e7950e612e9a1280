"""Benchmark: memory per decoded frame of the temporal VAE decoder against ComfyUI's per-frame estimate.

Run with the host's python from the repo root: ``python benchmarks/temporal_vae_memory.py [--sizes 8x8,16x16]``.

The VideoLDM decode (``bridge/temporal_vae.py``) sizes its frame chunks from a per-frame estimate: core's
``VAE.memory_used_decode`` (written for the plain image KL decoder) times ``TEMPORAL_DECODE_FACTOR``. This
measures what the real decoder needs: core builds Stable Video Diffusion's ``temporal_ae.VideoDecoder`` at full
width (ch 128, mult 1-2-4-4, the released layout) with seeded random weights (weights do not change memory);
one decode of ``F`` frames at latent ``h×w`` runs in a spawned child per case (peak RSS growth over one
decode, VmHWM reset through ``/proc/self/clear_refs``; glibc's mmap threshold fixed so freed buffers leave
RSS). The per-frame cost is the slope between two frame counts (fixed parts cancel); the table prints it
beside core's estimate and their ratio, which ``TEMPORAL_DECODE_FACTOR`` must cover.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _comfy_dir() -> str:
    return json.loads(subprocess.check_output([sys.executable, str(ROOT / "scripts" / "host.py"), "paths"]))["comfyui"]


def _case(queue, frames: int, h: int, w: int, comfy_dir: str):
    sys.path.insert(0, str(ROOT))
    import devkit.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
    from tests.videoldm_support import random_temporal_vae  # before ComfyUI's folder (it has a ``tests`` too)

    sys.path.insert(0, comfy_dir)
    import torch
    from comfy.cli_args import args

    args.cpu = not torch.cuda.is_available()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from benchmarks.unet_attention import _proc_status_mib, _reset_peak_rss
    from videocrafter_suite.bridge.temporal_vae import TEMPORAL_DECODE_FACTOR

    vae = random_temporal_vae(seed=0)
    z = torch.randn(frames, 4, h, w, generator=torch.Generator().manual_seed(1))
    estimate = vae.memory_used_decode((1, 4, h, w), torch.float32) / 2**20
    with torch.inference_mode():
        vae.first_stage_model.decode(z[:1])  # warm-up: one-time allocations
        _reset_peak_rss()
        base = _proc_status_mib("VmRSS")
        vae.first_stage_model.decode(z)
        queue.put({"peak": _proc_status_mib("VmHWM") - base, "estimate": estimate, "factor": TEMPORAL_DECODE_FACTOR})


def measure(frames: int, h: int, w: int, comfy_dir: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from benchmarks.unet_attention import measure_in_child

    return measure_in_child(_case, frames, h, w, comfy_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8x8,16x16", help="latent h x w, comma-separated")
    parser.add_argument("--frames", default="2,4", help="two frame counts (the slope between them is per frame)")
    args = parser.parse_args(argv)
    comfy_dir = _comfy_dir()
    f_low, f_high = (int(v) for v in args.frames.split(","))
    print(f"| latent h×w | peak {f_low} frames MiB | peak {f_high} frames MiB | measured MiB per frame | core estimate MiB "
          "per frame (fp32) | measured / estimate | covered by TEMPORAL_DECODE_FACTOR |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        low, high = measure(f_low, h, w, comfy_dir), measure(f_high, h, w, comfy_dir)
        slope = (high["peak"] - low["peak"]) / (f_high - f_low)
        ratio = slope / low["estimate"]
        print(f"| {h}×{w} | {low['peak']:.1f} | {high['peak']:.1f} | {slope:.1f} | {low['estimate']:.1f} | "
              f"{ratio:.2f} | {'yes' if ratio <= low['factor'] else 'NO'} ({low['factor']}) |", flush=True)


if __name__ == "__main__":
    main()
