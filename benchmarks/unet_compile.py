"""Benchmark: ``torch.compile`` of our UNet — graph breaks on the hot path and the measured speedup.

Run from the repo root: ``python benchmarks/unet_compile.py [--channels 32 --size 4x16x16 --rounds 3]``.

1. ``torch._dynamo.explain`` on one forward (batch-as-frames, as ComfyUI calls it: ``[(B·T), C, h, w]``
   with ``num_frames``) of a VC2-layout UNet with seeded random weights: prints the number of graphs,
   of graph breaks, and each break's reason and place (the docs list them, docs/performance.md).
2. ``torch.compile(model, fullgraph=False)`` (default inductor backend): compile time of the first call,
   then eager and compiled forwards interleaved for ``--rounds`` rounds (min, median wall; CPU time),
   and max |compiled − eager|.

Compiling is never required by the pack; this measures whether it pays on the machine at hand.
Not a timed test: compilation takes minutes on a loaded CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build(channels: int, size: str, fps_cond=True, temporal_conv=True, relpos=False):
    import torch
    import devkit.pack  # noqa: F401
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet

    kwargs = {"in_channels": 4, "out_channels": 4, "model_channels": channels, "attention_resolutions": [4, 2, 1],
              "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_head_channels": 32, "transformer_depth": 1,
              "context_dim": 256, "use_linear": True, "temporal_conv": temporal_conv, "temporal_attention": True,
              "temporal_selfatt_only": True, "use_relative_position": relpos, "use_causal_attention": False,
              "temporal_length": 16, "addition_attention": True, "fps_cond": fps_cond}
    torch.manual_seed(0)
    model = VideoCrafterUNet(UNet3DConfig.from_upstream_kwargs(kwargs)).eval()
    t, h, w = (int(v) for v in size.split("x"))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(t, 4, h, w, generator=g)
    timesteps = torch.full((t,), 421.0)
    context = torch.randn(t, 77, 256, generator=g)
    fps = torch.full((t,), 28)
    return model, (x, timesteps, context, fps, t)


def forward(model, inputs):
    x, timesteps, context, fps, frames = inputs
    return model(x, timesteps, context, fps, num_frames=frames)


def explain(model, inputs, label: str):
    import torch
    import torch._dynamo

    torch._dynamo.reset()
    x, timesteps, context, fps, frames = inputs
    with torch.inference_mode():
        report = torch._dynamo.explain(model)(x, timesteps, context, fps, num_frames=frames)
    print(f"\n#### {label}: {report.graph_count} graph(s), {report.graph_break_count} graph break(s), "
          f"{report.op_count} ops")
    seen = set()
    for reason in report.break_reasons:
        frame = reason.user_stack[-1] if reason.user_stack else None
        where = f"{Path(frame.filename).name}:{frame.lineno} ({frame.name})" if frame else "?"
        key = (reason.reason.splitlines()[0], where)
        if key not in seen:
            seen.add(key)
            print(f"- {where}: {key[0][:200]}")
    return report


def main(argv=None):
    import torch
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=32, help="model_channels (VC2-512 has 320)")
    parser.add_argument("--size", default="4x16x16", help="latent T x h x w")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--explain-only", action="store_true")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model_channels {args.channels}, "
          f"latent {args.size}")
    model, inputs = build(args.channels, args.size)
    explain(model, inputs, "VC2 layout (temporal conv, fps)")
    explain(*build(args.channels, args.size, temporal_conv=False, relpos=True), "VC1 layout (relative position)")
    if args.explain_only:
        return
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=False)
    with torch.inference_mode():
        start = time.perf_counter()
        y_compiled = forward(compiled, inputs)
        print(f"\nfirst compiled call (compilation): {time.perf_counter() - start:.1f} s")
        y_eager = forward(model, inputs)
        times = {"eager": {"wall": [], "cpu": []}, "compiled": {"wall": [], "cpu": []}}
        for _ in range(args.rounds):
            for label, m in (("eager", model), ("compiled", compiled)):
                wall, cpu = time.perf_counter(), time.process_time()
                forward(m, inputs)
                times[label]["wall"].append(time.perf_counter() - wall)
                times[label]["cpu"].append(time.process_time() - cpu)
    print("| run | wall min s | wall median s | CPU median s |\n|---|---|---|---|")
    for label, tt in times.items():
        print(f"| {label} | {min(tt['wall']):.3f} | {statistics.median(tt['wall']):.3f} | "
              f"{statistics.median(tt['cpu']):.3f} |")
    ratio = statistics.median(times["compiled"]["wall"]) / statistics.median(times["eager"]["wall"])
    print(f"compiled / eager median wall: {ratio:.2f}×; max |compiled − eager| = "
          f"{(y_compiled - y_eager).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
