"""One vocabulary: every CONDITIONING / transformer_options key is defined in ``bridge/vocabulary.py`` only.

A key spelled as a bare string in a second place would silently turn style or I2V conditioning into a no-op
after a rename, so the glue and the nodes must import the names.
"""
from __future__ import annotations

import ast
import re

from tests.pack import PACK_ROOT

KEY = re.compile(r"^videocrafter_[a-z0-9_]+$")
VOCABULARY = PACK_ROOT / "bridge" / "vocabulary.py"


def bare_keys(path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [f"{path.relative_to(PACK_ROOT)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and KEY.match(node.value)]


def test_keys_are_spelled_only_in_the_vocabulary():
    sources = [p for room in ("bridge", "nodes") for p in sorted((PACK_ROOT / room).rglob("*.py")) if p != VOCABULARY]
    offenders = [line for path in sources for line in bare_keys(path)]
    assert not offenders, "import these keys from bridge/vocabulary.py:\n" + "\n".join(offenders)


def test_every_conditioning_key_maps_to_a_unet_input():
    from videocrafter_suite.bridge import vocabulary as V

    assert set(V.CONDITION_KEYS) <= set(V.UNET_INPUT_OF)
    assert len(set(V.UNET_INPUT_OF.values())) == len(V.UNET_INPUT_OF), "two keys feed the same UNet input"
    assert bare_keys(VOCABULARY), "the scan finds the definitions themselves (it is not vacuous)"
