"""Benchmark: our UNet beside the ORIGINAL VideoCrafter UNet, same weights, interleaved rounds.

Run from the repo root::

    python benchmarks/unet_vs_original.py /path/to/VideoCrafter-snapshot [--sizes 16x16x16,16x40x64]

The snapshot is a checkout of AILab-CVC/VideoCrafter kept OUTSIDE the tree (nothing fetched is
committed): ``git clone https://github.com/AILab-CVC/VideoCrafter /tmp/videocrafter_orig``. Its
``lvdm`` is imported with the stubs of ../shared/reference/README.md §0 (``pytorch_lightning``,
``cv2``, ``kornia``, ``transformers``, ``decord`` stubbed; ``sys.modules['xformers'] = None`` so
every attention takes the original's pure-PyTorch path; on CUDA that path is what the
original's xformers kernel computes, so it stands in for it).

What is measured, per latent size ``T×h×w`` (batch 1, one forward = one sampler step at cfg 1):

* **time per forward**, ours and the original's, alternating A B A B ... for ``--rounds`` rounds
  after one warm-up round (the dev machine is shared: min and median of the wall times and the
  process CPU time are printed; CPU time is what load from other jobs distorts least);
* **activation peak memory**: on CUDA ``torch.cuda.max_memory_allocated`` minus the memory before
  the forward; on CPU one child process per model: peak RSS reset (``/proc/self/clear_refs``)
  before a forward, VmHWM after it minus VmRSS before it;
* **max |ours − original|** of the fp32 outputs (same weights: ours loads the original's
  ``state_dict`` strictly);
* with ``--dtypes fp32,bf16[,fp16]``: our forward with weights and activations in that dtype
  (ComfyUI's ``--bf16-unet`` situation) and the original's under ``torch.autocast`` in the same
  dtype, and the error of each against the original's fp32 output.

Models: ``vc2-512`` (configs/inference_t2v_512_v2.0.yaml), ``vc1-1024``
(configs/inference_t2v_1024_v1.0.yaml), ``reduced`` (the VC2-512 layout at model_channels 64,
context 256, for a CPU run in minutes). Default: ``vc2-512`` on CUDA, ``reduced`` on CPU.
``--memory-only`` skips the timed rounds and prints, per size, the activation peak and the wall time
of the measured forward of ours and of the original (fp32 unless ``--dtypes``), one child each;
``--warmup TxHxW`` warms up on that small latent instead of a second full forward (for the
full-width large latents on the CPU, where a forward takes minutes). On CUDA ``--gpu-table`` prints the issue's table in one call: fp16/bf16 per-step time and
``max_memory_allocated`` for VC2-512 at 512×320×16 (latent 16×40×64) and VC1-1024 at
1024×576×16 (latent 16×72×128), ours vs the original.
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.unet_attention import _proc_status_mib, _reset_peak_rss, _rss_mib  # noqa: E402

VC2_512 = {"in_channels": 4, "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2, 1],
           "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_head_channels": 64, "transformer_depth": 1,
           "context_dim": 1024, "use_linear": True, "use_checkpoint": False, "temporal_conv": True,
           "temporal_attention": True, "temporal_selfatt_only": True, "use_relative_position": False,
           "use_causal_attention": False, "temporal_length": 16, "addition_attention": True, "fps_cond": True}
VC1_1024 = dict(VC2_512, temporal_conv=False, use_relative_position=True)
REDUCED = dict(VC2_512, model_channels=64, context_dim=256, num_head_channels=32)
MODELS = {"vc2-512": VC2_512, "vc1-1024": VC1_1024, "reduced": REDUCED}
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
GPU_TABLE = (("vc2-512", "16x40x64"), ("vc1-1024", "16x72x128"))


def import_original(snapshot: str):
    """The original ``UNetModel`` class, imported from ``snapshot`` with the §0 stubs."""
    import torch.nn as nn

    snapshot = str(Path(snapshot).resolve())
    if not (Path(snapshot) / "lvdm" / "modules" / "networks" / "openaimodel3d.py").is_file():
        raise SystemExit(f"{snapshot} is not a VideoCrafter snapshot (no lvdm/modules/networks/openaimodel3d.py); "
                         "pass the path of a checkout of AILab-CVC/VideoCrafter")
    pl = types.ModuleType("pytorch_lightning")

    class LightningModule(nn.Module):
        @property
        def device(self):
            return next(self.parameters()).device

    pl.LightningModule = LightningModule
    pl.seed_everything = lambda *a, **k: None
    pl_utils = types.ModuleType("pytorch_lightning.utilities")
    pl.utilities = pl_utils
    for name, module in {"pytorch_lightning": pl, "pytorch_lightning.utilities": pl_utils}.items():
        sys.modules.setdefault(name, module)
    for name in ("cv2", "kornia", "transformers", "decord"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["xformers"] = None  # XFORMERS_IS_AVAILBLE = False: the pure-PyTorch attention
    sys.modules["xformers.ops"] = None
    if snapshot not in sys.path:
        sys.path.insert(0, snapshot)
    from lvdm.modules.networks.openaimodel3d import UNetModel
    return UNetModel


def build_pair(snapshot: str, kwargs: dict, device: str):
    """(ours, original) on ``device`` in float32, ours loaded strictly from the original's state_dict."""
    import torch
    import devkit.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    UNetModel = import_original(snapshot)
    torch.manual_seed(0)
    original = UNetModel(**kwargs).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # default init leaves zero convs (zero_module): give every weight signal
        for p in original.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    ours = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(kwargs)).eval()
    ours.load_state_dict(original.state_dict(), strict=True)
    return ours.to(device), original.to(device)


