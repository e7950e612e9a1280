"""ComfyUI node classes of the pack: thin and declarative, one file per family.

The math lives in ``models/``; ComfyUI internals in ``bridge/``.
"""
from __future__ import annotations

from ..bridge import preview
from ..bridge.api import ComfyExtension, io
from . import conditioning, depth_estimation, guidance, image_to_video, latent_video, loaders, longvideo, sampling, structure, style, videoldm


def all_node_classes() -> list[type[io.ComfyNode]]:
    """Every node the pack registers, in menu order."""
    return [
        *loaders.NODES,
        *depth_estimation.NODES,
        *conditioning.NODES,
        *image_to_video.NODES,
        *structure.NODES,
        *latent_video.NODES,
        *sampling.NODES,
        *style.NODES,
        *guidance.NODES,
        *videoldm.NODES,
        *longvideo.NODES,
    ]


class VideoCrafterSuiteExtension(ComfyExtension):
    async def on_load(self) -> None:  # called by newer ComfyUI; 0.3.75 only calls get_node_list
        preview.install()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        preview.install()  # animated clip previews (idempotent)
        return all_node_classes()
