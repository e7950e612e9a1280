"""Loader nodes: the monolithic VideoCrafter checkpoint and its safe conversion."""
from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..bridge.api import io
from ..bridge.checkpoint import load_videocrafter_checkpoint
from ..models.checkpoints.safe_io import convert_checkpoint_file
from .common import CATEGORY
from .validation import checked_inputs


@checked_inputs
class VideoCrafterCheckpointLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterCheckpointLoader",
            display_name="Load VideoCrafter Checkpoint",
            category=f"{CATEGORY}/loaders",
            description="Loads a released VideoCrafter1/2 checkpoint (model.ckpt or a .safetensors of it) as a "
                        "native MODEL, the OpenCLIP-H text encoder as CLIP, and the SD VAE; a VideoCrafter1 I2V "
                        "checkpoint also gives its OpenCLIP ViT-H image encoder as CLIP_VISION (None otherwise). "
                        "The variant (VC2-512, VC1-1024, VC1-512, VC1-I2V-512, Make-Your-Video depth 256) is "
                        "detected from the weights, never from the file name. videocrafter_demo_vc2_shapes.safetensors "
                        "(copied by scripts/demo.py) is the pack's DEMONSTRATION model: a tiny VC2 trained on moving "
                        "shapes at 64x64, for the demo and quality tests only.",
            inputs=[io.Combo.Input("ckpt_name", options=folder_paths.get_filename_list("checkpoints"),
                                   tooltip="A VideoCrafter checkpoint in models/checkpoints. .ckpt files are read "
                                           "weights-only (pickled code is refused); .safetensors is preferred.")],
            outputs=[io.Model.Output(tooltip="The 3D UNet as a native ComfyUI MODEL (works with every core sampler)."),
                     io.Clip.Output(tooltip="OpenCLIP ViT-H text encoder (penultimate layer + final norm, as the original)."),
                     io.Vae.Output(tooltip="The SD KL-VAE; decodes batch-as-frames latents frame by frame."),
                     io.ClipVision.Output(tooltip="I2V checkpoints only: the OpenCLIP ViT-H/14 image encoder "
                                                  "(embedder.model.visual.*) as core CLIP_VISION; None for "
                                                  "text-to-video checkpoints.")],
        )

    @classmethod
    def execute(cls, ckpt_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)
        loaded = load_videocrafter_checkpoint(path, embedding_directory=folder_paths.get_folder_paths("embeddings"))
        return io.NodeOutput(loaded.model, loaded.clip, loaded.vae, loaded.clip_vision)


@checked_inputs
class VideoCrafterConvertCheckpoint(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterConvertCheckpoint",
            display_name="Convert VideoCrafter Checkpoint to safetensors",
            category=f"{CATEGORY}/loaders",
            description="Writes a .safetensors copy of a .ckpt checkpoint next to it (weights only, read safely). "
                        "Loading .safetensors is faster and never involves pickle.",
            inputs=[io.Combo.Input("ckpt_name", options=folder_paths.get_filename_list("checkpoints"),
                                   tooltip="The .ckpt/.pth checkpoint to convert."),
                    io.Boolean.Input("overwrite", default=False,
                                     tooltip="Replace an existing .safetensors file of the same name.")],
            outputs=[io.String.Output(display_name="safetensors_name",
                                      tooltip="File name of the converted checkpoint in models/checkpoints.")],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, ckpt_name, overwrite):
        """ComfyUI's cache key: the state of the file read AND the file written, so a deleted or changed
        output (or a replaced source) runs the conversion again instead of answering from the cache.

        It is computed before the node runs, so "output absent" must never equal itself (NaN, ComfyUI's
        "always run" idiom): otherwise the run that created the file and a run after its deletion would
        both have seen it absent and share one cache entry."""
        path = folder_paths.get_full_path("checkpoints", ckpt_name)
        written = file_state(Path(path).with_suffix(".safetensors")) if path is not None else None
        if written is None:
            return float("nan")  # no output yet (or no source: execute says so): always run
        return (file_state(path), written, bool(overwrite))

    @classmethod
    def execute(cls, ckpt_name, overwrite) -> io.NodeOutput:
        path = Path(folder_paths.get_full_path_or_raise("checkpoints", ckpt_name))
        name = ckpt_name.rsplit(".", 1)[0] + ".safetensors"
        destination = path.with_suffix(".safetensors")
        if not overwrite and destination.exists() and destination.stat().st_mtime_ns >= path.stat().st_mtime_ns:
            return io.NodeOutput(name, ui={"text": [f"up to date: {destination} (newer than {path.name})"]})
        written = convert_checkpoint_file(path, overwrite=overwrite)
        return io.NodeOutput(name, ui={"text": [f"wrote {written}"]})


def file_state(path) -> tuple | None:
    """(modification time in ns, size) of ``path``, None when it does not exist."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_size


NODES = [VideoCrafterCheckpointLoader, VideoCrafterConvertCheckpoint]
