"""StyleCrafter's two extra checkpoints: their key layouts, and where they plug into the UNet.

StyleCrafter (GongyeLiu/StyleCrafter@c2a2e27) runs on the VideoCrafter1 T2V 512 base and loads two
more files (reference README §2, ``scripts/evaluation/style_inference.py:205-213``):

* ``adapter_v1.pth`` = ``StyleAdapterDualAttnAS.state_dict()`` (``lvdm/models/ddpm3d_cond.py:84-90``):
  ``image_context_model.*`` (StyleTransformer), ``scale_predictor.*`` (ScaleEncoder) and
  ``kv_attn_layers.<processor path with '.'→'_'>.{to_k_style,to_v_style,norm_style}.*``, one entry
  per dual cross-attention layer.
* ``temporal_v1_1.pth`` = a **nested** dict ``{TemporalTransformer path: its state_dict}`` with 17
  entries (``ddpm3d_cond.py:125-141``): ``init_attn.0``, ``input_blocks.{1,2,4,5,7,8}.2``,
  ``middle_block.2``, ``output_blocks.{3..11}.2``; each is loaded strictly.

The dual cross-attention layers are the ``attn2`` of every BasicTransformerBlock inside a
SpatialTransformer, in the original's registration order (``register_attn_processor``,
SC ``lvdm/modules/attention.py:549-582``: a depth-first walk over ``unet.named_children()``, i.e.
input_blocks by index, then middle_block, then output_blocks). ``layer_idx`` — the column of the
per-layer scale factors a layer reads — is the position in that order.

Everything here works on key→shape mappings, so it runs on the full-size manifests without memory.
Pure Python, no ComfyUI import.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from ..checkpoints.layout import CheckpointLayoutError, shape_of

ADAPTER_PREFIX = "adapter."
KV_LAYERS = "kv_attn_layers."
PROCESSOR_SUFFIX = ".processor"
PROCESSOR_PARAMS = ("to_k_style.weight", "to_v_style.weight", "norm_style.weight", "norm_style.bias")
#: Released StyleTransformer / ScaleEncoder head counts (configs/inference_video_320_512.yaml).
#: Shapes cannot tell the head split, so detection assumes these unless told otherwise.
RELEASED_STYLE_HEADS = 8
RELEASED_SCALE_HEADS = 8

# Registration order of the UNet's children (input_blocks is registered before init_attn).
_BLOCK_ORDER = {"input_blocks": 0, "init_attn": 1, "middle_block": 2, "output_blocks": 3}
# A SpatialTransformer sits at position 1 of its TimestepEmbedSequential (ResBlock, Spatial, Temporal, ...).
_SPATIAL_ATTN2 = re.compile(r"^((?:input_blocks|output_blocks)\.(\d+)\.1|middle_block\.1)"
                            r"\.transformer_blocks\.(\d+)\.attn2\.to_k\.weight$")
_TEMPORAL_ROOT = re.compile(r"^((?:input_blocks|output_blocks)\.\d+\.2|middle_block\.2|init_attn\.0)\.norm\.weight$")


def _order(path: str) -> tuple:
    """Registration order of a UNet module path: block kind, then every numeric index in turn."""
    head = path.split(".", 1)[0]
    return _BLOCK_ORDER.get(head, 4), tuple(int(p) for p in path.split(".") if p.isdigit())


def dual_attention_paths(unet_shapes: Mapping) -> list[str]:
    """``attn2`` paths (relative to the UNet) that get a style processor, in ``layer_idx`` order.

    ``unet_shapes``: UNet key → shape, prefix ``model.diffusion_model.`` already removed. The full
    model has 16 (input_blocks 1,2,4,5,7,8; middle_block; output_blocks 3-11); the tiny fixture 7.
    """
    paths = []
    for key in unet_shapes:
        match = _SPATIAL_ATTN2.match(key)
        if match:
            paths.append(f"{match.group(1)}.transformer_blocks.{match.group(3)}.attn2")
    return sorted(paths, key=_order)


def processor_name(attn2_path: str) -> str:
    """Original processor name: ``input_blocks.1.1.transformer_blocks.0.attn2.processor``."""
    return attn2_path + PROCESSOR_SUFFIX


def kv_module_name(attn2_path: str) -> str:
    """The adapter's ``kv_attn_layers`` key: the processor name with '.' → '_' (SC adapter.py:175)."""
    return processor_name(attn2_path).replace(".", "_")


def temporal_transformer_paths(unet_shapes: Mapping) -> list[str]:
    """TemporalTransformer paths (relative to the UNet) in registration order: the 17 entries of
    ``temporal_v1_1.pth`` for the full model."""
    return sorted((m.group(1) for key in unet_shapes if (m := _TEMPORAL_ROOT.match(key))), key=_order)


def split_adapter_state(state: Mapping) -> dict:
    """The adapter checkpoint's keys relative to the adapter.

    Accepts the released ``adapter_v1.pth`` layout (``image_context_model.*`` ...), the same wrapped
    in ``state_dict`` (the original loader unwraps it, ddpm3d_cond.py:86-88), or keys taken from a
    full StyleCrafter model (``adapter.*``).
    """
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if state and all(k.startswith(ADAPTER_PREFIX) for k in state):
        state = {k[len(ADAPTER_PREFIX):]: v for k, v in state.items()}
    return dict(state)


