"""Quality of what the demonstration model generates, measured (devkit/motion_metrics.py), in-process.

The demonstration model (devkit/demo_model, trained by scripts/train_demo_model.py on
devkit/shapes_dataset.py) runs exactly as the example workflow runs it (tests/demo_video.py: the
pack's loader, core text encoder and CFGGuider, the pack's DDIM, core VAE). These tests check that the
object moves the way the prompt says, has the prompt's colour, and that frames are temporally
consistent — on trained captions and on held-back ones (colour/shape/motion combinations never
trained) — and that the consistency test FAILS when the temporal layers are switched off, so it
measures the temporal layers and not luck. Other blocks' quality tests (temporal guidance here; I2V,
interpolation, long video as they land) reuse the same generator and measurements.

Thresholds come from measurements of the committed checkpoint (values in the comments); each sits
between what the model does and what a model without working temporal layers does. The committed model
does not follow prompts yet: the prompt-following tests are strict xfails with the measured values.
"""
from __future__ import annotations

import pytest
import torch

from videocrafter_suite.devkit import motion_metrics as metrics
from videocrafter_suite.devkit.shapes_dataset import ClipSpec, parse_caption

# Trained captions: every direction, mixing colours, shapes and backgrounds (none of them held back).
TRAINED = ("a red circle moving right on a grey background", "a blue square moving left on a black background",
           "a green triangle moving up on a checkered background", "a yellow square moving down on a grey background")
# Held back: these colour/shape/motion combinations never appear in training (shapes_dataset.HELD_BACK).
HELD_BACK = ("a red triangle moving right on a grey background", "a blue circle moving left on a checkered background",
             "a green square moving up on a black background", "a yellow circle moving down on a black background")
SEEDS = (0, 1, 2)


