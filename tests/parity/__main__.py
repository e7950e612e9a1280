"""Parity runner: ``python -m tests.parity PATH...`` (from the repo root).

Each PATH is a directory (searched recursively) or a single JSON file. Every ``*.config.json``
(fixture) and every other ``*.json`` that is a manifest (a ``keys`` mapping plus
``yaml_config_parsed``) is dispatched on its *content* to the first checker whose
``matches(config)`` is true:

* ``tests/parity/stylecrafter_fixtures.py`` — StyleCrafter fixtures (``unet_kwargs`` + ``adapter_config``);
* ``tests/parity/unet_fixtures.py`` — UNet fixtures (``unet_kwargs``);
* ``tests/parity/sampler_fixtures.py`` — DDIM sampler fixtures (imported lazily; an ImportError
  means "not supported yet");
* ``tests/parity/manifests.py`` — full-size key/shape manifests.

Configs no checker handles are printed as ``SKIP <name>: <reason>`` and do not fail the run. Each
compared tensor prints one line (``tests/parity/report.py``); a mismatch or an exception prints
FAIL and makes the exit code 1. The last line is ``parity: N passed, M failed, K skipped``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

import tests.pack  # noqa: F401  (first: registers the repo as ``videocrafter_suite``)

CHECKERS = ("tests.parity.stylecrafter_fixtures", "tests.parity.unet_fixtures", "tests.parity.sampler_fixtures", "tests.parity.manifests")


def _load_checkers() -> tuple[list, dict[str, str]]:
    """Import every checker; those that fail to import are reported, not fatal."""
    loaded, unavailable = [], {}
    for name in CHECKERS:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            unavailable[name] = f"{type(exc).__name__}: {exc}"
    return loaded, unavailable


def discover(paths: list[Path]) -> list[Path]:
    """Fixture configs and manifests under ``paths`` (sorted, without duplicates)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates = sorted(path.rglob("*.json"))
        elif path.is_file():
            candidates = [path]
        else:
            raise SystemExit(f"parity: no such file or directory: {path}")
        for candidate in candidates:
            if candidate.name.endswith(".config.json") or candidate == path or _is_manifest(candidate):
                if candidate not in found:
                    found.append(candidate)
    return found


def _is_manifest(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("keys"), dict) and "yaml_config_parsed" in data


def _display_name(path: Path) -> str:
    return path.name[: -len(".config.json")] if path.name.endswith(".config.json") else path.stem


def _skip_reason(config: dict, unavailable: dict[str, str]) -> str:
    if config.get("adapter_config") is not None and "tests.parity.stylecrafter_fixtures" in unavailable:
        return f"StyleCrafter checker not available ({unavailable['tests.parity.stylecrafter_fixtures']})"
    if "latent_diffusion_config_resolved" in config and "tests.parity.sampler_fixtures" in unavailable:
        return f"sampler checker not available yet ({unavailable['tests.parity.sampler_fixtures']})"
    return f"no checker handles this config (top-level keys: {sorted(config)[:8]})"


def run(paths: list[Path], out=sys.stdout) -> int:
    checkers, unavailable = _load_checkers()
    passed = failed = skipped = 0
    for path in discover(paths):
        name = _display_name(path)
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"FAIL {name}: cannot read {path}: {exc}", file=out)
            failed += 1
            continue
        checker = next((c for c in checkers if c.matches(config)), None)
        if checker is None:
            print(f"SKIP {name}: {_skip_reason(config, unavailable)}", file=out)
            skipped += 1
            continue
        try:
            comparisons = checker.check(path)
        except Exception as exc:  # a crash in a check is a failure of that fixture, not of the runner
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", file=out)
            print("     " + "".join(traceback.format_exc(limit=-3)).replace("\n", "\n     "), file=out)
            failed += 1
            continue
        if not comparisons:
            print(f"FAIL {name}: the checker compared nothing", file=out)
            failed += 1
        for comparison in comparisons:
            print(comparison.line(), file=out)
            if comparison.passed:
                passed += 1
            else:
                failed += 1
        for note in getattr(checker, "not_checked", lambda p: [])(path):
            print(f"SKIP {name}: {note}", file=out)
            skipped += 1
        out.flush()
    print(f"parity: {passed} passed, {failed} failed, {skipped} skipped", file=out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.parity", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="fixture/manifest directories or JSON files")
    args = parser.parse_args(argv)
    return run(args.paths)


if __name__ == "__main__":
    sys.exit(main())
