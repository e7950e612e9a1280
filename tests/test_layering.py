"""The layers of the pack (DESIGN.md): ``models/`` and ``devkit/`` are pure PyTorch and never import ComfyUI;
``models/`` never reaches up into ``bridge/`` or ``nodes/``; only ``bridge/`` and ``nodes/`` touch ComfyUI.

Checked on the source of every file (AST imports, including imports inside functions), so a new file is
covered without editing this test.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.pack import PACK_ROOT

COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "nodes", "node_helpers",
                 "latent_preview", "server", "execution", "comfy_config"}
PURE_ROOMS = ("models", "devkit")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(level, module)`` of every import statement (level > 0 for relative imports)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def files_of(room: str) -> list[Path]:
    return sorted((PACK_ROOT / room).rglob("*.py"))


def resolve(path: Path, level: int, module: str) -> str:
    """The pack-relative dotted name a relative import refers to (``models.unet.attention``)."""
    package = list(path.relative_to(PACK_ROOT).parent.parts)
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *filter(None, [module])])


@pytest.mark.parametrize("room", PURE_ROOMS)
def test_pure_rooms_never_import_comfyui(room):
    offenders = [f"{path.relative_to(PACK_ROOT)}: import {module}"
                 for path in files_of(room) for level, module in imports_of(path)
                 if level == 0 and module.split(".")[0] in COMFY_MODULES]
    assert files_of(room), f"no Python files under {room}/"
    assert not offenders, "pure-PyTorch rooms must not import ComfyUI:\n" + "\n".join(offenders)


def test_models_never_import_the_glue_or_the_nodes():
    offenders = []
    for path in files_of("models"):
        for level, module in imports_of(path):
            target = resolve(path, level, module) if level else module
            if level and target.split(".")[0] in ("bridge", "nodes", "devkit", "tests", "scripts"):
                offenders.append(f"{path.relative_to(PACK_ROOT)}: from {'.' * level}{module}")
            if not level and module.split(".")[0] in ("videocrafter_suite", "tests", "devkit"):
                offenders.append(f"{path.relative_to(PACK_ROOT)}: import {module}")
    assert not offenders, "models/ is the bottom layer:\n" + "\n".join(offenders)


def test_runtime_code_never_imports_dev_support():
    """Nodes and glue run inside ComfyUI; tiny test factories must stay out of their import graph."""
    offenders = [f"{path.relative_to(PACK_ROOT)}: {'.' * level}{module}"
                 for room in ("bridge", "nodes") for path in files_of(room)
                 for level, module in imports_of(path)
                 if (resolve(path, level, module) if level else module).split(".")[0] in ("devkit", "tests")]
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_a_violation(tmp_path):
    """The AST scan is real: a file that imports comfy inside a function is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import comfy.model_management\n    from .x import y\n")
    assert (0, "comfy.model_management") in imports_of(sample) and (1, "x") in imports_of(sample)
