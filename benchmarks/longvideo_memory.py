"""Benchmark: peak memory per denoising step and time per output frame of the long-video methods.

Run from the repo root: ``python benchmarks/longvideo_memory.py [--frames 64 --window 16 --size 16]``.

One VideoCrafter2-style UNet with seeded random weights (reduced widths on CPU: ``--channels``) denoises
``--frames`` frames with each method, one "step" each, batch 1 (CFG doubles every row equally):

* ``plain W``      — the model on one window of W frames (the training length): the reference;
* ``FreeNoise T``  — all T frames in one forward, temporal attention window-fused (window W, stride 4);
* ``context T``    — core-style context windows (static schedule, W frames, overlap 4, pyramid fusion):
                     one forward per window, results fused in x-sized buffers;
* ``FIFO T``       — one diagonal iteration (f = W, n partitions, lookahead): 2n window forwards, one frame out.

Memory is measured per method in its own child process (CPU: peak RSS during the step minus RSS before it,
VmHWM reset through ``/proc/self/clear_refs``; CUDA: ``max_memory_allocated`` growth). Time: all methods
interleaved in one process, minimum over rounds (the machine may be shared). Time per output frame:
``steps × time per step / T`` for the whole-video methods (DDIM ``--ddim-steps``); FIFO pops one frame per
iteration, so its time per frame is the iteration time.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from unet_attention import _proc_status_mib, _reset_peak_rss, _rss_mib  # noqa: E402

METHODS = ("plain", "freenoise", "context", "fifo")


def _import_pack():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import devkit.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)


def _model(args, device):
    import torch
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    config = UNet3DConfig(model_channels=args.channels, channel_mult=(1, 2, 4), num_res_blocks=1,
                          attention_resolutions=(1, 2, 4), num_head_channels=32, context_dim=1024,
                          temporal_conv=True, use_relative_position=False, temporal_length=16,
                          addition_attention=True, fps_cond=True)
    torch.manual_seed(0)
    return VideoCrafterUNet(config, device=device).eval()


def _static_windows(frames: int, length: int, overlap: int) -> list[list[int]]:
    """core ``create_windows_static_standard``: fixed windows, the last one moved back to end at T."""
    if frames <= length:
        return [list(range(frames))]
    windows, delta = [], length - overlap
    for start in range(0, frames, delta):
        if start + length >= frames:
            windows.append(list(range(frames - length, frames)))
            break
        windows.append(list(range(start, start + length)))
    return windows


def _step(method: str, args, device):
    """A callable running one step of ``method`` (and the number of frames it outputs per call)."""
    import torch
    from videocrafter_suite.models.longvideo import fifo as F
    from videocrafter_suite.models.longvideo.freenoise import WindowFusedAttention, generate_weight_sequence
    from videocrafter_suite.models.sampling.schedule import VC2_512

    model = _model(args, device)
    g = torch.Generator().manual_seed(1)
    context = torch.randn(1, 77, 1024, generator=g).to(device)
    frames, window = args.frames, args.window

    def latent(t):
        return torch.randn(1, 4, t, args.size, args.size, generator=g).to(device)

    def forward(x, t=500, **kw):
        return model(x, torch.full((1,), t, device=device), context, 8, **kw)

    if method == "plain":
        x = latent(window)
        return (lambda: forward(x)), window
    if method == "freenoise":
        x, fused = latent(frames), WindowFusedAttention(window, 4)
        return (lambda: forward(x, temporal_attention=fused)), frames
    if method == "context":
        x = latent(frames)
        windows = _static_windows(frames, window, 4)
        weights = torch.tensor(generate_weight_sequence(window), dtype=x.dtype, device=device).view(1, 1, -1, 1, 1)

        def run():
            value, count = torch.zeros_like(x), torch.zeros(1, 1, frames, 1, 1, device=device)
            for index in windows:
                value[:, :, index] += forward(x[:, :, index]) * weights
                count[:, :, index] += weights
            return value / count
        return run, frames
    if method == "fifo":
        settings = F.FifoSettings(window, args.partitions, 1, True, 1.0)
        arrays = F.fifo_ddim_arrays(VC2_512, settings.num_steps, 1.0)
        clip = latent(window)
        draw = F.generator_draws(torch.Generator().manual_seed(2))
        plain = F.without_scale(arrays)
        queue, _ = F.init_queue(clip, plain, settings, draw)
        timesteps, indices = F.queue_schedule(plain, settings)
        eps = lambda x, ts: model(x, ts.to(device), context, 8)  # noqa: E731  (per-frame timesteps)

        def iteration():  # one pass of fifo_sample's loop: every window, pop, shift
            for rank in settings.ranks:
                start, mid, end = settings.window(rank)
                out = F.fifo_onestep(eps, queue[:, :, start:end].clone(), timesteps[start:end],
                                     indices[start:end], plain, draw)[0]
                queue[:, :, mid:end] = out[:, :, -settings.half:]
            frame = queue[:, :, [settings.pop_position]].clone()
            F.shift_queue(queue, draw)
            return frame
        return iteration, 1
    raise ValueError(method)


def _measure(method: str, args, device: str) -> tuple[float, float, int]:
    """(peak MiB of one step, median seconds per step, frames out per step)."""
    _import_pack()
    import statistics

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    run, out_frames = _step(method, args, device)
    with torch.no_grad():
        run()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            run()
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        elif _reset_peak_rss():
            base = _proc_status_mib("VmRSS")
            run()
            peak = _proc_status_mib("VmHWM") - base
        else:
            base = _rss_mib()
            run()
            peak = _rss_mib() - base
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return peak, statistics.median(times), out_frames


def _time_interleaved(args, device: str) -> dict[str, list[float]]:
    """Seconds per step of every method, alternating A B C D A B C D ... in one process, so load from
    other processes on a shared machine hits all methods alike (the minimum is the least disturbed)."""
    _import_pack()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = {m: _step(m, args, device)[0] for m in METHODS}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    with torch.no_grad():
        for round_ in range(args.repeats + 1):
            for method in METHODS:
                start = time.perf_counter()
                steps[method]()
                if device == "cuda":
                    torch.cuda.synchronize()
                if round_:  # round 0 is warm-up
                    times[method].append(time.perf_counter() - start)
    return times


def _child(method, args, device, queue):
    queue.put(_measure(method, args, device))


def _isolated(method, args, device):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(method, args, device, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="total frames T (FIFO: output frames)")
    parser.add_argument("--window", type=int, default=16, help="window / context length / FIFO f")
    parser.add_argument("--partitions", type=int, default=4, help="FIFO n (S = f·n steps)")
    parser.add_argument("--ddim-steps", type=int, default=50, help="steps of the whole-video methods")
    parser.add_argument("--size", type=int, default=None, help="latent side (default 40 on CUDA, 16 on CPU)")
    parser.add_argument("--channels", type=int, default=None, help="model_channels (default 320 CUDA, 64 CPU)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    _import_pack()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.size = args.size or (40 if device == "cuda" else 16)
    args.channels = args.channels or (320 if device == "cuda" else 64)
    results = {m: _isolated(m, args, device) for m in METHODS}
    times = _time_interleaved(args, device)
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"UNet VC2-style, model_channels {args.channels}, latent {args.size}x{args.size}, batch 1; {where}; "
          f"T={args.frames}, window {args.window}, FIFO n={args.partitions} (lookahead), DDIM {args.ddim_steps} steps")
    print(f"time: {args.repeats} interleaved rounds after a warm-up, minimum (median) seconds")
    print("| method | frames per step | peak MiB per step | x plain | s per step | s per output frame | x plain |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    plain_peak = results["plain"][0]

    def per_frame(method, seconds, out):
        return seconds if method == "fifo" else seconds * args.ddim_steps / out

    plain_frame = per_frame("plain", min(times["plain"]), results["plain"][2])
    for method in METHODS:
        peak, _, out = results[method]
        low, mid = min(times[method]), statistics.median(times[method])
        label = {"plain": f"plain {args.window}", "freenoise": f"FreeNoise {args.frames}",
                 "context": f"context windows {args.frames}", "fifo": f"FIFO {args.frames}"}[method]
        print(f"| {label} | {out} | {peak:.0f} | {peak / max(plain_peak, 1e-9):.2f} | {low:.3f} ({mid:.3f}) | "
              f"{per_frame(method, low, out):.3f} | {per_frame(method, low, out) / plain_frame:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
