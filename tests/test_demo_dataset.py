"""The demonstration model's pieces that need no trained weights: dataset, measurements, recipe, file.

Fast checks (no sampling): the procedural dataset is seeded and its captions parse back; the motion
measurements recover the dataset's own ground truth (so they can judge generated videos); the latent
normalisation fold and the text-key conversion used by the training script are exact; the committed
checkpoint loads through the pack's loader as a VC2-512 model and is small.
"""
from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from tests.pack import PACK_ROOT
from videocrafter_suite.devkit import motion_metrics as metrics
from videocrafter_suite.devkit import shapes_dataset as data
from videocrafter_suite.devkit.demo_recipe import (DEMO_CHECKPOINT, DEMO_LABEL, DEMO_SPEC, LATENT_SCALE, SAMPLING,
                                                    comfy_text_to_openclip, fold_latent_normalisation)


def test_clips_are_seeded_and_captions_parse_back():
    spec = data.ClipSpec("red", "circle", "left", "grey")
    assert spec.caption == "a red circle moving left on a grey background"
    assert data.parse_caption(spec.caption) == spec
    assert data.ClipSpec("blue", "square", "growing", "checkered").caption == "a blue square growing on a checkered background"
    a, b = data.make_clip(spec, 5), data.make_clip(spec, 5)
    assert torch.equal(a.frames, b.frames) and not torch.equal(a.frames, data.make_clip(spec, 6).frames)
    assert a.frames.shape == (data.FRAMES, data.SIZE, data.SIZE, 3) and 0 <= float(a.frames.min()) <= float(a.frames.max()) <= 1
    with pytest.raises(ValueError, match="not a caption"):
        data.parse_caption("a cat playing the piano")


def test_held_back_combinations_are_absent_from_training_but_every_word_is_seen():
    training = data.training_specs()
    assert not any(s.held_back for s in training)
    assert len(data.held_back_specs()) == len(data.HELD_BACK) * len(data.BACKGROUNDS)
    for field, values in (("colour", data.COLOURS), ("shape", data.SHAPES), ("motion", data.MOTIONS)):
        assert {getattr(s, field) for s in training} == set(values)
    assert all(not data.reversed_spec(s).held_back or s.held_back is False for s in training)


def test_measurements_recover_the_ground_truth():
    """On dataset clips (every caption once) the measured motion and colour are the caption's; centres within 0.5 px."""
    worst = 0.0
    for seed, spec in enumerate(data.all_specs()[::2]):
        clip = data.make_clip(spec, seed)
        track = metrics.track_object(clip.frames)
        assert metrics.classify_motion(track) == spec.motion, spec
        assert metrics.object_colour(clip.frames) == spec.colour, spec
        worst = max(worst, float((track.centres - clip.centres).abs().max()))
        if spec.motion in data.DIRECTIONS:
            assert metrics.direction_agreement(track, spec.motion) > 0.99
        assert metrics.background_flicker(clip.frames) < 0.002  # only anti-aliased edges change
        assert track.jitter < 0.5
    assert worst < 0.5  # triangles' centroid vs circumcentre, anti-aliasing


