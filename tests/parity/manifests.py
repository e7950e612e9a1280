"""Key/shape parity against the full-size manifests (``../shared/reference/manifests/*.json``).

For each manifest: run ``detect_unet_config`` on the ``model.diffusion_model.*`` keys and shapes,
build the UNet on the meta device (no memory) and compare its state-dict keys and shapes with the
manifest exactly. The detected config is also compared with the manifest's YAML
``unet_config.params``. I2V manifests also check ``image_proj_model.*`` (Resampler).
StyleCrafter manifests: the base UNet is checked without the ``.attn2.processor.`` alias keys;
the style adapter (``adapter.*``) is noted as not checked yet.
"""
from __future__ import annotations

import json
from pathlib import Path

import tests.pack  # noqa: F401  (registers the repo as ``videocrafter_suite``)
from tests.parity.report import Comparison
from videocrafter_suite.models.resampler import Resampler, detect_resampler_config
from videocrafter_suite.models.unet3d import UNet3DConfig, VideoCrafterUNet
from videocrafter_suite.models.unet_detect import UNET_PREFIX, config_differences, detect_unet_config

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

    resampler_keys = _sub(keys, RESAMPLER_PREFIX)
    if resampler_keys:
        resampler = Resampler(detect_resampler_config(resampler_keys, prefix=""), device="meta")
        built = {k: tuple(v.shape) for k, v in resampler.state_dict().items()}
        results.append(_result(name, "image_proj_model keys/shapes (meta build)",
                               compare_keys(resampler_keys, built), f"{len(built)} keys"))
    return results


def not_checked(path: Path) -> list[str]:
    """Key groups of a manifest this checker leaves alone (printed as SKIP notes by the runner)."""
    manifest = json.loads(Path(path).read_text())
    prefixes = sorted({k.split(".")[0] + "." for k in manifest["keys"] if k.startswith("adapter.")})
    notes = []
    if prefixes:
        n = sum(1 for k in manifest["keys"] if k.startswith("adapter."))
        notes.append(f"StyleCrafter style adapter ({n} adapter.* keys) not checked: the adapter is a later issue")
    return notes
