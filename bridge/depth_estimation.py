"""Depth estimation inside ComfyUI: the ``models/depth`` folder, DEPTH_MODEL loading, chunked estimation.

Two kinds of estimator are loaded from ``ComfyUI/models/depth``:

* **MiDaS v3 DPT** files (``dpt_hybrid-midas-501f0c75.pt`` — what Make-Your-Video conditions on —
  and ``dpt_large-midas-2f21e586.pt`` — the estimator Gen-1 used), or a ``.safetensors`` of them,
  read weights-only; hybrid vs large is detected from the keys (``models.depth.dpt``). Frames run
  exactly as Make-Your-Video's ``get_batch_depth`` runs them (``models.depth.dpt_run``).
* a **transformers** folder (``config.json`` + weights + ``preprocessor_config.json``), e.g. Depth
  Anything V2 or DPT checkpoints from the Hugging Face hub downloaded by the user: loaded with
  ``AutoModelForDepthEstimation`` / ``AutoImageProcessor`` from the local folder only
  (``local_files_only``, safetensors preferred), preprocessed by its own image processor.

Every estimator returns relative inverse depth (larger = nearer); metric-depth configs are negated
so that near is still larger. The depth IMAGE is that map resized (bicubic) to the requested size
and min-max normalised per frame to [0, 1] — near = bright, three equal channels — the convention
depth nodes of other packs use too, so any of them can feed structure conditioning.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import comfy.utils
import folder_paths
import torch

from ..models.checkpoints.layout import CheckpointLayoutError
from ..models.checkpoints.safe_io import read_weights
from ..models.depth.dpt import NET_SIZE, DPTDepthModel, DPTLayoutError, detect_backbone
from ..models.depth.dpt_run import depth_to_unit_range, estimate_inverse_depth

FOLDER = "depth"
TRANSFORMERS_CONFIG = "config.json"
#: Prefixes under which a MiDaS state dict is found in other files (Make-Your-Video's full checkpoint
#: stores it as ``depth_stage_model.model.*``, README §3).
KNOWN_PREFIXES = ("depth_stage_model.model.", "_forward_module.depth_stage_model.model.", "module.", "model.")


class DepthModelError(ValueError):
    """A depth model file/folder that cannot be used; the message says what is wrong and what to do."""


def register_folder() -> None:
    """``models/depth`` (also reachable through ``extra_model_paths.yaml`` under the name ``depth``)."""
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))


def transformers_folders() -> list[str]:
    """Sub-folders of every ``depth`` model path that hold a ``config.json`` (listed as ``name/``)."""
    found = []
    for root in folder_paths.get_folder_paths(FOLDER):
        if not os.path.isdir(root):
            continue
        for current, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if TRANSFORMERS_CONFIG in files and current != root:
                found.append(os.path.relpath(current, root).replace(os.sep, "/") + "/")
                dirs[:] = []
    return sorted(set(found))


def model_choices() -> list[str]:
    """MiDaS weight files plus transformers folders (files inside those folders are not listed twice)."""
    folders = transformers_folders()
    files = [f for f in folder_paths.get_filename_list(FOLDER)
             if not any(f.replace(os.sep, "/").startswith(d) for d in folders)]
    return sorted(files) + folders


def _resolve_folder(name: str) -> str:
    for root in folder_paths.get_folder_paths(FOLDER):
        candidate = os.path.join(root, name.rstrip("/"))
        if os.path.isfile(os.path.join(candidate, TRANSFORMERS_CONFIG)):
            return candidate
    raise DepthModelError(f"depth model folder '{name}' (with a config.json) was not found under models/{FOLDER}")


def _midas_state(payload: dict) -> dict[str, torch.Tensor]:
    """The DPT keys of a loaded file: plain MiDaS state dict, ``{'model': ..., 'optimizer': ...}``
    (``base_model.py:12-13``), or a Make-Your-Video checkpoint's ``depth_stage_model.model.*`` (Lightning
    ``state_dict`` or DeepSpeed ``module`` with ``_forward_module.``)."""
    if isinstance(payload.get("model"), dict) and "optimizer" in payload:
        payload = payload["model"]
    for wrapper in ("state_dict", "module"):  # a Make-Your-Video checkpoint: Lightning or DeepSpeed layout
        if isinstance(payload.get(wrapper), dict):
            payload = payload[wrapper]
    state = {k: v for k, v in payload.items() if isinstance(v, torch.Tensor)}
    for prefix in ("",) + KNOWN_PREFIXES:
        candidate = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if "scratch.layer1_rn.weight" in candidate:
            return candidate
    return state


@dataclass
class DepthModel:
    """The DEPTH_MODEL value: a patcher-managed network plus how to run it."""

    kind: str                    # "midas" or "transformers"
    name: str
    patcher: comfy.model_patcher.ModelPatcher
    description: str
    processor: object = None     # transformers image processor
    metric: bool = False         # transformers metric-depth head: near = small

    @property
    def network(self) -> torch.nn.Module:
        return self.patcher.model.network

    def inverse_depth(self, frames: torch.Tensor, net_size: int = NET_SIZE) -> torch.Tensor:
        """IMAGE frames ``[N, H, W, 3]`` in [0, 1] → relative inverse depth ``[N, 1, h, w]`` (near = large).

        MiDaS runs at ``net_size``² (384 = Make-Your-Video and the models' training size; MiDaS
        accepts any multiple of 32, the position table is resized); transformers models use their
        own image processor's size."""
        device = self.patcher.load_device
        dtype = next(self.network.parameters()).dtype
        x = frames.movedim(-1, 1).to(device=device, dtype=dtype)
        if self.kind == "midas":
            # [0, 1] → [-1, 1]: inference_videorerendering.py:86-87 (= MiDaS NormalizeImage(0.5, 0.5)).
            return estimate_inverse_depth(self.network, (x - 0.5) * 2.0, net_size).float()
        inputs = self.processor(images=list(x.float().cpu()), return_tensors="pt", do_rescale=False)
        with torch.no_grad():
            depth = self.network(pixel_values=inputs["pixel_values"].to(device=device, dtype=dtype)).predicted_depth
        depth = depth.float().unsqueeze(1)
        return -depth if self.metric else depth


