#!/usr/bin/env python3
"""Lay out a video's frames (PNG files, in order) as one strip picture, upscaled without smoothing.

    python scripts/frame_strip.py OUT.png FRAME_0.png FRAME_1.png ... [--every 2] [--scale 2]

The demo calls it (with the host's python, which has Pillow) on the frames ComfyUI saved, to make
the picture shown in the README.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def frame_strip(frames: list[Path], output: Path, every: int = 2, scale: int = 2, gap: int = 2) -> Path:
    from PIL import Image

    images = [Image.open(path).convert("RGB") for path in frames[::every]]
    if not images:
        raise SystemExit("frame_strip: no frames given")
    width, height = images[0].size
    strip = Image.new("RGB", (len(images) * (width * scale + gap) - gap, height * scale), (255, 255, 255))
    for index, image in enumerate(images):
        strip.paste(image.resize((width * scale, height * scale), Image.NEAREST), (index * (width * scale + gap), 0))
    output.parent.mkdir(parents=True, exist_ok=True)
    strip.save(output)
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("frames", type=Path, nargs="+")
    parser.add_argument("--every", type=int, default=2, help="keep every n-th frame")
    parser.add_argument("--scale", type=int, default=2, help="integer upscale factor (nearest neighbour)")
    args = parser.parse_args(argv)
    print(frame_strip(args.frames, args.output, args.every, args.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
