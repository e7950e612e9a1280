#!/usr/bin/env python3
"""Install a real ComfyUI, run the example text-to-video workflow on it, and write a video file.

    python3 scripts/demo.py                                   # tiny built-in model, ~2-4 min the first time
    python3 scripts/demo.py --checkpoint ~/models/vc2.ckpt    # a released VideoCrafter2 checkpoint
    python3 scripts/demo.py --workflow videocrafter1_t2v_1024 --checkpoint ~/models/vc1_1024.ckpt

Steps: install/refresh the host (``scripts/host.py install``, cached); without ``--checkpoint``
write a tiny seeded checkpoint in the released layout (see ``devkit/tiny_checkpoint.py``) into
the host's ``models/checkpoints``; start ComfyUI headless; queue the API twin of the example
workflow through ``POST /prompt``; wait for ``/history``; print the video's path; stop the server.
Only the standard library is used here, so the system ``python3`` runs it.
"""
from __future__ import annotations

import argparse
import json
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

TINY_NAME = "videocrafter_tiny_vc2_t2v.safetensors"


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
    target = folder / TINY_NAME
    if not target.exists():
        subprocess.run([str(host.venv_python()), str(ROOT / "scripts" / "make_tiny_checkpoint.py"), str(target),
                        "--variant", "vc2_t2v_512"], check=True, cwd=ROOT)
    return TINY_NAME


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
    return graph


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
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--output-dir", type=Path, help="also copy the video here")
    args = parser.parse_args(argv)
    if not args.checkpoint:  # the tiny model: small frames, few steps, so CPU runs in seconds
        args.width, args.height = args.width or 128, args.height or 80
        args.steps = args.steps or 20

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
        videos = [item for output in entry["outputs"].values() for item in output.get("images", []) + output.get("videos", [])]
        if not videos:
            raise SystemExit(f"the workflow finished without a video output: {entry['outputs']}")
        for item in videos:
            path = host.base_dir() / "output" / item.get("subfolder", "") / item["filename"]
            print(f"[demo] video written: {path} ({time.time() - started:.1f}s)")
            if args.output_dir:
                args.output_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, args.output_dir / path.name)
                print(f"[demo] copied to {args.output_dir / path.name}")
    finally:
        host.stop(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
