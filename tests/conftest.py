"""pytest configuration shared by every test of the pack.

What it provides and why:

* ``import tests.pack`` first, so the repo is importable as the package ``videocrafter_suite``
  (the clone's folder name is arbitrary and may not be an identifier).
* ``comfy_path`` puts ComfyUI's folder on ``sys.path`` for in-process tests of node classes —
  only when a test asks for it, so pure-torch tests never import ComfyUI.
* ``comfy_server``: ONE real headless ComfyUI for the whole session (startup costs 10-40 s).
  Tests that use it are marked ``server`` (automatically, too); ``--no-server`` or
  ``VIDEOCRAFTER_NO_SERVER=1`` skips them.
* ``reference_dir``: the golden fixtures in ``../shared/reference``.

Import helpers in test modules absolutely (``from tests.server import ComfyServer``), never
relatively: pytest names test modules after the clone's folder (``main.tests.test_x``), and a
relative import would load a second copy of the helper module.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import tests.pack  # noqa: F401  (first: registers the repo as ``videocrafter_suite``)
from tests.pack import PACK_ROOT, REFERENCE_DIR

NO_SERVER_ENV = "VIDEOCRAFTER_NO_SERVER"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-server", action="store_true", default=False,
                     help=f"skip tests that need a real ComfyUI server (or set {NO_SERVER_ENV}=1)")


def _server_disabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--no-server")) or os.environ.get(NO_SERVER_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses ``comfy_server`` as ``server``; skip them all when disabled."""
    skip = pytest.mark.skip(reason=f"ComfyUI server tests disabled (--no-server / {NO_SERVER_ENV})")
    for item in items:
        if "comfy_server" in getattr(item, "fixturenames", ()) and item.get_closest_marker("server") is None:
            item.add_marker(pytest.mark.server)
        if item.get_closest_marker("server") is not None and _server_disabled(config):
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tests.server.harness import host

    return [f"videocrafter-suite: pack {PACK_ROOT}, ComfyUI {host.comfy_dir()}, reference {REFERENCE_DIR}"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on a loaded 2-core machine two threads mostly wait in barriers (10x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` beside the repo: golden tensors made by the original code."""
    if not REFERENCE_DIR.is_dir():
        pytest.fail(f"golden fixtures missing: {REFERENCE_DIR} (the repo expects ../shared/reference beside it)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def comfy_path() -> Path:
    """Make ``import comfy``, ``comfy_api``, ``folder_paths`` ... work in this process.

    ComfyUI's folder goes to the *front* of ``sys.path``: the repo root is on it too and has a
    ``nodes`` package of its own, which must not shadow ComfyUI's ``nodes.py``. ComfyUI's own
    ``tests`` package cannot shadow ours, which is already imported. Without a usable GPU,
    ComfyUI is told ``--cpu`` before ``comfy.model_management`` is first imported.
    """
    from tests.server.harness import host

    path = host.comfy_dir()
    if not (path / "main.py").is_file():
        pytest.fail(f"ComfyUI is not installed at {path}: run `python3 scripts/host.py install` (scripts/test.sh does)")
    if sys.path[:1] != [str(path)]:
        sys.path.insert(0, str(path))
    import torch
    from comfy.cli_args import args  # parses [] (not pytest's argv): comfy.options.args_parsing is off

    if not torch.cuda.is_available():
        args.cpu = True
    return path


@pytest.fixture(scope="session")
def comfy(comfy_path):
    """ComfyUI imported in this process (``comfy.samplers``, ``model_management``, ``clip_vision`` ...) with the
    pack's glue loaded: the in-process fixture every node/bridge test shares. Returns the ``comfy`` package."""
    import comfy.clip_vision  # noqa: F401
    import comfy.model_management  # noqa: F401
    import comfy.samplers  # noqa: F401

    from videocrafter_suite.bridge import checkpoint, ddim, guiders, model, style  # noqa: F401
    return comfy


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Factory: ``tiny_checkpoint(variant, seed=0, folder=None, name=None, as_ckpt=False, **spec) -> Path``.

    Writes a tiny seeded checkpoint in the exact released layout (``devkit/tiny_checkpoint.py``) into
    ``folder`` (default: a session temp folder); state dicts are built once per spec for the whole session."""
    from videocrafter_suite.devkit.tiny_checkpoint import tiny_spec, write_tiny_checkpoint

    default = tmp_path_factory.mktemp("tiny-checkpoints")

    def make(variant="vc2_t2v_512", seed=0, folder=None, name=None, as_ckpt=False, **overrides):
        spec = tiny_spec(variant, seed=seed, **overrides)
        suffix = ".ckpt" if as_ckpt else ".safetensors"
        name = name or f"tiny_{variant}_s{seed}{''.join(f'_{k}{v}' for k, v in sorted(overrides.items()))}{suffix}"
        path = Path(folder or default) / name
        if not path.exists():
            write_tiny_checkpoint(path, spec, as_ckpt=as_ckpt)
        return path

    return make


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """One real ComfyUI for the session, with its own base dir under pytest's tmp folder.

    A start failure is raised once with the log's tail; pytest then reports the same error for
    every test that needs the server instead of retrying a 300 s start each time.
    """
    if _server_disabled(request.config):
        pytest.skip(f"ComfyUI server tests disabled (--no-server / {NO_SERVER_ENV})")
    from tests.server.harness import ComfyServer

    base = tmp_path_factory.mktemp("comfy-base")
    with ComfyServer(base=base, startup_timeout=300.0) as server:
        yield server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the tail of ComfyUI's log to failed server tests: the server side is often the story."""
    report = yield
    server = getattr(item, "funcargs", {}).get("comfy_server")
    if report.failed and server is not None:
        report.sections.append(("ComfyUI log (last 60 lines)", server.log_tail(60)))
    return report
