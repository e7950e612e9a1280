"""ControlNet / T2I-Adapter residuals in the VideoCrafter UNet (experimental: SD2.1 control nets were not trained
on these UNets) — pure PyTorch placement (right block, right frame, exactly core's order), then in-process
ComfyUI with a tiny ControlNet built by core's own classes to the tiny UNet's widths, saved as safetensors and
loaded by core's ControlNetLoader: its residuals reach our UNet for the whole cond+uncond batch, strength 0
is exactly no control, and a full KSampler run works."""
import pytest
import torch

from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec, tiny_unet_config
from videocrafter_suite.models.unet.unet3d import VideoCrafterUNet

FRAMES = 3
UNET = "model.diffusion_model."


@pytest.fixture(scope="module")
def unet():
    spec = tiny_spec("vc2_t2v_512", seed=11)
    model = VideoCrafterUNet(tiny_unet_config(spec)).eval()
    state = make_tiny_state_dict(spec)
    model.load_state_dict({k[len(UNET):]: v for k, v in state.items() if k.startswith(UNET)})
    return model, spec


@pytest.fixture(scope="module")
def baseline(unet):
    """The uncontrolled run (output and block inputs) and the feature shapes, computed once."""
    model, spec = unet
    return _run(model, spec), _feature_shapes(model, spec)


def _inputs(spec, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(FRAMES, 4, 8, 8, generator=g)
    context = torch.randn(1, 77, spec.text_width, generator=g)
    return x, torch.tensor([500]), context


def _run(model, spec, residuals=None):
    """Output plus what each output block receives (h and skip) and what each input block passes on."""
    seen = {}
    hooks = [block.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(("out", i), a[0].clone()))
             for i, block in enumerate(model.output_blocks)]
    hooks += [block.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(("in", i), a[0].clone()))
              for i, block in enumerate(model.input_blocks)]
    x, t, context = _inputs(spec)
    with torch.inference_mode():
        y = model(x, t, context, num_frames=FRAMES, residuals=residuals)
    for hook in hooks:
        hook.remove()
    return y, seen


def _feature_shapes(model, spec):
    """Shapes after each input block (the skips) and after the middle block."""
    shapes = []
    hooks = [block.register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape)))
             for block in [*model.input_blocks, model.middle_block]]
    x, t, context = _inputs(spec)
    with torch.inference_mode():
        model(x, t, context, num_frames=FRAMES)
    for hook in hooks:
        hook.remove()
    return shapes[:-1], shapes[-1]


def _one_frame(shape, frame, seed):
    r = torch.zeros(shape)
    r[frame] = torch.randn(shape[1:], generator=torch.Generator().manual_seed(seed))
    return r


def test_zero_residuals_change_nothing(unet, baseline):
    model, spec = unet
    (base, _), (skips, middle) = baseline
    zeros = {"input": [torch.zeros(s) for s in reversed(skips)], "middle": [torch.zeros(middle)],
             "output": [torch.zeros(s) for s in skips]}
    assert torch.equal(_run(model, spec, zeros)[0], base)
    assert torch.equal(_run(model, spec, {"input": [], "middle": [None], "output": [None] * len(skips)})[0], base)


@pytest.mark.parametrize("block, frame", [(0, 1), (2, 0), (3, 2)])
def test_output_residual_k_lands_on_skip_k_of_frame_f_only(unet, baseline, block, frame):
    """core ControlNet: ``output[k]`` belongs to input block k's skip (the list is consumed from its end)."""
    model, spec = unet
    (_, base), (skips, _) = baseline
    residual = _one_frame(skips[block], frame, seed=block)
    _, got = _run(model, spec, {"output": [residual if i == block else None for i in range(len(skips))]})
    consumer = len(skips) - 1 - block                       # output blocks take skips last-in-first-out
    width = got[("out", consumer)].shape[1] - skips[block][1]
    assert torch.equal(got[("out", consumer)][:, :width], base[("out", consumer)][:, :width]), "h is untouched"
    delta = got[("out", consumer)][:, width:] - base[("out", consumer)][:, width:]
    assert torch.allclose(delta, residual, atol=1e-6) and delta[frame].abs().max() > 0.1
    others = [f for f in range(FRAMES) if f != frame]
    assert torch.equal(delta[others], torch.zeros_like(delta[others])), "other frames untouched"
    for i in range(consumer):                               # earlier output blocks see no change at all
        assert torch.equal(got[("out", i)], base[("out", i)])


def test_input_and_middle_residuals_flow_on_from_their_block(unet, baseline):
    model, spec = unet
    (_, base), (skips, middle) = baseline
    r_in = _one_frame(skips[1], 2, seed=5)
    r_mid = _one_frame(middle, 1, seed=6)
    # T2I-Adapter style lists: one entry per input block, consumed from the end (index 0 = last block).
    _, got = _run(model, spec, {"input": [r_in if i == 1 else None for i in range(len(skips))][::-1]})
    delta = got[("in", 2)] - base[("in", 2)]
    assert torch.allclose(delta, r_in, atol=1e-6) and torch.equal(got[("in", 1)], base[("in", 1)])
    _, got = _run(model, spec, {"middle": [r_mid]})
    width = middle[1]
    delta = got[("out", 0)][:, :width] - base[("out", 0)][:, :width]
    assert torch.allclose(delta, r_mid, atol=1e-6)
    assert torch.equal(got[("out", 0)][:, width:], base[("out", 0)][:, width:]), "the skip is untouched"


def test_a_residual_for_another_unet_is_a_clear_error(unet, baseline):
    model, spec = unet
    _, (skips, _) = baseline
    wrong = [torch.zeros(FRAMES, 320, 8, 8)] + [None] * (len(skips) - 1)
    with pytest.raises(ValueError, match="output block .* ControlNet/T2I-Adapter was made for a UNet with other widths"):
        _run(model, spec, {"output": wrong})


