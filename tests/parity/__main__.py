"""Parity runner: ``python -m tests.parity PATH...`` (from the repo root).

Each PATH is a directory (searched recursively) or a single JSON file. Every ``*.config.json``
(fixture) and every other ``*.json`` that is a manifest (a ``keys`` mapping; model manifests also carry
``yaml_config_parsed``, component manifests such as the MiDaS DPT ones do not) is dispatched on its *content* to the first checker whose
``matches(config)`` is true. Checkers are discovered, not listed: every module
``tests/parity/*_fixtures.py`` (each family adds its own file) plus ``tests/parity/manifests.py``
(full-size key/shape manifests, tried last). Each exposes ``matches(config) -> bool`` and
``check(config_path) -> list[Comparison]``; ``PRIORITY`` (default 50; lower first) orders them where
two could match (e.g. StyleCrafter fixtures also carry ``unet_kwargs``).

A fixture kind no checker knows is printed as ``UNKNOWN <name>: <reason>`` and **fails the run**: an
unverified fixture is never silently passed. Each compared tensor prints one line
(``tests/parity/report.py``); a mismatch or an exception prints FAIL and makes the exit code 1. A
checker may report parts of a fixture it deliberately does not compare (``not_checked(path)``) as
``SKIP`` lines with the reason. The last line is ``parity: N passed, M failed, K skipped``
(UNKNOWN configs count as failed).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

import tests.pack  # noqa: F401  (first: registers the repo as ``videocrafter_suite``)

HERE = Path(__file__).resolve().parent
MANIFEST_CHECKER = "tests.parity.manifests"


def checker_names() -> list[str]:
    """Every ``tests/parity/*_fixtures.py`` module, then the manifest checker."""
    return [f"tests.parity.{path.stem}" for path in sorted(HERE.glob("*_fixtures.py"))] + [MANIFEST_CHECKER]


def _load_checkers() -> tuple[list, dict[str, str]]:
    """Import every checker, ordered by ``PRIORITY``; one that fails to import is reported (and every config
    only it could check then fails as UNKNOWN), never fatal to the others."""
    loaded, unavailable = [], {}
    for name in checker_names():
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            unavailable[name] = f"{type(exc).__name__}: {exc}"
    loaded.sort(key=lambda module: (getattr(module, "PRIORITY", 50), module.__name__ == MANIFEST_CHECKER))
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
    return isinstance(data, dict) and isinstance(data.get("keys"), dict)


def _display_name(path: Path) -> str:
    return path.name[: -len(".config.json")] if path.name.endswith(".config.json") else path.stem


def _unknown_reason(config: dict, unavailable: dict[str, str]) -> str:
    broken = "; ".join(f"{name} failed to import ({why})" for name, why in unavailable.items())
    reason = f"no checker knows this fixture kind (top-level keys: {sorted(config)[:8]})"
    return f"{reason}; {broken}" if broken else reason


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
            print(f"UNKNOWN {name}: {_unknown_reason(config, unavailable)}", file=out)
            failed += 1
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
