"""In-process ComfyUI: Make-Your-Video as a native MODEL with depth structure in CONDITIONING.

* The recorded original run (``myv_sampler_tiny``: depth_guided_synthesis, 10 DDIM steps, cfg 7.5, eta 0 and 1)
  is reproduced through core ``CFGGuider`` + the pack's DDIM SAMPLER/SIGMAS with the depth riding as
  ``videocrafter_structure_depth`` on positive and negative (≤ 1e-4 relative, reference README §4.4).
* The checkpoint loader detects Make-Your-Video from its keys in both released layouts and ignores
  ``depth_stage_model.*``; the structure node checks model, frames and sizes with clear errors.
"""
import json

import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file

FIXTURES = "makeyourvideo/fixtures"


@pytest.fixture(scope="module")
def comfy(comfy_path):
    import comfy.samplers  # noqa: F401

    from videocrafter_suite.bridge import checkpoint, ddim, model  # noqa: F401
    return comfy


@pytest.fixture(scope="module")
def recorded(reference_dir):
    config = json.loads((reference_dir / FIXTURES / "myv_sampler_tiny.config.json").read_text())
    tensors = load_file(reference_dir / FIXTURES / "myv_sampler_tiny.safetensors")
    weights = load_file(reference_dir / FIXTURES / "myv_unet_tiny.weights.safetensors")
    return config, tensors, {k: v.float() for k, v in weights.items()}


@pytest.fixture(scope="module")
def myv_model(comfy, recorded):
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.models.checkpoints.layout import VARIANTS
    from videocrafter_suite.models.sampling.schedule import VideoCrafterSchedule

    schedule = VideoCrafterSchedule(use_scale=False)
    state = dict(recorded[2])
    state.update(schedule.buffers())
    return build_model(state, VARIANTS["myv_depth_256"], schedule, {"dtype": torch.float32})


def _frames(tensor):
    return rearrange(tensor, "b c t h w -> (b t) c h w")


@pytest.mark.parametrize("eta", [0, 1])
def test_comfy_ddim_reproduces_the_original_depth_guided_run(comfy, myv_model, recorded, eta):
    import comfy.samplers
    from videocrafter_suite.bridge import vocabulary as V
    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas

    _config, tensors, _weights = recorded
    run = f"run_eta{eta}"
    depth = _frames(tensors["cond/depth"])
    guider = comfy.samplers.CFGGuider(myv_model)
    guider.set_conds([[tensors["cond/text_emb"], {V.STRUCTURE_DEPTH: depth}]],
                     [[tensors["cond/uncond_emb"], {V.STRUCTURE_DEPTH: depth}]])
    guider.set_cfg(7.5)
    noise_per_step = tensors[f"{run}/noise_per_step"]
    sampler = VideoCrafterDDIM(eta=float(eta), noise_sampler=lambda i: _frames(noise_per_step[i]))
    sigmas = ddim_sigmas(myv_model.get_model_object("model_sampling"), noise_per_step.shape[0])
    noise = _frames(tensors[f"{run}/x_T"])
    out = guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, disable_pbar=True, seed=123)
    want = _frames(tensors[f"{run}/depth_guided_synthesis_return"][:, 0])  # final / 0.18215 = ComfyUI's convention
    relative = float((out - want).abs().max() / want.abs().max())
    print(f"eta {eta}: max rel error {relative:.3e}")
    assert relative <= 1e-4


def test_model_without_depth_and_t2v_with_depth_are_refused(comfy, myv_model, recorded):
    import comfy.sample
    from videocrafter_suite.bridge.structure import StructureError, structure_concat

    _config, tensors, _weights = recorded
    latent = torch.zeros(4, 4, 8, 8)
    with pytest.raises(StructureError, match="conditioning has no depth"):
        comfy.sample.sample(myv_model, torch.randn_like(latent), 1, 7.5, "euler", "normal",
                            [[tensors["cond/text_emb"], {}]], [[tensors["cond/uncond_emb"], {}]], latent,
                            disable_pbar=True, seed=0)
    unet = myv_model.model.model_config.unet_config_object
    depth = torch.zeros(4, 1, 8, 8)
    with pytest.raises(StructureError, match="has 3 frames"):
        structure_concat(unet, depth[:3], latent)
    with pytest.raises(StructureError, match=r"\(8, 8\) \(latent pixels\)"):
        structure_concat(unet, depth, torch.zeros(4, 4, 8, 6))
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig
    with pytest.raises(StructureError, match="no depth input channel"):
        structure_concat(UNet3DConfig(), depth, latent)
    assert structure_concat(UNet3DConfig(), None, latent) is None


@pytest.mark.parametrize("layout", ["lightning", "deepspeed", "safetensors"])
def test_loader_detects_makeyourvideo_in_every_layout(comfy, tmp_path, layout):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint
    from videocrafter_suite.devkit.tiny_makeyourvideo import make_tiny_makeyourvideo, save_tiny_makeyourvideo

    path = save_tiny_makeyourvideo(tmp_path / f"any_name.{'safetensors' if layout == 'safetensors' else 'ckpt'}",
                                   layout, seed=2)
    loaded = load_videocrafter_checkpoint(str(path))
    assert loaded.variant.name == "myv_depth_256" and loaded.clip is not None and loaded.vae is not None
    unet = loaded.model.model.diffusion_model
    assert unet.config.in_channels == 5 and unet.config.causal_block_size == 1
    assert not loaded.model.model.model_sampling.schedule.use_scale
    expected = {k[len("model.diffusion_model."):]: v for k, v in make_tiny_makeyourvideo(seed=2).items()
                if k.startswith("model.diffusion_model.")}
    assert all(torch.equal(unet.state_dict()[k].float(), v) for k, v in expected.items())


def test_structure_node_puts_the_same_depth_on_both_and_checks_inputs(comfy):
    from videocrafter_suite.bridge import vocabulary as V
    from videocrafter_suite.models.depth.structure import depth_structure
    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.structure import VideoCrafterStructureConditioning as Node

    class FakeConfig:  # just what the node reads off a MODEL: the UNet's channel counts
        from videocrafter_suite.models.unet.unet3d import UNet3DConfig
        unet_config_object = UNet3DConfig(in_channels=5)

    class FakePatcher:
        class model:  # noqa: N801
            model_config = FakeConfig

    depth = torch.rand(4, 32, 48, 1).expand(4, 32, 48, 3)
    latent = {"samples": torch.zeros(4, 4, 4, 6)}
    text = [[torch.zeros(1, 77, 8), {}]]
    positive, negative = Node.execute(FakePatcher, text, text, depth, latent).args
    want = depth_structure(depth[..., :1].permute(0, 3, 1, 2), (4, 6))
    assert torch.equal(positive[0][1][V.STRUCTURE_DEPTH], want) and torch.equal(negative[0][1][V.STRUCTURE_DEPTH], want)
    with pytest.raises(InputError, match="depth has 3 frames but the latent has 4"):
        Node.execute(FakePatcher, text, text, depth[:3], latent)
    FakeConfig.unet_config_object = FakeConfig.UNet3DConfig(in_channels=4)
    with pytest.raises(InputError, match="model: .* no depth input channel"):
        Node.execute(FakePatcher, text, text, depth, latent)