# --- in-process ComfyUI: core's ControlNet classes, loader and KSampler ---------------------------------------


@pytest.fixture(scope="module")
def comfy_setup(comfy_path, tmp_path_factory):
    import folder_paths
    from safetensors.torch import save_file

    from tests.tiny_controlnet import TINY_CONTROLNET_SPEC, make_tiny_controlnet_state
    from videocrafter_suite.bridge.checkpoint import build_clip, build_model, schedule_from_checkpoint
    from videocrafter_suite.models.checkpoints.layout import detect_variant

    spec = tiny_spec(**TINY_CONTROLNET_SPEC)
    state = make_tiny_state_dict(spec)
    variant = detect_variant(state)
    model = build_model(state, variant, schedule_from_checkpoint(state, variant))
    unet = tiny_unet_config(spec)
    root = tmp_path_factory.mktemp("controlnet")
    save_file(make_tiny_controlnet_state(unet), str(root / "tiny_depth_control.safetensors"))
    folder_paths.add_model_folder_path("controlnet", str(root), is_default=True)
    clip = build_clip(state)
    return {"model": model, "clip": clip, "spec": spec, "unet": unet}


def _conditioning(clip):
    import nodes
    encode = nodes.CLIPTextEncode()
    return encode.encode(clip, "a house")[0], encode.encode(clip, "")[0]


def _hint(frames=FRAMES):
    return torch.rand(frames, 64, 64, 3, generator=torch.Generator().manual_seed(9))


def _sample(model, positive, negative, steps=2):
    import nodes
    latent = {"samples": torch.zeros(FRAMES, 4, 8, 8)}
    return nodes.common_ksampler(model, 7, steps, 5.0, "euler", "normal", positive, negative, latent)[0]["samples"]


def test_core_controlnet_loader_and_full_ksampler_run(comfy_setup, monkeypatch):
    import nodes

    from videocrafter_suite.bridge.model import ComfyVideoCrafterUNet

    control_net = nodes.ControlNetLoader().load_controlnet("tiny_depth_control.safetensors")[0]
    positive, negative = _conditioning(comfy_setup["clip"])
    hint = _hint()
    cp, cn = nodes.ControlNetApplyAdvanced().apply_controlnet(positive, negative, control_net, hint, 0.8, 0.0, 1.0)[:2]

    seen = []
    original = ComfyVideoCrafterUNet.forward

    def spy(self, x, timesteps, *args, control=None, **kwargs):
        seen.append((x.shape, None if control is None else {k: [None if r is None else tuple(r.shape) for r in v]
                                                               for k, v in control.items()}))
        return original(self, x, timesteps, *args, control=control, **kwargs)

    monkeypatch.setattr(ComfyVideoCrafterUNet, "forward", spy)
    controlled = _sample(comfy_setup["model"], cp, cn)
    monkeypatch.undo()
    plain = _sample(comfy_setup["model"], positive, negative)
    assert controlled.shape == plain.shape == (FRAMES, 4, 8, 8) and torch.isfinite(controlled).all()
    assert (controlled - plain).abs().max() > 1e-3, "the control changes the video"
    shape, control = seen[0]
    assert shape[0] == 2 * FRAMES, "cond and uncond frames in one batch"
    assert len(control["output"]) == len(comfy_setup["model"].model.diffusion_model.input_blocks)
    assert all(s[0] == 2 * FRAMES for s in control["output"]) and control["middle"][0][0] == 2 * FRAMES


def test_controlnet_residuals_are_per_frame_and_strength_zero_is_no_control(comfy_setup):
    import nodes

    control_net = nodes.ControlNetLoader().load_controlnet("tiny_depth_control.safetensors")[0]
    model = comfy_setup["model"]
    hint = _hint()
    changed = hint.clone()
    changed[1] = 1.0 - changed[1]                                  # only frame 1's hint differs
    x = torch.randn(2 * FRAMES, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    sigma = torch.full((2 * FRAMES,), 3.0)
    context = torch.randn(2 * FRAMES, 77, comfy_setup["spec"].text_width, generator=torch.Generator().manual_seed(2))

    def residuals(image, strength):
        c = control_net.copy().set_cond_hint(image.movedim(-1, 1), strength, (0.0, 1.0))
        c.pre_run(model.model, model.get_model_object("model_sampling").percent_to_sigma)
        with torch.inference_mode():
            out = c.get_control(x, sigma, {"c_crossattn": context}, 2, {})
        c.cleanup()
        return out

    a, b = residuals(hint, 1.0), residuals(changed, 1.0)
    for r_a, r_b in zip(a["output"], b["output"]):
        diff = (r_a - r_b).abs().amax(dim=(1, 2, 3))
        assert diff[1] > 0 and diff[1 + FRAMES] > 0, "frame 1 changes in both cond and uncond halves"
        assert torch.equal(diff[[0, 2, 3, 5]], torch.zeros(4)), "other frames' residuals are untouched"

    zero = residuals(hint, 0.0)
    assert all(torch.equal(r, torch.zeros_like(r)) for r in zero["output"] + zero["middle"])
    unet = model.model.diffusion_model
    t = torch.full((2 * FRAMES,), 500.0)
    with torch.inference_mode():
        plain = unet(x, t, context=context, num_video_frames=FRAMES)
        with_zero = unet(x, t, context=context, num_video_frames=FRAMES, control=zero)
        with_full = unet(x, t, context=context, num_video_frames=FRAMES, control=residuals(hint, 1.0))
    assert torch.equal(plain, with_zero), "strength 0 equals no control exactly"
    assert (plain - with_full).abs().max() > 1e-3
