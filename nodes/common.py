"""Shared constants for node schemas (categories, limits)."""
CATEGORY = "VideoCrafter"
MAX_FRAMES = 256
MAX_SIDE = 4096  # pixels; VC1-1024 itself is 1024x576


class InputError(ValueError):
    """Bad user input, raised before any compute with an actionable message."""
