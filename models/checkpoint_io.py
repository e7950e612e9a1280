"""Safe reading of checkpoint files and their conversion to ``.safetensors``.

Never unpickles code: ``.ckpt``/``.pth`` go through ``torch.load(weights_only=True)``, which
only rebuilds tensors and plain containers and raises on anything else (a malicious pickle is
refused, not executed). Writes are atomic (temporary file + rename), so a failed conversion
leaves no partial file behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .checkpoint_layout import CheckpointLayoutError, unwrap_state_dict

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Flat ``{key: tensor}`` of a checkpoint file, read safely (see module docstring)."""
    path = str(path)
    try:
        if path.lower().endswith(SAFETENSORS_SUFFIXES):
            payload = load_file(path)
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, safetensors errors, zip errors: one clear message
        raise CheckpointLayoutError(
            f"could not read '{path}' as weights: {type(error).__name__}: {str(error).splitlines()[0][:300]}. "
            "Only .safetensors and weights-only .ckpt/.pth files are accepted; a pickle that runs code is refused."
        ) from error
    if not isinstance(payload, dict):
        raise CheckpointLayoutError(f"'{path}' holds a {type(payload).__name__}, not a state dict")
    state = unwrap_state_dict(payload)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def convert_checkpoint_file(source: str | os.PathLike, destination: str | os.PathLike | None = None, *,
                            overwrite: bool = False) -> Path:
    """Write ``source`` as ``.safetensors`` (default: same folder and stem); returns the written path."""
    source = Path(source)
    destination = Path(destination) if destination is not None else source.with_suffix(".safetensors")
    if destination.resolve() == source.resolve():
        raise CheckpointLayoutError(f"'{source.name}' is already a .safetensors file")
    if destination.exists() and not overwrite:
        raise CheckpointLayoutError(f"'{destination}' exists; pass overwrite=True to replace it")
    state = read_checkpoint(source)
    if not state:
        raise CheckpointLayoutError(f"'{source}' contains no tensors")
    # safetensors refuses shared storage (e.g. tied weights): store each tensor on its own.
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    handle, temporary = tempfile.mkstemp(prefix=".partial-", suffix=".safetensors", dir=destination.parent)
    os.close(handle)
    try:
        save_file(state, temporary, metadata={"format": "pt", "converted_from": source.name})
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination
