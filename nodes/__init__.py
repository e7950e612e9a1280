"""ComfyUI node classes of the pack: thin and declarative, one file per family.

The math lives in ``models/``; ComfyUI internals in ``bridge/``.
"""
from __future__ import annotations

from ..bridge.api import ComfyExtension, io
from . import conditioning, depth_estimation, guidance, image_to_video, latent_video, loaders, sampling, style


def all_node_classes() -> list[type[io.ComfyNode]]:
    """Every node the pack registers, in menu order."""
    return [*loaders.NODES, *conditioning.NODES, *image_to_video.NODES, *latent_video.NODES, *sampling.NODES,
            *style.NODES, *guidance.NODES, *depth_estimation.NODES]


class VideoCrafterSuiteExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return all_node_classes()