def load_midas(path: str, name: str | None = None) -> DepthModel:
    """A MiDaS v3 DPT file (``.pt``/``.pth`` weights-only, or ``.safetensors``)."""
    name = name or os.path.basename(path)
    try:
        payload = read_weights(path, "MiDaS depth model")
    except CheckpointLayoutError as error:  # code pickles refused, truncated/corrupt files: one message each
        raise DepthModelError(f"{error} Expected the released MiDaS v3 file (dpt_hybrid-midas-501f0c75.pt / "
                              "dpt_large-midas-2f21e586.pt) or a .safetensors of it.") from error
    state = _midas_state(payload)
    try:
        backbone = detect_backbone(state)
        network = DPTDepthModel.from_state_dict(state).eval()
    except DPTLayoutError as error:
        raise DepthModelError(f"'{name}' is not a MiDaS v3 DPT-Hybrid/DPT-Large state dict: {error}") from error
    kind = "DPT-Hybrid" if backbone == "vitb_rn50_384" else "DPT-Large"
    logging.info("VideoCrafter depth: loaded %s (%s) from %s", kind, backbone, name)
    return DepthModel("midas", name, _patcher(network), f"MiDaS v3 {kind}")


def load_transformers(folder: str, name: str | None = None) -> DepthModel:
    """A local transformers depth-estimation folder (config.json + weights + preprocessor_config.json)."""
    name = name or os.path.basename(folder.rstrip("/"))
    try:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation
    except ImportError as error:
        raise DepthModelError("the 'transformers' package is needed for this depth model folder") from error
    try:
        network = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True,
                                                              use_safetensors=_has_safetensors(folder)).eval()
        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # missing files, unknown model type, corrupt weights
        raise DepthModelError(
            f"could not load depth model folder '{name}' with transformers: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:300]}. The folder needs config.json, the weights (model.safetensors) "
            "and preprocessor_config.json of a depth-estimation model (e.g. Depth Anything V2, DPT).") from error
    metric = getattr(network.config, "depth_estimation_type", "relative") == "metric"
    description = f"transformers {type(network).__name__}" + (" (metric)" if metric else "")
    return DepthModel("transformers", name, _patcher(network), description, processor=processor, metric=metric)


def _has_safetensors(folder: str) -> bool:
    return any(f.endswith(".safetensors") for f in os.listdir(folder))


class _Holder(torch.nn.Module):
    """Plain container the ModelPatcher manages (it sets attributes such as ``device`` on its model,
    which transformers models expose as read-only properties)."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network


def _patcher(network: torch.nn.Module) -> comfy.model_patcher.ModelPatcher:
    offload = comfy.model_management.unet_offload_device()
    return comfy.model_patcher.ModelPatcher(_Holder(network.to(offload)),
                                            load_device=comfy.model_management.get_torch_device(),
                                            offload_device=offload)


def load_depth_model(choice: str) -> DepthModel:
    """Load a ``model_choices()`` entry: ``name/`` = transformers folder, anything else a MiDaS file."""
    if choice.endswith("/"):
        return load_transformers(_resolve_folder(choice), choice)
    return load_midas(folder_paths.get_full_path_or_raise(FOLDER, choice), choice)


def estimate_depth_images(model: DepthModel, images: torch.Tensor, *, chunk_size: int = 4,
                          model_grid: bool = False, net_size: int = NET_SIZE) -> torch.Tensor:
    """IMAGE ``[T, H, W, C]`` → depth IMAGE ``[T, h, w, 3]`` in [0, 1], near = bright, per frame.

    The size is the input's ``(H, W)``, or with ``model_grid`` the estimator's own output grid
    (``net_size``² for MiDaS: no resize at all after the DPT, Make-Your-Video's step-3 map). Frames run in chunks of ``chunk_size``, one
    progress-bar step per chunk; an interrupt is honoured between chunks.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be an IMAGE batch [frames, height, width, channels], got "
                         f"{tuple(getattr(images, 'shape', ()))}")
    if images.shape[-1] == 1:
        images = images.expand(-1, -1, -1, 3)
    images = images[..., :3]
    if net_size < 32 or net_size % 32:
        raise ValueError(f"resolution {net_size} must be a positive multiple of 32 (MiDaS's DPT needs it)")
    size = None if model_grid else tuple(images.shape[1:3])
    comfy.model_management.load_model_gpu(model.patcher)
    chunks = range(0, images.shape[0], max(int(chunk_size), 1))
    progress = comfy.utils.ProgressBar(len(chunks))
    out = []
    for start in chunks:
        comfy.model_management.throw_exception_if_processing_interrupted()
        frames = images[start:start + max(int(chunk_size), 1)]
        depth = depth_to_unit_range(model.inverse_depth(frames, net_size), size)
        out.append(depth.to(comfy.model_management.intermediate_device(), torch.float32))
        progress.update(1)
    depth = torch.cat(out, dim=0).clamp_(0.0, 1.0)
    return depth.movedim(1, -1).expand(-1, -1, -1, 3).contiguous()

