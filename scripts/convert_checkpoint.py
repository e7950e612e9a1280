#!/usr/bin/env python3
"""Convert a VideoCrafter ``.ckpt``/``.pth`` to ``.safetensors``, reading it safely (weights only).

    python3 scripts/host.py python -- scripts/convert_checkpoint.py model.ckpt [out.safetensors] [--overwrite]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import devkit.pack  # noqa: E402,F401  (registers the pack as `videocrafter_suite`)
from videocrafter_suite.models.checkpoints.safe_io import convert_checkpoint_file  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path, nargs="?")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    print(convert_checkpoint_file(args.source, args.destination, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
