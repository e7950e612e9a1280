"""The V3 node API, pinned to one stable version.

Importing ``comfy_api.latest`` would change under our feet with every ComfyUI release; a pinned
version keeps the node schemas stable (ComfyUI ≥ 0.3.48 ships ``v0_0_2``).
"""
from comfy_api.v0_0_2 import ComfyExtension, io, ui  # noqa: F401

__all__ = ["ComfyExtension", "io", "ui"]
