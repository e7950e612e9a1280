"""Decode what the pack writes, to assert on frames, size and rate.

Why two decoders: PyAV (``av``, bundled FFmpeg, already required by ComfyUI) reads mp4 / webm /
gif / mkv; animated WebP and APNG are read with Pillow, because FFmpeg's WebP demuxer does not
decode animated files. No system ffmpeg is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

PILLOW_SUFFIXES = {".webp", ".png", ".apng"}


@dataclass(frozen=True)
class VideoInfo:
    """What a decoded animation holds: counted frames (not header claims), size and rate."""

    frame_count: int
    width: int
    height: int
    fps: float

    def as_tuple(self) -> tuple[int, int, int, float]:
        return (self.frame_count, self.width, self.height, self.fps)


def _to_path(source) -> Path:
    return Path(source)


def probe_video(path) -> VideoInfo:
    """Decode every frame of an mp4 / webm / gif / mkv with PyAV; count them.

    The container's frame count is not trusted (webm and gif often report 0); frames are
    decoded and counted. ``fps`` is the stream's average rate (guessed rate as fallback).
    """
    import av

    with av.open(str(_to_path(path))) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        return VideoInfo(count, stream.codec_context.width, stream.codec_context.height, float(rate))


def read_video_frames(path) -> np.ndarray:
    """All frames of a video as ``uint8 [T, H, W, 3]`` RGB (PyAV)."""
    import av

    with av.open(str(_to_path(path))) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def probe_animated_image(path) -> VideoInfo:
    """Frame count, size and rate of an animated WebP / PNG (APNG) / GIF with Pillow.

    ``fps`` comes from the first frame's duration (ms); 0.0 when the file has no timing.
    """
    from PIL import Image, ImageSequence

    with Image.open(_to_path(path)) as image:
        frames = 0
        durations = []
        for frame in ImageSequence.Iterator(image):
            frame.load()  # WebP sets the frame's ``duration`` only once it is decoded
            frames += 1
            durations.append(frame.info.get("duration", 0) or 0)
        fps = 1000.0 / durations[0] if durations and durations[0] else 0.0
        return VideoInfo(frames, image.width, image.height, fps)


def read_animated_image_frames(path) -> np.ndarray:
    """All frames of an animated WebP / PNG / GIF as ``uint8 [T, H, W, 3]`` RGB (Pillow)."""
    from PIL import Image, ImageSequence

    with Image.open(_to_path(path)) as image:
        return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)])


def probe_media(path) -> VideoInfo:
    """Dispatch on the suffix: Pillow for .webp/.png/.apng, PyAV for everything else."""
    if _to_path(path).suffix.lower() in PILLOW_SUFFIXES:
        return probe_animated_image(path)
    return probe_video(path)


def read_frames(path) -> np.ndarray:
    """Frames of any supported animation as ``uint8 [T, H, W, 3]``, dispatched like :func:`probe_media`."""
    if _to_path(path).suffix.lower() in PILLOW_SUFFIXES:
        return read_animated_image_frames(path)
    return read_video_frames(path)
