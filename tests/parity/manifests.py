"""Key/shape parity against the full-size manifests (``../shared/reference/manifests/*.json``).

For each manifest: run ``detect_unet_config`` on the ``model.diffusion_model.*`` keys and shapes,
build the UNet on the meta device (no memory) and compare its state-dict keys and shapes with the
manifest exactly. The detected config is also compared with the manifest's YAML
``unet_config.params``. I2V manifests also check ``image_proj_model.*`` (Resampler).
StyleCrafter manifests: the base UNet is checked without the ``.attn2.processor.`` alias keys; then
the style adapter is built on meta from the sizes read off the adapter checkpoint layout and attached
to the UNet as the ComfyUI patch does (``models.style.adapter``): the patched UNet's keys must equal
the manifest's ``model.diffusion_model.*`` *with* the aliases, the adapter's keys the manifest's
``adapter.*`` and its adapter-checkpoint layout, the dual-attention layer order the manifest's
processor list, and the temporal checkpoint layout (17 nested TemporalTransformer state dicts) must
load strictly into the UNet.
"""
from __future__ import annotations

import json
from pathlib import Path

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity.report import Comparison
from videocrafter_suite.models.checkpoints.layout import (SCHEDULE_BUFFERS, TEXT_ENCODER_PREFIX, VAE_PREFIX,
                                                          detect_variant, unwrap_state_dict)
from videocrafter_suite.models.image.resampler import Resampler, detect_resampler_config
from videocrafter_suite.models.style.adapter import StyleAdapter, StyleAdapterConfig, attach_style_layers
from videocrafter_suite.models.style.layout import (check_temporal_state, dual_attention_paths,
                                                           flatten_temporal_state, processor_name)
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet
from videocrafter_suite.models.unet.detect import UNET_PREFIX, config_differences, detect_unet_config

RESAMPLER_PREFIX = "image_proj_model."
PROCESSOR_ALIAS = ".attn2.processor."


def matches(config: dict) -> bool:
    """Manifests: a ``keys`` mapping plus the parsed YAML."""
    return isinstance(config.get("keys"), dict) and "yaml_config_parsed" in config


def _result(name: str, label: str, problems: list[str], ok_note: str) -> Comparison:
    n = float(len(problems))
    return Comparison(name, label, n, n, atol=0.0, note="; ".join(problems[:8]) or ok_note)


def compare_keys(expected: dict[str, tuple], actual: dict[str, tuple]) -> list[str]:
    """Missing / unexpected keys and shape mismatches, one line each."""
    problems = [f"missing {k}" for k in sorted(set(expected) - set(actual))]
    problems += [f"unexpected {k}" for k in sorted(set(actual) - set(expected))]
    problems += [f"shape {k}: {actual[k]} != {expected[k]}" for k in sorted(set(expected) & set(actual))
                 if tuple(actual[k]) != tuple(expected[k])]
    return problems


def _sub(keys: dict, prefix: str, exclude: str | None = None) -> dict[str, tuple]:
    return {k[len(prefix):]: tuple(v) for k, v in keys.items()
            if k.startswith(prefix) and (exclude is None or exclude not in k)}


def _yaml_unet_params(manifest: dict) -> dict | None:
    try:
        return manifest["yaml_config_parsed"]["model"]["params"]["unet_config"]["params"]
    except (KeyError, TypeError):
        return None


def check(path: Path) -> list[Comparison]:
    path = Path(path)
    manifest = json.loads(path.read_text())
    name = path.stem
    keys = manifest["keys"]
    results = []

    unet_keys = _sub(keys, UNET_PREFIX, exclude=PROCESSOR_ALIAS)
    n_alias = sum(1 for k in keys if k.startswith(UNET_PREFIX) and PROCESSOR_ALIAS in k)
    config = detect_unet_config(unet_keys, prefix="")
    params = _yaml_unet_params(manifest)
    if params is not None:
        results.append(_result(name, "detect_unet_config == yaml unet_config",
                               config_differences(UNet3DConfig.from_upstream_kwargs(params), config),
                               "same config"))
    model = VideoCrafterUNet(config, device="meta")
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    note = f"{len(built)} keys" + (f"; {n_alias} .attn2.processor. alias keys excluded (style adapter)"
                                   if n_alias else "")
    results.append(_result(name, "unet keys/shapes (meta build)", compare_keys(unet_keys, built), note))

    results += _check_style(name, manifest, model)

    results += _check_hybrid_checkpoint(name, manifest, config)

    resampler_keys = _sub(keys, RESAMPLER_PREFIX)
    if resampler_keys:
        resampler = Resampler(detect_resampler_config(resampler_keys, prefix=""), device="meta")
        built = {k: tuple(v.shape) for k, v in resampler.state_dict().items()}
        results.append(_result(name, "image_proj_model keys/shapes (meta build)",
                               compare_keys(resampler_keys, built), f"{len(built)} keys"))
    return results


def _layout(manifest: dict, title: str) -> dict | None:
    return next((v for k, v in manifest.items() if k.startswith(title)), None)