def make_inputs(kwargs: dict, size: str, device: str):
    import torch
    t, h, w = (int(v) for v in size.split("x"))
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, kwargs["in_channels"], t, h, w, generator=g)
    context = torch.randn(1, 77, kwargs["context_dim"], generator=g)
    return x.to(device), torch.tensor([421], device=device), context.to(device)


def run_ours(model, inputs, dtype):
    x, t, context = inputs
    return model(x.to(dtype), t, context.to(dtype), 28)


def run_original(model, inputs, dtype):
    import torch
    x, t, context = inputs
    if dtype == torch.float32:
        return model(x, t, context=context, fps=torch.tensor([28], device=x.device))
    with torch.autocast(x.device.type, dtype=dtype):
        return model(x, t, context=context, fps=torch.tensor([28], device=x.device))


def _sync(device):
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(args, kwargs, size, device) -> tuple[dict, dict]:
    """Per-forward (wall, cpu) times of each (impl, dtype), interleaved; and max errors vs original fp32."""
    import torch
    ours, original = build_pair(args.snapshot, kwargs, device)
    inputs = make_inputs(kwargs, size, device)
    ours_by_dtype = {"fp32": ours}
    for name in args.dtypes:
        if name != "fp32":
            ours_by_dtype[name] = _cast_copy(ours, getattr(torch, DTYPES[name]))
    runs = []
    for name in args.dtypes:
        dtype = getattr(torch, DTYPES[name])
        runs.append((f"ours {name}", lambda d=dtype, n=name: run_ours(ours_by_dtype[n], inputs, d)))
        if name == "fp32" or not args.ours_only_low_precision:
            runs.append((f"original {name}", lambda d=dtype: run_original(original, inputs, d)))
    times = {label: {"wall": [], "cpu": []} for label, _ in runs}
    outputs = {}
    with torch.inference_mode():
        for step in range(args.rounds + 1):
            for label, fn in runs:
                _sync(device)
                wall, cpu = time.perf_counter(), time.process_time()
                y = fn()
                _sync(device)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if step == 0:
                    outputs[label] = y.float().cpu()
                else:  # round 0 is warm-up
                    times[label]["wall"].append(wall)
                    times[label]["cpu"].append(cpu)
    reference = outputs["original fp32"]
    errors = {label: (y - reference).abs().max().item() for label, y in outputs.items()}
    return times, errors


def _cast_copy(model, dtype):
    import copy
    return copy.deepcopy(model).to(dtype)


def peak_memory(args, kwargs, size, device, which: str, dtype_name: str) -> float:
    """Activation peak (MiB) of one forward of ``which`` (``ours``/``original``) in ``dtype_name``."""
    import torch
    ours, original = build_pair(args.snapshot, kwargs, device)
    model = ours if which == "ours" else original
    del ours, original
    dtype = getattr(torch, DTYPES[dtype_name])
    if which == "ours" and dtype != torch.float32:
        model = model.to(dtype)
    inputs = make_inputs(kwargs, size, device)
    warm = make_inputs(kwargs, args.warmup, device) if getattr(args, "warmup", None) else inputs
    run = run_ours if which == "ours" else run_original
    with torch.inference_mode():
        if device == "cuda":
            run(model, warm, dtype)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            run(model, inputs, dtype)
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        run(model, warm, dtype)  # warm-up: one-time allocations
        del warm
        if _reset_peak_rss():
            base = _proc_status_mib("VmRSS")
            start = time.perf_counter()
            run(model, inputs, dtype)
            args.last_wall = time.perf_counter() - start
            return _proc_status_mib("VmHWM") - base
        base = _rss_mib()
        run(model, inputs, dtype)
        return _rss_mib() - base


def _child(queue, *a):
    mib = peak_memory(*a)
    queue.put(mib if not getattr(a[0], "memory_only", False) else (mib, getattr(a[0], "last_wall", float("nan"))))


