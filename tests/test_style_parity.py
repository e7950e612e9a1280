"""StyleCrafter golden parity (../shared/reference/fixtures/stylecrafter_tiny, reference README §5.4) and the
full-size StyleCrafter manifest: the same checkers as ``python -m tests.parity``, run in-process."""
from __future__ import annotations

import pytest
from safetensors.torch import load_file

from tests.pack import REFERENCE_DIR
from tests.parity import manifests, stylecrafter_fixtures

FIXTURE = REFERENCE_DIR / "fixtures" / "stylecrafter_tiny.config.json"


@pytest.fixture(scope="module")
def results():
    return stylecrafter_fixtures.check(FIXTURE)


@pytest.mark.slow
def test_every_fixture_tensor_is_compared_and_within_tolerance(results):
    failed = [r.line() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    names = {r.name for r in results}
    io_keys = set(load_file(FIXTURE.with_name("stylecrafter_tiny.io.safetensors")).keys())
    assert {k for k in io_keys if k.startswith(("out/", "mid/"))} <= names
    for run in ("sampler_eta0", "sampler_eta1", "sampler_eta0_xformers_emulated"):
        assert f"{run}/e2e/final_latent" in names and f"{run}/step_recompute/x_prev_per_step" in names


@pytest.mark.slow
def test_tolerances_are_the_readmes(results):
    by_name = {r.name: r for r in results}
    for key in ("out/y_text_style_f32", "out/y_text_style_xformers_emulated_f32", "out/adapter_context_f32",
                "out/scale_scalar_f32", "out/y_image_mode_UNet2DModel_f32"):
        assert by_name[key].atol == 1e-5 and by_name[key].max_abs <= 1e-5
    assert by_name["out/y_text_style_f64"].max_abs <= 1e-9
    assert by_name["sampler_eta1/e2e/final_latent"].rtol == 1e-4


@pytest.mark.parametrize("name", ["stylecrafter_video_320_512", "stylecrafter_image_512_512"])
def test_stylecrafter_manifest_adapter_and_patched_keys(name):
    results = manifests.check(REFERENCE_DIR / "manifests" / f"{name}.json")
    assert results and all(r.passed for r in results), "\n".join(r.line() for r in results)
    labels = {r.name for r in results}
    assert {"adapter checkpoint layout (meta build)", "patched unet keys/shapes incl. .attn2.processor. aliases",
            "dual cross-attention layers (layer_idx order)"} <= labels
    if name == "stylecrafter_video_320_512":
        assert "temporal checkpoint layout loads strictly into the unet" in labels
