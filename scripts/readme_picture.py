#!/usr/bin/env python3
"""Make the README's frontend picture from the browser test's screenshots.

The browser test (``tests/test_browser_frontend.py``) keeps, in ``test-artifacts/browser/``, screenshots
of the latent and sampler nodes taken one after another while the sampler node plays the clip preview of
the pack's DDIM run (``preview_ddim_<i>.png``). This script loops them into one animated GIF: what a user
sees, frame for frame as the test saw it (nothing drawn or edited).

    python3 scripts/host.py python -- scripts/readme_picture.py [ARTIFACTS_DIR] [OUT.gif]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image

PACK_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARTIFACTS = PACK_ROOT / "test-artifacts" / "browser"
DEFAULT_OUT = PACK_ROOT / "docs" / "images" / "frontend_clip_preview.gif"
SHOT = re.compile(r"preview_ddim_(\d+)\.png$")
FRAME_MS = 130  # about the spacing of the screenshots


def make_picture(artifacts: Path, out: Path) -> Path:
    shots = sorted((p for p in artifacts.glob("preview_ddim_*.png") if SHOT.search(p.name)),
                   key=lambda p: int(SHOT.search(p.name).group(1)))
    if len(shots) < 2:
        raise SystemExit(f"{artifacts}: no preview_ddim_<i>.png screenshots; run "
                         "`bash scripts/test.sh tests/test_browser_frontend.py` first")
    frames = [Image.open(shot).convert("RGB") for shot in shots]
    palette = frames[0].quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    quantized = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    quantized[0].save(out, save_all=True, append_images=quantized[1:], duration=FRAME_MS, loop=0, optimize=True)
    return out


def main(argv: list[str]) -> int:
    artifacts = Path(argv[0]) if argv else DEFAULT_ARTIFACTS
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    path = make_picture(artifacts, out)
    print(f"{path} ({path.stat().st_size // 1024} KiB, from {artifacts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
