"""Benchmark: depth extraction with the full-size MiDaS DPT-Hybrid at 384², frames/s and peak memory.

Run from the repo root: ``python benchmarks/depth_extraction.py [--frames 8 --chunks 1 4 --backbone hybrid]``.

Builds the released DPT-Hybrid architecture (``vitb_rn50_384``, 123.1 M parameters; ``--backbone large``:
DPT-Large, 344.1 M) with seeded random weights — timing and memory do not depend on the values — and runs
what the depth node runs for each chunk of frames: Make-Your-Video's bicubic resize to 384×384, the DPT,
the same-size resize (``models.depth.dpt_run.estimate_inverse_depth``), then the per-frame display
normalisation at the input size. Input frames are 256×256 (Make-Your-Video's size; the DPT always sees 384²).

Time: every chunk size over the same frames, after one warm-up chunk; a median and a minimum per frame are
printed (the dev machine is shared). Peak memory: CUDA ``max_memory_allocated`` growth, or on CPU the peak RSS
during one chunk over the RSS before it (VmHWM reset through ``/proc/self/clear_refs``, the helper of
``benchmarks/unet_attention.py``); the weights themselves (fp32) are listed separately.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _import_pack():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import devkit.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames timed per chunk size")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4], help="frames per forward pass")
    parser.add_argument("--size", type=int, default=256, help="input frame height = width")
    parser.add_argument("--backbone", choices=("hybrid", "large"), default="hybrid")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args(argv)

    _import_pack()
    import torch

    from benchmarks.unet_attention import _proc_status_mib, _reset_peak_rss
    from videocrafter_suite.models.depth.dpt import DPTConfig, DPTDepthModel
    from videocrafter_suite.models.depth.dpt_run import depth_to_unit_range, estimate_inverse_depth

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    config = DPTConfig.dpt_hybrid() if args.backbone == "hybrid" else DPTConfig.dpt_large()
    torch.manual_seed(0)
    model = DPTDepthModel(config).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    frames = torch.rand(args.frames, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)

    def run(chunk: torch.Tensor) -> torch.Tensor:
        depth = depth_to_unit_range(estimate_inverse_depth(model, chunk * 2 - 1), (args.size, args.size))
        if device == "cuda":
            torch.cuda.synchronize()
        return depth

    rows = []
    with torch.inference_mode():
        run(frames[:1])  # warm-up
        for chunk in args.chunks:
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                run(frames[:chunk])
                peak = (torch.cuda.max_memory_allocated() - base) / 2**20
            elif _reset_peak_rss():
                base = _proc_status_mib("VmRSS")
                run(frames[:chunk])
                peak = _proc_status_mib("VmHWM") - base
            else:
                peak = float("nan")
            per_frame = []
            for start in range(0, args.frames, chunk):
                part = frames[start:start + chunk]
                began = time.perf_counter()
                run(part)
                per_frame.append((time.perf_counter() - began) / part.shape[0])
            rows.append((chunk, statistics.median(per_frame), min(per_frame), peak))

    name = "DPT-Hybrid (vitb_rn50_384)" if args.backbone == "hybrid" else "DPT-Large (vitl16_384)"
    print(f"MiDaS {name}, {params / 1e6:.1f} M params (fp32 weights {params * 4 / 2**20:.0f} MiB), random weights; "
          f"{args.frames} frames {args.size}x{args.size} -> 384x384 DPT -> back; torch {torch.__version__}; {where}")
    print("| frames/chunk | frames/s (median) | frames/s (best) | peak MiB during one chunk |")
    print("|---:|---:|---:|---:|")
    for chunk, median, best, peak in rows:
        print(f"| {chunk} | {1 / median:.2f} | {1 / best:.2f} | {peak:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