STEPS = 10  # DDIM steps (the demo uses 20); keeps the module well under its time budget


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def videos(comfy_path):
    """Generated videos, made once per module: ``videos(caption, seed, temporal=True)``."""
    from tests.demo_video import generate

    cache: dict = {}

    def get(caption: str, seed: int, temporal: bool = True, **options) -> torch.Tensor:
        key = (caption, seed, temporal, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = generate(caption, seed, temporal=temporal, steps=STEPS, **options)
        return cache[key]

    return get


def _motion_hits(videos, captions, seeds, temporal=True) -> tuple[float, list[str]]:
    hits, misses = 0, []
    for caption in captions:
        spec = parse_caption(caption)
        for seed in seeds:
            track = metrics.track_object(videos(caption, seed, temporal))
            measured = metrics.classify_motion(track)
            print(f"[quality] temporal={temporal} {caption!r} seed {seed}: {measured} velocity "
                  f"{[round(v, 2) for v in track.velocity.tolist()]} jitter {track.jitter:.2f}")
            hits += measured == spec.motion
            if measured != spec.motion:
                misses.append(f"{caption!r} seed {seed}: {measured}")
    return hits / (len(captions) * len(seeds)), misses


def test_held_back_captions_are_really_held_back():
    assert all(not parse_caption(c).held_back for c in TRAINED)
    assert all(parse_caption(c).held_back for c in HELD_BACK)


# The committed demonstration model does NOT follow prompts yet (measured below), so the three prompt-following
# tests are strict xfails: they run, and the day a retrained model passes them they XPASS, which fails the run
# until this marker is removed. Measured on the committed checkpoint (step 5000, 10 DDIM steps, CFG 7.5): direction
# right in 2/12 trained and 0/8 held-back videos; colour right in 3/12 (the model reads the text — its error grows
# by 74-121 % with another clip's caption at t = 300/600 — but not yet at the high-noise steps that lay a clip out).
NOT_PROMPT_FOLLOWING_YET = pytest.mark.xfail(
    strict=True, reason="the committed demonstration model does not lay out clips by the text yet; see "
                        "docs/demo_model.md")


@NOT_PROMPT_FOLLOWING_YET
def test_motion_follows_the_prompt(videos):
    rate, misses = _motion_hits(videos, TRAINED, SEEDS)
    assert rate >= 0.9, f"direction right in {rate:.0%} of videos (need >= 90 %); wrong: {misses}"


@NOT_PROMPT_FOLLOWING_YET
def test_motion_follows_held_back_prompts(videos):
    rate, misses = _motion_hits(videos, HELD_BACK, SEEDS[:2])
    assert rate >= 0.9, f"direction right in {rate:.0%} of held-back videos (need >= 90 %); wrong: {misses}"


@NOT_PROMPT_FOLLOWING_YET
def test_colour_is_the_prompts(videos):
    wrong = [(c, s, metrics.object_colour(videos(c, s))) for c in TRAINED + HELD_BACK for s in SEEDS[:2]
             if metrics.object_colour(videos(c, s)) != parse_caption(c).colour]
    assert len(wrong) <= 1, f"object colour differs from the prompt's: {wrong}"


def _median_flicker(videos, temporal: bool) -> tuple[float, list[float]]:
    flicker = sorted(metrics.background_flicker(videos(c, s, temporal)) for c in TRAINED for s in SEEDS[:2])
    return (flicker[3] + flicker[4]) / 2, flicker


# Median background flicker (mean |frame change| on background pixels, 0..1) over TRAINED x seeds 0-1,
# measured on the committed checkpoint: 0.033 with the temporal layers, 0.125 without them (per video
# 0.019-0.079 vs 0.078-0.223). The bound sits between the two medians (near their geometric mean, 0.064).
FLICKER_MEDIAN_BOUND = 0.065


def test_frames_are_temporally_consistent(videos):
    median, flicker = _median_flicker(videos, temporal=True)
    print(f"[quality] flicker with temporal layers: median {median:.4f}, {[round(f, 4) for f in flicker]}")
    assert median <= FLICKER_MEDIAN_BOUND, f"median background flicker {median:.4f} > {FLICKER_MEDIAN_BOUND}: {flicker}"


def test_consistency_test_fails_without_temporal_layers(videos):
    """The ablation: the same prompts and seeds with every temporal layer skipped (per-frame generation)
    must fail the consistency test above, so that test measures the temporal layers, not luck."""
    median, flicker = _median_flicker(videos, temporal=False)
    print(f"[quality] flicker without temporal layers: median {median:.4f}, {[round(f, 4) for f in flicker]}")
    assert median > FLICKER_MEDIAN_BOUND, f"temporal layers off, yet median flicker {median:.4f} passes the bound"


# Measured on the committed checkpoint (caption TRAINED[1], seeds 0-1): flicker 0.022 / 0.025 with temporal
# guidance 2.0 against 0.032 / 0.045 without (ratio 0.60); the test asks for at most 0.7.
TEMPORAL_SCALE = 2.0
GUIDANCE_FLICKER_RATIO = 0.7


def test_temporal_guidance_reduces_flicker(videos):
    """Temporal guidance (bridge/guiders.TemporalCFGGuider) pushes away from the per-frame prediction;
    with scale 0 it is exactly core's CFGGuider, i.e. the plain videos."""
    from videocrafter_suite.bridge.guiders import TemporalCFGGuider
    from videocrafter_suite.devkit.demo_recipe import SAMPLING

    def guided(scale):
        def factory(model, positive, negative):
            guider = TemporalCFGGuider(model)
            guider.set_conds(positive, negative)
            guider.set_scales(SAMPLING["cfg"], scale)
            return guider
        return factory

    caption = TRAINED[1]
    plain = [metrics.background_flicker(videos(caption, s)) for s in SEEDS[:2]]
    steady = [metrics.background_flicker(videos(caption, s, guider_factory=guided(TEMPORAL_SCALE))) for s in SEEDS[:2]]
    print(f"[quality] temporal guidance {TEMPORAL_SCALE}: flicker {steady} vs plain {plain}")
    assert sum(steady) <= GUIDANCE_FLICKER_RATIO * sum(plain), \
        f"temporal guidance {TEMPORAL_SCALE}: flicker {steady} vs plain {plain}"
