#!/usr/bin/env python3
"""Install a real ComfyUI, run the example text-to-video workflow on it, and write a video file.

    python3 scripts/demo.py                                   # the demonstration model, seconds once installed
    python3 scripts/demo.py --prompt "a blue square moving up on a black background"
    python3 scripts/demo.py --checkpoint ~/models/vc2.ckpt    # a released VideoCrafter2 checkpoint
    python3 scripts/demo.py --workflow videocrafter1_t2v_1024 --checkpoint ~/models/vc1_1024.ckpt

Steps: install/refresh the host (``scripts/host.py install``, cached); without ``--checkpoint``
copy the DEMONSTRATION model (``devkit/demo_model/``: a tiny VideoCrafter2 in the released layout,
trained on procedural moving shapes by ``scripts/train_demo_model.py``; see ``docs/demo_model.md``)
into the host's ``models/checkpoints``; start ComfyUI headless; queue the API twin of the example
workflow through ``POST /prompt``; wait for ``/history``; print the video's path, and for the
demonstration model also a frame strip picture; stop the server.
Only the standard library is used here, so the system ``python3`` runs it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import host  # noqa: E402

DEMO_CHECKPOINT = ROOT / "devkit" / "demo_model" / "videocrafter_demo_vc2_shapes.safetensors"
DEMO_PROMPT = "a red circle moving right on a grey background"
DEMO_LABEL = "DEMONSTRATION model (tiny VC2 trained on procedural shapes; not a real VideoCrafter)"
DEMO_SETTINGS = {"width": 64, "height": 64, "frames": 16, "steps": 20, "cfg": 7.5}  # as devkit/demo_recipe.py
FRAMES_NODE = "demo_frames"


def _request(url: str, payload: dict | None = None, timeout: float = 60.0) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise SystemExit(f"ComfyUI refused the request ({error.code}): {error.read().decode()[:2000]}") from error


def prepare_checkpoint(args) -> str:
    folder = host.base_dir() / "models" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    if args.checkpoint:
        source = Path(args.checkpoint).expanduser().resolve()
        if not source.is_file():
            raise SystemExit(f"--checkpoint {source} does not exist")
        link = folder / source.name
        if not link.exists():
            link.symlink_to(source)
        return source.name
    if not DEMO_CHECKPOINT.is_file():
        raise SystemExit(f"the demonstration model is missing: {DEMO_CHECKPOINT} (train it with "
                         "scripts/train_demo_model.py, or pass --checkpoint with a released model)")
    target = folder / DEMO_CHECKPOINT.name
    if not target.is_file() or _digest(target) != _digest(DEMO_CHECKPOINT):
        shutil.copy2(DEMO_CHECKPOINT, target)  # into the host, never the other way round
    print(f"[demo] using the {DEMO_LABEL}: {target}", flush=True)
    return target.name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_prompt(args, ckpt_name: str) -> dict:
    graph = json.loads((ROOT / "workflows" / "api" / f"{args.workflow}.json").read_text())
    for node in graph.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "VideoCrafterCheckpointLoader":
            inputs["ckpt_name"] = ckpt_name
        elif kind == "VideoCrafterEmptyVideoLatent":
            if args.width:
                inputs["width"] = args.width
            if args.height:
                inputs["height"] = args.height
            if args.frames:
                inputs["frames"] = args.frames
        elif kind == "VideoCrafterDDIMSigmas" and args.steps:
            inputs["steps"] = args.steps
        elif kind == "VideoCrafterNoise":
            inputs["noise_seed"] = args.seed
        elif kind == "CLIPTextEncode" and args.prompt and inputs["text"]:
            inputs["text"] = args.prompt
        elif kind == "CFGGuider" and args.cfg:
            inputs["cfg"] = args.cfg
    if args.frame_strip:  # also save the decoded frames, for the strip picture
        decode = next(node_id for node_id, node in graph.items() if node["class_type"] == "VAEDecode")
        graph[FRAMES_NODE] = {"class_type": "SaveImage",
                              "inputs": {"images": [decode, 0], "filename_prefix": "videocrafter/demo_frames"}}
    return graph


def write_frame_strip(entry: dict, args) -> None:
    frames = [host.base_dir() / "output" / item.get("subfolder", "") / item["filename"]
              for item in entry["outputs"].get(FRAMES_NODE, {}).get("images", [])]
    if not frames:
        return
    strip = frames[0].parent / (frames[0].stem.rsplit("_", 2)[0] + "_strip.png")
    subprocess.run([str(host.venv_python()), str(ROOT / "scripts" / "frame_strip.py"), str(strip), *map(str, frames)],
                   check=True, capture_output=True)
    print(f"[demo] frame strip (every 2nd frame): {strip}")
    if args.output_dir:
        shutil.copy2(strip, args.output_dir / "demo_strip.png")
        print(f"[demo] copied to {args.output_dir / 'demo_strip.png'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a VideoCrafter .ckpt/.safetensors (default: the tiny built-in model)")
    parser.add_argument("--workflow", default="videocrafter2_t2v_512", help="name of a workflow in workflows/api/")
    parser.add_argument("--prompt")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--frames", type=int)
    parser.add_argument("--cfg", type=float, help="classifier-free guidance scale")
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--output-dir", type=Path, help="also copy the video here")
    args = parser.parse_args(argv)
    args.frame_strip = not args.checkpoint
    if not args.checkpoint:  # the demonstration model: its own size, prompt style and settings
        for key, value in DEMO_SETTINGS.items():
            setattr(args, key, getattr(args, key) or value)
        args.prompt = args.prompt or DEMO_PROMPT
        # A 64x64 model gains nothing from threads, and on a busy CPU they wait in barriers (measured 5x slower).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        print(f"[demo] prompt: {args.prompt!r}", flush=True)

    host.install()
    ckpt_name = prepare_checkpoint(args)
    host.start(args.port)
    try:
        base = f"http://127.0.0.1:{args.port}"
        reply = _request(f"{base}/prompt", {"prompt": build_prompt(args, ckpt_name), "client_id": str(uuid.uuid4())})
        prompt_id = reply["prompt_id"]
        print(f"[demo] queued {args.workflow} as {prompt_id}", flush=True)
        started = time.time()
        while True:
            history = _request(f"{base}/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                break
            if time.time() - started > 3600:
                raise SystemExit("the workflow did not finish within an hour")
            time.sleep(1.0)
        status = entry["status"]
        if status.get("status_str") != "success":
            messages = [m for m in status.get("messages", []) if m[0] == "execution_error"]
            raise SystemExit(f"the workflow failed: {json.dumps(messages, indent=1)[:3000]}")
        videos = [item for node_id, output in entry["outputs"].items() if node_id != FRAMES_NODE
                  for item in output.get("images", []) + output.get("videos", [])]
        if not videos:
            raise SystemExit(f"the workflow finished without a video output: {entry['outputs']}")
        for item in videos:
            path = host.base_dir() / "output" / item.get("subfolder", "") / item["filename"]
            print(f"[demo] video written: {path} ({time.time() - started:.1f}s)")
            if args.output_dir:
                args.output_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, args.output_dir / path.name)
                print(f"[demo] copied to {args.output_dir / path.name}")
        write_frame_strip(entry, args)
    finally:
        host.stop(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
