#!/usr/bin/env python3
"""Write a tiny seeded VideoCrafter checkpoint in the released layout (for the demo and tests).

    python scripts/make_tiny_checkpoint.py OUT.safetensors [--variant vc2_t2v_512] [--seed 0] [--ckpt]

Writes atomically; ``--ckpt`` writes a ``torch.save`` ``{"state_dict": ...}`` file as released.
Run it with the host's python (torch is needed): ``python3 scripts/host.py python -- scripts/make_tiny_checkpoint.py``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import devkit.pack  # noqa: E402,F401  (registers the pack as `videocrafter_suite`)


def write_tiny_checkpoint(path: Path, variant: str = "vc2_t2v_512", seed: int = 0, as_ckpt: bool = False) -> Path:
    from videocrafter_suite.devkit.tiny_checkpoint import tiny_spec, write_tiny_checkpoint as write

    return write(path, tiny_spec(variant, seed=seed), as_ckpt=as_ckpt)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--variant", default="vc2_t2v_512",
                        choices=["vc2_t2v_512", "vc1_t2v_1024", "vc1_t2v_512"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ckpt", action="store_true", help="write a torch.save .ckpt instead of safetensors")
    args = parser.parse_args(argv)
    print(write_tiny_checkpoint(args.output, args.variant, args.seed, args.ckpt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
