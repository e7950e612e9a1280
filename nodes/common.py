"""Shared constants for node schemas (categories, limits)."""
from ..bridge.model_checks import MAX_FRAMES  # noqa: F401  (one frame cap: the model checks it too)

CATEGORY = "VideoCrafter"
MAX_SIDE = 4096  # pixels; VC1-1024 itself is 1024x576


class InputError(ValueError):
    """Bad user input, raised before any compute with an actionable message."""