def is_adapter_state(state: Mapping) -> bool:
    return any(k.startswith("image_context_model.") for k in state) and any(
        k.startswith("scale_predictor.") for k in state)


def describe_keys(state: Mapping) -> str:
    heads = sorted({str(k).split(".", 1)[0] for k in state})
    shown = ", ".join(heads[:6]) + (", ..." if len(heads) > 6 else "")
    return f"{len(state)} top-level entries [{shown}]"


def adapter_dimensions(state: Mapping) -> dict:
    """Sizes of the StyleTransformer and the ScaleEncoder, read from the adapter's shapes.

    Returns ``style_in_dim`` (CLIP token width, 1280 released), ``context_dim`` (1024),
    ``style_tokens`` (8), ``style_layers`` (3), ``scale_tokens`` (16 = number of dual layers),
    ``scale_layers`` (2) and ``scale_hidden`` (32).
    """
    if not is_adapter_state(state):
        raise CheckpointLayoutError(
            f"not a StyleCrafter style adapter: found {describe_keys(state)}; expected 'image_context_model.*', "
            "'scale_predictor.*' and 'kv_attn_layers.*' (the released adapter_v1.pth).")
    try:
        _, style_tokens, style_in = shape_of(state["image_context_model.style_emb"])
        proj_in, context_dim = shape_of(state["image_context_model.proj"])
        _, scale_tokens, scale_in = shape_of(state["scale_predictor.scale_emb"])
        scale_hidden = shape_of(state["scale_predictor.out.0.weight"])[0]
    except KeyError as error:
        raise CheckpointLayoutError(f"the style adapter is incomplete: no {error.args[0]!r}") from error

    def layers(prefix):
        found = [int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))]
        return 1 + max(found) if found else 0

    if proj_in != style_in or scale_in != context_dim:
        raise CheckpointLayoutError(
            f"inconsistent style adapter: StyleTransformer width {style_in} vs proj {proj_in}, output {context_dim} "
            f"vs ScaleEncoder width {scale_in}.")
    return {"style_in_dim": style_in, "context_dim": context_dim, "style_tokens": style_tokens,
            "style_layers": layers("image_context_model.transformer_blocks.resblocks."),
            "scale_tokens": scale_tokens, "scale_layers": layers("scale_predictor.transformer_blocks.resblocks."),
            "scale_hidden": scale_hidden}


def expected_kv_layout(unet_shapes: Mapping, context_dim: int) -> dict[str, tuple[int, ...]]:
    """``kv_attn_layers.*`` key → shape the adapter must have for this UNet.

    ``to_k_style``/``to_v_style`` are ``[inner_dim, context_dim]`` (copies of attn2.to_k/to_v at
    creation, SC adapter.py:158-168), ``norm_style`` is ``LayerNorm(inner_dim)`` (use_norm: true).
    """
    layout = {}
    for path in dual_attention_paths(unet_shapes):
        inner = shape_of(unet_shapes[path + ".to_k.weight"])[0]
        name = KV_LAYERS + kv_module_name(path) + "."
        layout.update({name + "to_k_style.weight": (inner, context_dim), name + "to_v_style.weight": (inner, context_dim),
                       name + "norm_style.weight": (inner,), name + "norm_style.bias": (inner,)})
    return layout


def flatten_temporal_state(nested: Mapping) -> dict:
    """``{TemporalTransformer path: state_dict}`` → flat UNet keys ``<path>.<param>``.

    A flat dict whose keys already are UNet paths is returned as is (e.g. a re-saved .safetensors).
    """
    if "state_dict" in nested and isinstance(nested["state_dict"], Mapping):
        nested = nested["state_dict"]
    flat = {}
    for path, value in nested.items():
        if isinstance(value, Mapping):
            flat.update({f"{path}.{k}": v for k, v in value.items()})
        elif hasattr(value, "shape"):
            flat[path] = value
        else:
            raise CheckpointLayoutError(
                f"not a StyleCrafter temporal checkpoint: entry {path!r} is a {type(value).__name__}, expected a "
                "TemporalTransformer state dict (the released temporal_v1_1.pth maps 17 module paths such as "
                "'input_blocks.1.2' to their weights).")
    return flat


def check_temporal_state(flat: Mapping, unet_shapes: Mapping) -> list[str]:
    """Problems of a flattened temporal checkpoint against a UNet: empty list when it loads strictly.

    Each TemporalTransformer is loaded with ``strict=True`` upstream (ddpm3d_cond.py:129-131), so
    every temporal path must be present, complete, without extra keys and with equal shapes.
    """
    problems = []
    paths = temporal_transformer_paths(unet_shapes)
    expected = {k: shape_of(v) for k, v in unet_shapes.items() if any(k.startswith(p + ".") for p in paths)}
    for key in sorted(set(expected) - set(flat))[:5]:
        problems.append(f"missing {key}")
    for key in sorted(set(flat) - set(expected))[:5]:
        problems.append(f"unexpected {key}")
    for key in sorted(set(flat) & set(expected)):
        if shape_of(flat[key]) != expected[key]:
            problems.append(f"shape of {key}: {shape_of(flat[key])} != {expected[key]}")
    return problems