def _check_style(name: str, manifest: dict, unet: VideoCrafterUNet) -> list[Comparison]:
    """StyleCrafter: adapter layout, the patched UNet's keys (with aliases), processor order, temporal layout."""
    keys = manifest["keys"]
    adapter_layout = _layout(manifest, "adapter_checkpoint_layout")
    if adapter_layout is None:
        adapter_layout = _sub(keys, "adapter.")  # the image manifest has the same adapter, only inside keys
    if not adapter_layout:
        return []
    results = []
    unet_shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    adapter = StyleAdapter(StyleAdapterConfig.from_state(adapter_layout), unet_shapes, device="meta")
    built = {k: tuple(v.shape) for k, v in adapter.state_dict().items()}
    results.append(_result(name, "adapter checkpoint layout (meta build)",
                           compare_keys({k: tuple(v) for k, v in adapter_layout.items()}, built), f"{len(built)} keys"))
    results.append(_result(name, "adapter.* keys/shapes (meta build)", compare_keys(_sub(keys, "adapter."), built),
                           f"{len(built)} keys"))
    attach_style_layers(unet, adapter)
    patched = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    n_alias = sum(1 for k in patched if PROCESSOR_ALIAS in k)
    results.append(_result(name, "patched unet keys/shapes incl. .attn2.processor. aliases",
                           compare_keys(_sub(keys, UNET_PREFIX), patched), f"{len(patched)} keys, {n_alias} aliases"))
    processors = _layout(manifest, "dual_attn_processors")
    if processors is not None:
        ours = [processor_name(p) for p in dual_attention_paths(unet_shapes)]
        order = sorted(processors, key=lambda k: processors[k]["layer_idx"])
        problems = [] if ours == order else [f"layer order {ours[:3]}... != {order[:3]}..."]
        for proc in order:
            key = "kv_attn_layers." + proc.replace(".", "_") + ".to_k_style.weight"
            if tuple(built.get(key, ())) != tuple(processors[proc]["to_k_style"]):
                problems.append(f"{key}: {built.get(key)} != {processors[proc]['to_k_style']}")
        results.append(_result(name, "dual cross-attention layers (layer_idx order)", problems, f"{len(ours)} layers"))
    temporal = _layout(manifest, "temporal_checkpoint_layout")
    if temporal is not None:
        flat = flatten_temporal_state({p: {k: tuple(v) for k, v in sd.items()} for p, sd in temporal.items()})
        results.append(_result(name, "temporal checkpoint layout loads strictly into the unet",
                               check_temporal_state(flat, unet_shapes),
                               f"{len(temporal)} TemporalTransformers, {len(flat)} tensors"))
    return results


def _check_hybrid_checkpoint(name: str, manifest: dict, unet: UNet3DConfig) -> list[Comparison]:
    """Depth-concat checkpoints (``conditioning_key: hybrid``, Make-Your-Video): what the loader makes of the file.

    From the YAML: the variant detected from keys takes depth, the UNet's extra input channels equal
    ``in_channels - channels``, no ``scale_arr``; every key is read by the loader (UNet, VAE, text tower, schedule
    buffers) or knowingly skipped (``depth_stage_model.*`` when the YAML has a ``depth_stage_config``); and the
    DeepSpeed layout (``deepspeed_layout.prefix`` on every key) unwraps to the same keys.
    """
    params = (manifest.get("yaml_config_parsed") or {}).get("model", {}).get("params", {})
    if params.get("conditioning_key") != "hybrid":
        return []
    keys = manifest["keys"]
    problems = []
    variant = detect_variant(keys)
    if not variant.is_depth_to_video:
        problems.append(f"detected {variant.name}, not a depth-conditioned variant")
    extra = unet.in_channels - int(params.get("channels", 4))
    if extra != unet.in_channels - unet.out_channels or extra < 1:
        problems.append(f"extra input channels {unet.in_channels - unet.out_channels} != {extra} from the YAML")
    if "scale_arr" in keys or variant.use_scale:
        problems.append("scale_arr / use_scale present")
    skipped = ("depth_stage_model.",) if "depth_stage_config" in params else ()
    read = (UNET_PREFIX, VAE_PREFIX, TEXT_ENCODER_PREFIX)
    stray = [k for k in keys if not k.startswith(read + skipped) and k not in SCHEDULE_BUFFERS]
    problems += [f"key neither loaded nor skipped: {k}" for k in stray[:5]]
    n_skipped = sum(1 for k in keys if k.startswith(skipped)) if skipped else 0
    out = [_result(name, "hybrid checkpoint: variant, depth channels, every key loaded or skipped", problems,
                   f"{variant.name}, {extra} depth channel(s), {n_skipped} depth_stage_model.* keys skipped")]
    prefix = (manifest.get("deepspeed_layout") or {}).get("prefix")
    if prefix:
        unwrapped = unwrap_state_dict({"module": {prefix + k: v for k, v in keys.items()}})
        out.append(_result(name, f"deepspeed layout ('module', '{prefix}' prefix) unwraps to the keys",
                           compare_keys(keys, unwrapped), f"{len(unwrapped)} keys"))
    return out
