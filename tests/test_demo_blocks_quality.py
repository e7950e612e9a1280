"""Quality of the other blocks on the demonstration model: keyframe interpolation, prediction, FreeNoise.

Each test runs a block exactly as its node runs it (tests/demo_video.py) on the demonstration model and
measures the object (devkit/motion_metrics.py) against ground truth from devkit/shapes_dataset.py:

* keyframe interpolation (VideoLDM §3.3) puts the object between its keyframe positions, near where the
  real clip had it — and does not when the temporal layers are off (then nothing carries the keyframes to
  the in-between frames);
* long-video prediction (VideoLDM §3.2) continues the context frames' motion from where they leave it;
* FreeNoise (window-fused temporal attention) keeps a 32-frame object moving the prompt's way without
  jumps at the window seams.

I2V is not measured here: the demonstration model is text-to-video (an I2V model needs the image
projection and first-frame concatenation of VideoCrafter1-I2V, which the demo does not train).
Thresholds are measured values with margin; the measurements are in the comments.
"""
from __future__ import annotations

import pytest

from videocrafter_suite.devkit import motion_metrics as metrics
from videocrafter_suite.devkit.demo_recipe import DEMO_PATHS
from videocrafter_suite.devkit.shapes_dataset import ClipSpec, make_clip

STEPS = 10  # DDIM steps, as tests/test_demo_model_quality.py
CLIP_SEED = 7  # the dataset clip the keyframes / context come from


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo(comfy_path):
    from tests import demo_video

    return demo_video


def _clip(colour="red", shape="circle", motion="right", background="grey"):
    spec = ClipSpec(colour, shape, motion, background)
    return spec, make_clip(spec, CLIP_SEED, paths=DEMO_PATHS)  # a clip like the model's training clips


# ------------------------------------------------------------------------------------------ keyframes
KEYFRAMES = (0, 8)  # dataset frames used as keyframes; factor 8 puts them at frames 0 and 8
FACTOR = 8


def _interpolation_error(demo, temporal: bool, seed: int) -> tuple[float, list[float]]:
    spec, clip = _clip()
    keyframes = clip.frames[list(KEYFRAMES)]
    video = demo.interpolate_keyframes(spec.caption, keyframes, FACTOR, seed, temporal=temporal, steps=STEPS)
    track = metrics.track_object(video)
    between = range(1, FACTOR)  # the in-between frames 1..7, whose truth is the real clip's frames 1..7
    errors = [float((track.centres[i] - clip.centres[i]).norm()) if bool(track.found[i]) else float("inf")
              for i in between]
    return sum(errors) / len(errors), errors


# The committed demonstration model does not yet make these blocks work (measured values below), so the tests
# are strict xfails: they run every time, and the day a retrained model passes they XPASS, which fails the run
# until the marker is removed (docs/demo_model.md, "Quality tests").
NOT_YET = pytest.mark.xfail(strict=True, reason="the committed demonstration model does not follow motion yet "
                                                "(docs/demo_model.md)")

# A good interpolation stays within a few px of the real clip (the object moves ~2 px/frame, the keyframes are
# ~16 px apart). Measured on the committed checkpoint (10 DDIM steps): 14.7 px with the temporal layers (seed 0),
# 11.6 / 12.5 px without them: neither is an interpolation yet.
INTERPOLATION_ERROR_BOUND = 6.0


@NOT_YET
def test_keyframe_interpolation_puts_the_object_between_its_keyframes(demo):
    """In-between centres near the real clip's with the temporal layers — and not without them (then nothing
    carries the keyframes to the in-between frames), so the test measures the temporal layers."""
    for seed in (0, 1):
        mean, errors = _interpolation_error(demo, True, seed)
        print(f"[quality] keyframe interpolation seed {seed}: mean centre error {mean:.2f} px {errors}")
        assert mean <= INTERPOLATION_ERROR_BOUND, f"seed {seed}: in-between centres off by {errors} px"
    means = [_interpolation_error(demo, False, seed)[0] for seed in (0, 1)]
    print(f"[quality] keyframe interpolation without temporal layers: mean centre errors {means}")
    assert max(means) > INTERPOLATION_ERROR_BOUND, f"temporal layers off, yet in-betweens within bound: {means}"


# ------------------------------------------------------------------------------------------ prediction
CONTEXT = 4


@NOT_YET
def test_prediction_continues_the_motion(demo):
    """The segment predicted from 4 context frames of a clip moving right keeps moving right, starting
    where the context leaves off."""
    spec, clip = _clip()
    video = demo.extend_by_prediction(spec.caption, clip.frames[:CONTEXT], 0, steps=STEPS)
    assert video.shape[0] == 16
    new = metrics.track_object(video[CONTEXT:])
    motion = metrics.classify_motion(new)
    step = float((clip.centres[CONTEXT - 1] - clip.centres[0]).norm()) / (CONTEXT - 1)
    expected = clip.centres[CONTEXT - 1] + (clip.centres[CONTEXT - 1] - clip.centres[CONTEXT - 2])
    jump = float((new.centres[0] - expected).norm())
    print(f"[quality] prediction: new frames {motion}, velocity {new.velocity.tolist()}, first new frame "
          f"{jump:.2f} px from the extrapolated position (clip moves {step:.2f} px/frame)")
    assert motion == spec.motion
    assert jump <= PREDICTION_JUMP_BOUND


# Measured on the committed checkpoint: the new frames read "growing" (velocity (-0.17, 0.47) px/frame) and start
# 19.7 px from where the context leaves off; the clip moves 1.9 px/frame. Bound: four frames of motion.
PREDICTION_JUMP_BOUND = 8.0


# ------------------------------------------------------------------------------------------ FreeNoise
LONG = 32
FREENOISE_MAX_STEP = 8.0  # px between consecutive frames: ~3 frames of the dataset's motion


@NOT_YET
def test_freenoise_long_video_moves_without_seam_jumps(demo):
    spec, _ = _clip()
    video = demo.generate_freenoise(spec.caption, 0, LONG, steps=STEPS)
    track = metrics.track_object(video)
    halves = [metrics.classify_motion(metrics.track_object(video[:LONG // 2])),
              metrics.classify_motion(metrics.track_object(video[LONG // 2:]))]
    steps = (track.centres[1:] - track.centres[:-1]).norm(dim=-1)
    steps = steps[track.found[1:] & track.found[:-1]]
    print(f"[quality] FreeNoise {LONG} frames: halves {halves}, per-frame steps max {float(steps.max()):.2f} "
          f"median {float(steps.median()):.2f} px, found {int(track.found.sum())}/{LONG}")
    assert halves == [spec.motion, spec.motion], f"halves move {halves}, the prompt says {spec.motion}"
    assert int(track.found.sum()) >= LONG * 0.9
    assert float(steps.max()) <= FREENOISE_MAX_STEP
