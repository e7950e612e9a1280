"""I2V preprocessing: our pure-torch resize + normalisation against the original's kornia calls.

The original (condition.py:324-332) runs ``kornia.geometry.resize(x, (224, 224), 'bicubic',
align_corners=True, antialias=True)`` on the [-1, 1] image, then ``(x + 1) / 2`` and
``kornia.enhance.normalize`` with the CLIP mean/std. kornia is only the reference here (it comes
with ComfyUI's requirements); the pack itself never imports it. Real photos from scikit-image.
"""
import pytest
import torch

from videocrafter_suite.models.image.preprocess import (CLIP_MEAN, CLIP_STD, antialiased_bicubic_resize,
                                                        comfy_image_to_signed, gaussian_kernel1d, grey_image,
                                                        openclip_image_preprocess)

kornia = pytest.importorskip("kornia", reason="kornia is the reference implementation (ComfyUI requirement)")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos (test-only dependency)")

TOLERANCE = 1e-5


def original_preprocess(x: torch.Tensor) -> torch.Tensor:
    """FrozenOpenCLIPImageEmbedderV2.preprocess, verbatim (condition.py:324-332)."""
    x = kornia.geometry.resize(x, (224, 224), interpolation="bicubic", align_corners=True, antialias=True)
    x = (x + 1.0) / 2.0
    return kornia.enhance.normalize(x, torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD))


def photo(name: str) -> torch.Tensor:
    """A scikit-image photo as a ComfyUI IMAGE [1, H, W, 3] in [0, 1]."""
    array = getattr(skimage_data, name)()
    return torch.from_numpy(array).float().div(255.0)[None]


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket"])
def test_matches_the_original_on_real_photos(name):
    image = comfy_image_to_signed(photo(name))
    ours, reference = openclip_image_preprocess(image), original_preprocess(image)
    assert ours.shape == (1, 3, 224, 224)
    error = (ours - reference).abs().max().item()
    print(f"{name} {tuple(image.shape[-2:])}: max |ours - kornia| = {error:.3g}")
    assert error <= TOLERANCE


@pytest.mark.parametrize("size", [(320, 512), (100, 300), (224, 224), (150, 90), (1000, 250)])
def test_resize_matches_kornia_for_down_up_and_mixed_scaling(size):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = kornia.geometry.resize(x, (224, 224), interpolation="bicubic", align_corners=True, antialias=True)
    assert (antialiased_bicubic_resize(x, (224, 224)) - reference).abs().max() <= TOLERANCE


def test_the_original_squashes_without_crop():
    """A left/right split image keeps both halves (a centre crop would lose the left and right edges)."""
    image = torch.zeros(1, 3, 320, 512)
    image[..., :8] = 1.0
    out = antialiased_bicubic_resize(image, (224, 224))
    assert out[..., 0].mean() > 0.5


def test_unconditional_image_is_mid_grey():
    grey = openclip_image_preprocess(grey_image(2))
    expected = (0.5 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(grey, expected.view(1, 3, 1, 1).expand(2, 3, 224, 224), atol=1e-6)
    assert torch.equal(grey, original_preprocess(grey_image(2)))


def test_comfy_image_conversion():
    image = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 1, 4).expand(1, 2, 3, 4)
    x = comfy_image_to_signed(image)
    assert x.shape == (1, 3, 2, 3)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="IMAGE"):
        comfy_image_to_signed(torch.zeros(1, 3, 8, 8))


def test_gaussian_kernel_is_normalised_and_rejects_even_sizes():
    kernel = gaussian_kernel1d(5, 1.3)
    assert torch.isclose(kernel.sum(), torch.tensor(1.0)) and torch.equal(kernel, kernel.flip(0))
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel1d(4, 1.0)
