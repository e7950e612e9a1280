"""The pack as ``videocrafter_suite`` for the tests (see ``devkit/pack.py``, shared with scripts and benchmarks)."""
from __future__ import annotations

from devkit.pack import PACK_NAME, PACK_ROOT, REFERENCE_DIR, import_pack  # noqa: F401

import_pack()
