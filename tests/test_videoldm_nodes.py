"""VideoLDM nodes in-process (no sampling): fps ×k on both branches, factor validation, keyframe inputs."""
import pytest
import torch


@pytest.fixture(scope="module")
def nodes(comfy_path):
    from videocrafter_suite.nodes import videoldm

    return videoldm


def test_fps_scales_on_both_branches_without_touching_the_input(nodes):
    embedding = torch.zeros(1, 77, 8)
    positive, negative = [[embedding, {"fps": 7}]], [[embedding, {}]]
    out = nodes.VideoCrafterFrameRateScale.execute(positive, negative, 4)
    assert out.result[0][0][1]["fps"] == 28 and out.result[1][0][1]["fps"] == 16 * 4
    assert positive[0][1] == {"fps": 7} and negative[0][1] == {}


def test_factor_validation(nodes):
    assert nodes.factor_problem(4) is True
    assert "factor must be one of 2, 4, 8, 16" in nodes.factor_problem(3)
    assert nodes.VideoCrafterKeyframeInterpolation.validate_inputs(factor=5) != True  # noqa: E712


def test_keyframe_inputs(nodes):
    keys = {"samples": torch.randn(3, 4, 6, 8)}
    out = nodes.VideoCrafterKeyframeInterpolation.execute(8, "nearest", keyframes=keys).result[0]
    assert out["samples"].shape == (24, 4, 6, 8) and out["noise_mask"].shape == (24, 1, 6, 8)
    assert torch.equal(out["samples"][::8], keys["samples"])
    with pytest.raises(ValueError, match="no keyframes"):
        nodes.keyframes_from(None, None, None)
    with pytest.raises(ValueError, match="need a vae"):
        nodes.keyframes_from(None, torch.zeros(1, 48, 64, 3), None)

    class FakeVAE:  # stands in for core VAE.encode's contract: IMAGE [n, H, W, 3] → latent [n, 4, H/8, W/8]
        def encode(self, image):
            return torch.zeros(image.shape[0], 4, image.shape[1] // 8, image.shape[2] // 8)

    with pytest.raises(ValueError, match="keyframes of another size.*64×48 px.*32×32 px"):
        nodes.keyframes_from({"samples": torch.zeros(2, 4, 6, 8)}, torch.zeros(1, 32, 32, 3), FakeVAE())
    both = nodes.keyframes_from({"samples": torch.ones(2, 4, 6, 8)}, torch.zeros(1, 48, 64, 3), FakeVAE())
    assert both.shape[0] == 3 and both[0].eq(1).all() and both[2].eq(0).all()