def peak_memory_isolated(args, kwargs, size, which, dtype_name) -> float:
    """CPU: one spawned child per measurement. glibc keeps freed heap pages, so a warm-up forward would
    make the measured one reuse them and show no RSS growth; the child gets a fixed mmap threshold
    (``MALLOC_MMAP_THRESHOLD_``, read at process start) so every tensor buffer ≥ 64 KiB is its own
    mapping, returned to the OS when freed, and RSS follows the live tensors."""
    import os
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, args, kwargs, size, "cpu", which, dtype_name))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def _stats(values):
    return min(values), statistics.median(values)


def report_memory_only(args, model_name, size):
    """CPU: activation peak and wall time of one measured forward, ours and the original, no timed rounds."""
    kwargs = MODELS[model_name]
    t, h, w = size.split("x")
    print(f"\n### {model_name}, latent {t}×{h}×{w} (= {int(w) * 8}×{int(h) * 8} px × {t} frames), CPU, "
          f"memory only, warm-up {args.warmup or 'same latent'}")
    print("| run | peak activation MiB | wall s (measured forward) |")
    print("|---|---|---|")
    for dtype_name in args.dtypes:
        for which in ("ours", "original"):
            mib, wall = peak_memory_isolated(args, kwargs, size, which, dtype_name)
            print(f"| {which} {dtype_name} | {mib:.0f} | {wall:.1f} |", flush=True)


def report(args, model_name, size, device):
    kwargs = MODELS[model_name]
    times, errors = time_interleaved(args, kwargs, size, device)
    t, h, w = size.split("x")
    print(f"\n### {model_name}, latent {t}×{h}×{w} (= {int(w) * 8}×{int(h) * 8} px × {t} frames), device {device}, "
          f"{args.rounds} interleaved rounds after 1 warm-up")
    print("| run | wall min s | wall median s | CPU median s | vs original fp32 (median wall / CPU) "
          "| peak activation MiB | max abs err vs original fp32 |")
    print("|---|---|---|---|---|---|---|")
    base_wall = statistics.median(times["original fp32"]["wall"])
    base_cpu = statistics.median(times["original fp32"]["cpu"])
    for label, tt in times.items():
        which, dtype_name = label.split()
        if args.no_memory:
            mem = float("nan")
        elif device == "cuda":
            mem = peak_memory(args, kwargs, size, device, which, dtype_name)
        else:
            mem = peak_memory_isolated(args, kwargs, size, which, dtype_name)
        wmin, wmed = _stats(tt["wall"])
        cmed = statistics.median(tt["cpu"])
        print(f"| {label} | {wmin:.3f} | {wmed:.3f} | {cmed:.3f} | {wmed / base_wall:.2f}× / {cmed / base_cpu:.2f}× "
              f"| {mem:.0f} | {errors[label]:.2e} |", flush=True)


def main(argv=None):
    import torch
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", help="path of an AILab-CVC/VideoCrafter checkout (outside this repo)")
    parser.add_argument("--model", choices=sorted(MODELS), default=None,
                        help="architecture (default: vc2-512 on CUDA, reduced on CPU)")
    parser.add_argument("--sizes", default=None, help="comma-separated latent sizes T x h x w "
                        "(default: 16x16x16,16x40x64 on CUDA, 8x16x16,8x24x32 on CPU)")
    parser.add_argument("--dtypes", default=None, help="comma-separated of fp32,bf16,fp16 "
                        "(default: fp32,bf16,fp16 on CUDA, fp32,bf16 on CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="timed interleaved rounds (after 1 warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--ours-only-low-precision", action="store_true",
                        help="do not time the original under autocast (only its fp32)")
    parser.add_argument("--gpu-table", action="store_true",
                        help="CUDA: VC2-512 at 16x40x64 and VC1-1024 at 16x72x128, fp32/fp16/bf16")
    parser.add_argument("--memory-only", action="store_true",
                        help="CPU: only the activation peak (and wall time) of one forward, ours and the original")
    parser.add_argument("--warmup", default=None, metavar="TxHxW",
                        help="warm up on this latent before a peak measurement (default: the measured one)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    args.dtypes = (args.dtypes or ("fp32,bf16,fp16" if cuda else "fp32,bf16")).split(",")
    if "fp32" not in args.dtypes:
        args.dtypes.insert(0, "fp32")  # the reference every error and ratio is measured against
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if cuda else ""))
    if args.gpu_table:
        if not cuda:
            raise SystemExit("--gpu-table needs a CUDA device")
        for model_name, size in GPU_TABLE:
            report(args, model_name, size, "cuda")
        return
    model_name = args.model or ("vc2-512" if cuda else "reduced")
    sizes = (args.sizes or ("16x16x16,16x40x64" if cuda else "8x16x16,8x24x32")).split(",")
    for size in sizes:
        if args.memory_only:
            if cuda:
                raise SystemExit("--memory-only is CPU-only (on CUDA the full report measures max_memory_allocated)")
            report_memory_only(args, model_name, size)
        else:
            report(args, model_name, size, args.device)


if __name__ == "__main__":
    main()
