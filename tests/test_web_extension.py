"""The web extension's registration, checked on the files (fast lane; the browser tests load it for real).

ComfyUI serves ``web/`` once per registration — ``[tool.comfy] web`` in pyproject.toml under the project
name, ``WEB_DIRECTORY`` under the folder name — and loads every ``.js`` file in it as a module; two
registrations made a pack folder under any other name load each script twice (issue 11).
"""
from __future__ import annotations

import re
import tomllib

import pytest

from tests.pack import PACK_ROOT

WEB = PACK_ROOT / "web"
SCRIPTS = sorted(WEB.rglob("*.js"))


def test_web_folder_is_registered_exactly_once():
    config = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())
    init = (PACK_ROOT / "__init__.py").read_text()
    assert "web" not in config.get("tool", {}).get("comfy", {}), \
        "pyproject [tool.comfy] web registers web/ a second time, under the project name: remove it"
    assert re.search(r'^WEB_DIRECTORY = "\./web"', init, re.MULTILINE)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_script_registers_once_under_a_folder_independent_name(script):
    source = script.read_text()
    assert "app.registerExtension(" not in source or script.name == "register_once.js", \
        f"{script.name}: register through registerOnce (a second copy must not throw)"
    for name in re.findall(r'registerOnce\(\{\s*name:\s*"([^"]+)"', source):
        assert name.startswith("videocrafter-suite."), name
    # served as /extensions/<folder>/<file>: ComfyUI's scripts are two levels up, whatever the folder
    for target in re.findall(r'from "(\.[^"]+)"', source):
        assert target.startswith(("./", "../../scripts/")) and script.parent == WEB, (script.name, target)


def test_extension_names_are_unique():
    names = [name for script in SCRIPTS
             for name in re.findall(r'registerOnce\(\{\s*name:\s*"([^"]+)"', script.read_text())]
    assert len(names) == len(set(names)) >= 3, names
