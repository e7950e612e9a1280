"""DDIM arrays built from a SIGMAS ladder equal the original's make_schedule arrays."""
import pytest
import torch

import tests.pack
from videocrafter_suite.models.sampling.ddim import make_ddim_arrays
from videocrafter_suite.models.sampling.ddim_ladder import ddim_arrays_for_ladder, is_original_ladder
from videocrafter_suite.models.sampling.schedule import PRESETS

FIELDS = ["timesteps", "alphas", "alphas_prev", "sqrt_one_minus_alphas", "sigmas", "scale_arr", "scale_arr_prev"]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("steps", [50, 25, 10, 30, 1])
@pytest.mark.parametrize("eta", [0.0, 1.0, 0.5])
def test_ladder_arrays_equal_original(preset, steps, eta):
    schedule = PRESETS[preset]
    original = make_ddim_arrays(schedule, steps, eta)
    descending = original.timesteps.flip(0).tolist()
    scale = schedule.scale_arr[:schedule.timesteps] if schedule.use_scale else None
    ours = ddim_arrays_for_ladder(schedule.alphas_cumprod, scale, descending, descending[1:] + [0], eta)
    for field in FIELDS:
        a, b = getattr(original, field), getattr(ours, field)
        if a is None:
            assert b is None
        else:
            assert a.dtype == b.dtype and torch.equal(a, b), field
    assert is_original_ladder(descending)


def test_truncated_or_foreign_ladders_are_not_original():
    assert not is_original_ladder([941, 921, 901])
    assert not is_original_ladder([999, 500, 1, 0][:-1] + [2])
    assert not is_original_ladder([981, 961, 941, 921, 1])


def test_clean_end_uses_alpha_one():
    schedule = PRESETS["vc1_512"]
    arrays = ddim_arrays_for_ladder(schedule.alphas_cumprod, None, [501, 1], [1, None], 0.0)
    assert float(arrays.alphas_prev[0]) == 1.0
