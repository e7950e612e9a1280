"""Benchmark: peak memory of the VideoLDM blocks — one segment / one tile at a time vs the whole clip at once.

Run with the host's python from the repo root: ``python benchmarks/videoldm_memory.py [--size 32 --steps 2]``
(``python3 scripts/host.py paths`` prints that python and the ComfyUI folder).

Each case runs in its own spawned child process with ComfyUI imported in-process, on a tiny VC2-layout
checkpoint from ``devkit`` (seeded random weights), CFG guider, core ``euler``:

* prediction: a 16-frame clip extended by 4 segments of 16 frames (context 4) to 64 frames, against
  sampling one 64-frame clip in one go;
* tiles: re-denoising a 16-frame clip at 2× the latent size in tiles of the original size (overlap 1/4 tile;
  3×3 tiles), against untiled.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` growth during the run; on CPU the peak RSS
during the run over the RSS before it (VmHWM reset through ``/proc/self/clear_refs``). Also printed:
the largest batch (frames × cond/uncond) one UNet call saw, which is what bounds activation memory.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup(comfy_dir: str):
    sys.path.insert(0, str(ROOT))
    import devkit.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)

    sys.path.insert(0, comfy_dir)
    import torch
    from comfy.cli_args import args

    if not torch.cuda.is_available():
        args.cpu = True


def _status_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _case(name, options, comfy_dir, queue):
    _setup(comfy_dir)
    import comfy.samplers
    import torch

    from videocrafter_suite.bridge.checkpoint import build_model, schedule_from_checkpoint
    from videocrafter_suite.bridge.videoldm import extend_by_prediction, tiled_redenoise
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec
    from videocrafter_suite.models.checkpoints.layout import VARIANTS

    variant = VARIANTS["vc2_t2v_512"]
    state = make_tiny_state_dict(tiny_spec("vc2_t2v_512", seed=0))
    model = build_model(state, variant, schedule_from_checkpoint(state, variant))
    width = next(v.shape[1] for k, v in state.items() if k.endswith("attn2.to_k.weight"))
    generator = torch.Generator().manual_seed(0)
    text, empty = torch.randn(1, 77, width, generator=generator), torch.randn(1, 77, width, generator=generator)
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds([[text, {"fps": 28}]], [[empty, {"fps": 28}]])
    guider.set_cfg(4.0)
    sampler = comfy.samplers.sampler_object("euler")
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal",
                                             options["steps"]).cpu()

    class Noise:
        seed = 0

        def generate_noise(self, latent):
            return torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(self.seed))

    batches = []
    model.set_model_unet_function_wrapper(lambda apply, a: batches.append(tuple(a["input"].shape)) or
                                          apply(a["input"], a["timestep"], **a["c"]))
    size = options["size"]

    def run():
        if name == "prediction, 4 segments of 16 (context 4)":
            return extend_by_prediction(guider, sampler, sigmas, Noise(), torch.randn(16, 4, size, size), 4, 16, 4,
                                        "hold")
        if name == "one 64-frame clip":
            latent = torch.zeros(64, 4, size, size)
            return guider.sample(Noise().generate_noise({"samples": latent}), latent, sampler, sigmas,
                                 disable_pbar=True, seed=0)
        tile = size if name.startswith("tiled") else 2 * size
        return tiled_redenoise(guider, sampler, sigmas, Noise(), {"samples": torch.randn(16, 4, 2 * size, 2 * size)},
                               tile, tile, size // 4)

    with torch.inference_mode():
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            start = time.perf_counter()
            out = run()
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            Path("/proc/self/clear_refs").write_text("5")
            base = _status_mib("VmRSS")
            start = time.perf_counter()
            out = run()
            peak = _status_mib("VmHWM") - base
    queue.put({"case": name, "frames": out.shape[0], "latent": f"{out.shape[-1]}x{out.shape[-2]}",
               "peak_mib": peak,
               "max_unet_input": "x".join(map(str, max(batches, key=lambda b: b[0] * b[2] * b[3]))), "seconds": time.perf_counter() - start})


CASES = ("prediction, 4 segments of 16 (context 4)", "one 64-frame clip", "tiled (tile = half the side, overlap 1/4 tile)",
         "untiled")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="latent side of the prediction clip (tiles: 2x)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--comfy", default=None, help="ComfyUI folder (default: scripts/host.py paths)")
    args = parser.parse_args(argv)
    comfy_dir = args.comfy or json.loads(subprocess.check_output(
        [sys.executable, str(ROOT / "scripts" / "host.py"), "paths"]))["comfyui"]
    ctx = mp.get_context("spawn")
    results = []
    for name in CASES:
        queue = ctx.Queue()
        proc = ctx.Process(target=_case, args=(name, vars(args), comfy_dir, queue))
        proc.start()
        results.append(queue.get())
        proc.join()
    import torch

    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (peak RSS growth, child process each)"
    print(f"VideoLDM blocks, tiny VC2-layout UNet, euler {args.steps} steps, CFG; {where}")
    print("| case | frames | latent | largest UNet input (batch = frames × cond/uncond) | peak MiB | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['frames']} | {r['latent']} | {r['max_unet_input']} | {r['peak_mib']:.0f} | "
              f"{r['seconds']:.1f} |")
    by = {r["case"]: r for r in results}
    print(f"prediction peak / one-clip peak: {by[CASES[0]]['peak_mib'] / max(by[CASES[1]]['peak_mib'], 1e-9):.2f}; "
          f"tiled peak / untiled peak: {by[CASES[2]]['peak_mib'] / max(by[CASES[3]]['peak_mib'], 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
