"""Import the pack under a stable Python name without ComfyUI (for tests, scripts and benchmarks).

The pack's folder is named by whoever clones it (``custom_nodes/videocrafter-suite``, a zip download's
``videocrafter-suite-main``, a CI checkout, ...), so it is not importable by name. ComfyUI loads it with
``importlib.util.spec_from_file_location``; this module does the same, under the name ``videocrafter_suite``.
Importing the package runs nothing of ComfyUI: ``__init__.py`` only declares the entry point, and ``models/``
is pure PyTorch. Standard library only, no relative import: scripts import it as ``devkit.pack`` with the
repo root on ``sys.path``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_NAME = "videocrafter_suite"
REFERENCE_DIR = PACK_ROOT.parent / "shared" / "reference"


def import_pack():
    """Return the pack as the package ``videocrafter_suite`` (idempotent)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, PACK_ROOT / "__init__.py", submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


import_pack()