def test_measurements_see_flicker_and_a_still_object():
    clip = data.make_clip(data.ClipSpec("green", "square", "up", "grey"), 0)
    noisy = (clip.frames + 0.05 * torch.randn(clip.frames.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert metrics.background_flicker(noisy) > 0.03
    still = clip.frames[:1].expand_as(clip.frames)
    assert metrics.classify_motion(metrics.track_object(still)) == "still"
    assert metrics.classify_motion(metrics.track_object(data.background("grey"))) == "lost"
    assert metrics.frame_error(clip.frames, clip.frames[0]) == 0.0


def test_latent_normalisation_fold_is_exact():
    generator = torch.Generator().manual_seed(0)
    state = {"quant_conv.weight": torch.randn(8, 8, 1, 1, generator=generator), "quant_conv.bias": torch.randn(8, generator=generator),
             "post_quant_conv.weight": torch.randn(4, 4, 1, 1, generator=generator),
             "post_quant_conv.bias": torch.randn(4, generator=generator)}
    h, mean, std = torch.randn(2, 8, 3, 3, generator=generator), torch.randn(4, generator=generator), 2.5
    folded = fold_latent_normalisation(state, mean, std)
    z = F.conv2d(h, state["quant_conv.weight"], state["quant_conv.bias"])[:, :4]
    z_new = F.conv2d(h, folded["quant_conv.weight"], folded["quant_conv.bias"])[:, :4]
    assert torch.allclose(z_new * LATENT_SCALE, (z - mean.view(1, -1, 1, 1)) / std, atol=1e-5)
    decoded = F.conv2d(z, state["post_quant_conv.weight"], state["post_quant_conv.bias"])
    assert torch.allclose(F.conv2d(z_new, folded["post_quant_conv.weight"], folded["post_quant_conv.bias"]), decoded,
                          atol=1e-4)


def test_text_keys_round_trip_through_core(comfy_path):
    """The tower trained inside core's module is written back in OpenCLIP's layout, key for key and value for value."""
    from videocrafter_suite.bridge.checkpoint import build_clip
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict
    from videocrafter_suite.models.checkpoints.layout import TEXT_ENCODER_PREFIX

    state = {k: v for k, v in make_tiny_state_dict(DEMO_SPEC).items() if k.startswith(TEXT_ENCODER_PREFIX)}
    clip = build_clip(state)
    back = comfy_text_to_openclip(clip.cond_stage_model.clip_h.transformer.state_dict(), DEMO_SPEC.text_layers)
    assert set(back) == set(state)
    for key in state:
        if not key.endswith("logit_scale"):
            assert torch.equal(back[key].float(), state[key].float()), key


def test_demo_script_uses_the_recipe():
    spec = importlib.util.spec_from_file_location("videocrafter_demo_script", PACK_ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.DEMO_CHECKPOINT == DEMO_CHECKPOINT and demo.DEMO_LABEL == DEMO_LABEL
    assert all(SAMPLING[k] == v for k, v in demo.DEMO_SETTINGS.items())


def test_committed_checkpoint_loads_as_vc2(comfy_path):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint, log_if_demonstration

    # 12.1 MiB on disk (half of it the 49408x64 token table, mostly zero rows); ~5.4 MiB zlib-compressed in git
    assert DEMO_CHECKPOINT.stat().st_size < 13 * 2 ** 20, "the demonstration checkpoint must stay small"
    loaded = load_videocrafter_checkpoint(str(DEMO_CHECKPOINT))
    assert loaded.variant.name == "vc2_t2v_512" and loaded.model.model.model_config.schedule.use_scale
    assert log_if_demonstration(str(DEMO_CHECKPOINT))
    assert loaded.clip is not None and loaded.vae is not None


def test_entering_paths_place_each_direction_apart_on_average():
    """``paths="entering"``: where the object is, averaged over the clip, already tells the direction (no saddle)."""
    spec = {d: data.ClipSpec("red", "circle", d, "grey") for d in data.DIRECTIONS}
    for paths, apart in (("anywhere", False), ("entering", True)):
        means = {d: torch.stack([data.make_clip(s, seed, paths=paths).centres.mean(0) for seed in range(40)]).mean(0)
                 for d, s in spec.items()}
        gap_x = float(means["left"][0] - means["right"][0])
        gap_y = float(means["up"][1] - means["down"][1])
        if apart:
            assert gap_x > 8 and gap_y > 8, (paths, gap_x, gap_y)
        else:
            assert abs(gap_x) < 3 and abs(gap_y) < 3, (paths, gap_x, gap_y)
    for seed in range(20):
        clip = data.make_clip(spec["left"], seed, paths="entering")
        r = float(clip.radii[0])
        assert clip.centres.min() >= r and clip.centres.max() <= data.SIZE - r
        assert float(clip.centres[0, 0] - clip.centres[-1, 0]) >= 19.9  # it really moves left
    with pytest.raises(ValueError, match="unknown paths"):
        data.make_clip(spec["left"], 0, paths="diagonal")


def test_crossing_paths_are_a_sharp_template_per_caption():
    """``paths="crossing"``: a large object starts touching the edge opposite to where its caption sends it and
    crosses the middle, the same path in every clip within a few pixels (growing/shrinking stay near the centre);
    clips start at the edges and end near the middle, so they are not symmetric in time."""
    middle = data.SIZE / 2
    for direction, (dx, dy) in data.DIRECTIONS.items():
        spec = data.ClipSpec("blue", "square", direction, "checkered")
        for seed in range(20):
            clip = data.make_clip(spec, seed, paths="crossing")
            r = float(clip.radii[0])
            assert 11.0 <= r <= 14.0
            assert clip.centres.min() >= r and clip.centres.max() <= data.SIZE - r  # fully inside, every frame
            along = (clip.centres[:, 0] - middle) * dx + (clip.centres[:, 1] - middle) * dy  # signed, along motion
            assert float(along[0]) <= -(middle - r - 4.0), (direction, along[0])  # starts touching its edge
            assert 6.0 - 1e-4 <= float(along[-1]) <= 10.0 + 1e-4, (direction, along[-1])  # stops past the middle
            across = (clip.centres[:, 1] - middle) * dx + (clip.centres[:, 0] - middle) * dy
            assert float(across.abs().max()) <= 5.0 and float(across.max() - across.min()) < 1e-4  # a straight line
    for seed in range(20):
        clip = data.make_clip(data.ClipSpec("red", "circle", "growing", "grey"), seed, paths="crossing")
        assert (clip.centres - middle).abs().max() <= 6.0
        assert float(clip.radii[-1]) > float(clip.radii[0]) + 7.0


def test_edge_to_edge_paths_cross_the_whole_frame():
    """``paths="edge_to_edge"``: the crossing object goes on to touch the opposite edge (same start as "crossing")."""
    for direction, (dx, dy) in data.DIRECTIONS.items():
        for seed in range(10):
            spec = data.ClipSpec("green", "circle", direction, "grey")
            clip, crossing = data.make_clip(spec, seed, paths="edge_to_edge"), data.make_clip(spec, seed, paths="crossing")
            r = float(clip.radii[0])
            assert clip.centres.min() >= r and clip.centres.max() <= data.SIZE - r
            axis = 0 if dx else 1  # same radius and start along the motion as "crossing" (the across draw differs)
            assert float(clip.centres[0, axis]) == float(crossing.centres[0, axis])
            assert float(clip.radii[0]) == float(crossing.radii[0])
            travel = clip.centres[-1] - clip.centres[0]
            assert float(travel[0] * dx + travel[1] * dy) >= data.SIZE - 2 * (r + 4.0)
