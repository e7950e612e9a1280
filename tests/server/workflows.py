"""Example API workflows, shrunk for the tiny checkpoints the e2e tests run on.

Every e2e test starts from the committed API twin (``workflows/api/NAME.json``) and changes only
what a tiny CPU run needs: the checkpoint name, the frame size, frames, steps, seed and the
output prefix. One helper does that, so all tests exercise the same graphs the users load.
"""
from __future__ import annotations

import json

import tests.pack

API_WORKFLOWS = tests.pack.PACK_ROOT / "workflows" / "api"
TINY_SIZE = {"width": 64, "height": 48}  # latent 8x6: the tiny UNet takes a fraction of a second per step
STEP_NODES = ("VideoCrafterDDIMSigmas", "VideoCrafterStyleCrafterSampler")
SAVE_NODES = ("SaveVideo", "SaveImage")


def load_api_workflow(name: str) -> dict:
    return json.loads((API_WORKFLOWS / f"{name}.json").read_text())


def node_of(graph: dict, class_type: str) -> str:
    """Id of the (first) node of ``class_type``."""
    return next(key for key, node in graph.items() if node["class_type"] == class_type)


def shrink_for_tiny(graph: dict, *, prefix: str, ckpt_name: str | None = None, steps: int | None = None,
                    frames: int | None = None, seed: int | None = None, size: dict = TINY_SIZE) -> dict:
    """Edit ``graph`` in place for a tiny run; single-image latents (frames 1) stay single images."""
    for node in graph.values():
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "VideoCrafterCheckpointLoader" and ckpt_name is not None:
            inputs["ckpt_name"] = ckpt_name
        elif kind == "VideoCrafterEmptyVideoLatent":
            inputs.update(size)
            if frames is not None and inputs["frames"] != 1:
                inputs["frames"] = frames
        elif kind in STEP_NODES and steps is not None:
            inputs["steps"] = steps
        elif kind == "VideoCrafterNoise" and seed is not None:
            inputs["noise_seed"] = seed
        elif kind in SAVE_NODES:
            inputs["filename_prefix"] = prefix
    return graph
