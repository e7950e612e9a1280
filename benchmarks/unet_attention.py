"""Benchmark: UNet forward time and peak memory, SDPA attention vs naive attention.

Run from the repo root: ``python benchmarks/unet_attention.py [--frames 16 --size 32 --steps 3]``.

Builds one mid-size VideoCrafter2-style UNet (model_channels 128, channel_mult (1, 2, 4),
context 1024, temporal conv, fps conditioning) with seeded random weights, and times one
denoising step (one UNet forward, batch 1) with each attention path selected through
``models.unet.attention.attention_backend``:

* ``sdpa``  — ``torch.nn.functional.scaled_dot_product_attention`` (the default);
* ``naive`` — explicit ``softmax(q k^T * scale) v``, as the original pure-PyTorch path.

Time: both backends on the same model, interleaved step by step (the dev machine is shared, so
a median and a minimum are printed). Peak memory: on CUDA ``torch.cuda.max_memory_allocated``.
On CPU, tracemalloc does not see torch's allocator, so each backend runs one forward in its own
child process: the peak RSS is reset before the forward (``/proc/self/clear_refs`` = 5, Linux),
and VmHWM after it minus VmRSS before it is reported (fallback: ``ru_maxrss`` growth).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _import_pack():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import devkit.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)


def _build(args, device):
    import torch
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    config = UNet3DConfig(model_channels=128, channel_mult=(1, 2, 4), num_res_blocks=args.res_blocks,
                          attention_resolutions=(1, 2, 4), num_head_channels=64, context_dim=1024,
                          temporal_conv=True, use_relative_position=False, temporal_length=16,
                          addition_attention=True, fps_cond=True)
    torch.manual_seed(0)
    model = VideoCrafterUNet(config, device=device).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, args.frames, args.size, args.size, generator=g).to(device)
    context = torch.randn(1, 77, 1024, generator=g).to(device)
    t = torch.tensor([500], device=device)
    params = sum(p.numel() for p in model.parameters())
    return model, (x, t, context), params


BACKENDS = ("sdpa", "naive")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _proc_status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _proc_status_mib("VmHWM") is not None
    except OSError:
        return False


def measure_in_child(target, *args):
    """``target(queue, *args)`` in a spawned child; returns what it put on the queue. The child gets a fixed
    glibc mmap threshold (``MALLOC_MMAP_THRESHOLD_``, read at process start) so every buffer >= 64 KiB is its
    own mapping, returned to the OS when freed: RSS then follows the live tensors (peak-RSS measurements)."""
    import multiprocessing as mp
    import os
    import queue as queue_module

    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, *args))
    proc.start()
    while True:
        try:
            value = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"the measuring child process exited with code {proc.exitcode} (see its traceback)")
    proc.join()
    return value


def _time_interleaved(args, device: str) -> dict[str, list[float]]:
    """Per-step times of both backends, alternating A B A B ... on the same model.

    Interleaving (and reporting the minimum next to the median) keeps load from other
    processes on a shared machine from favouring whichever backend ran first.
    """
    _import_pack()
    import torch
    from videocrafter_suite.models.unet.attention import attention_backend

    model, (x, t, context), _ = _build(args, device)
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    with torch.no_grad():
        for step in range(args.steps + 1):
            for backend in BACKENDS:
                with attention_backend(backend):
                    start = time.perf_counter()
                    model(x, t, context, 28)
                    if device == "cuda":
                        torch.cuda.synchronize()
                if step:  # round 0 is warm-up
                    times[backend].append(time.perf_counter() - start)
    return times


def _peak_memory(backend: str, args, device: str) -> tuple[float, int]:
    """Peak memory growth (MiB) of one forward with ``backend``, and the parameter count."""
    _import_pack()
    import torch
    from videocrafter_suite.models.unet.attention import attention_backend

    model, (x, t, context), params = _build(args, device)
    with torch.no_grad(), attention_backend(backend):
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            model(x, t, context, 28)
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20, params
        model(x, t, context, 28)  # warm-up: one-time allocations (kernel workspaces, caches)
        if _reset_peak_rss():  # exact: peak during this forward over the RSS before it
            base = _proc_status_mib("VmRSS")
            model(x, t, context, 28)
            return _proc_status_mib("VmHWM") - base, params
        base = _rss_mib()  # fallback: growth of the lifetime peak (underestimates)
        model(x, t, context, 28)
        return _rss_mib() - base, params


def _child(backend, args, queue):
    queue.put(_peak_memory(backend, args, "cpu"))


def _peak_memory_isolated(backend: str, args) -> tuple[float, int]:
    """CPU: one child process per backend, so each RSS peak is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(backend, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="latent height = width")
    parser.add_argument("--steps", type=int, default=3, help="timed forwards per backend (after 1 warm-up)")
    parser.add_argument("--res-blocks", type=int, default=1, help="2 in the released models")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args(argv)

    _import_pack()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if torch.cuda.is_available():
        device, where = "cuda", torch.cuda.get_device_name()
        memory_kind = "torch.cuda.max_memory_allocated growth during one forward"
        memory = {b: _peak_memory(b, args, device) for b in BACKENDS}
    else:
        device, where = "cpu", f"CPU, {torch.get_num_threads()} threads"
        memory_kind = ("peak RSS during one forward minus RSS before it (VmHWM reset via /proc/self/clear_refs, "
                       "else ru_maxrss growth); one child process per backend")
        memory = {b: _peak_memory_isolated(b, args) for b in BACKENDS}
    times = _time_interleaved(args, device)
    params = memory["sdpa"][1]
    print(f"UNet3D mid-size (VC2-style): model_channels 128, channel_mult (1,2,4), res_blocks {args.res_blocks}, "
          f"context 1024, {params / 1e6:.1f} M params; batch 1, {args.frames} frames, "
          f"{args.size}x{args.size} latent; torch {torch.__version__}; {where}")
    print(f"time: {args.steps} steps per backend, interleaved, after 1 warm-up round")
    print(f"memory: {memory_kind}")
    print(f"| backend | median s/step | min s/step | peak MiB |")
    print(f"|---|---:|---:|---:|")
    for b in BACKENDS:
        print(f"| {b} | {statistics.median(times[b]):.3f} | {min(times[b]):.3f} | {memory[b][0]:.0f} |")
    med = {b: statistics.median(times[b]) for b in BACKENDS}
    low = {b: min(times[b]) for b in BACKENDS}
    print(f"speed-up sdpa vs naive: {med['naive'] / med['sdpa']:.2f}x (median), "
          f"{low['naive'] / low['sdpa']:.2f}x (min);  peak memory naive/sdpa: "
          f"{memory['naive'][0] / max(memory['sdpa'][0], 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
