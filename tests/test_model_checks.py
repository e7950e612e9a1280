"""In-process: what the loaded model can take is checked at sampling time, whatever made the latent
or the conditioning, before the first UNet call, with errors that say what to change.

Tiny checkpoints from the factory have 2 levels (one downsample): latent sides must be even,
pixels multiples of 16. The released UNets have 4 levels: pixels multiples of 64.
"""
import pytest
import torch


@pytest.fixture(scope="module")
def tiny(comfy_path):
    import comfy.sample  # noqa: F401

    from videocrafter_suite.bridge.checkpoint import build_clip, build_model, schedule_from_checkpoint
    from videocrafter_suite.models.checkpoints.layout import detect_variant
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec

    built = {}
    for name, spec in {"t2v": tiny_spec("vc2_t2v_512", seed=3), "i2v": tiny_spec("vc1_i2v_512", seed=4),
                       "wide_clip": tiny_spec("vc2_t2v_512", seed=5, text_width=128)}.items():
        state = make_tiny_state_dict(spec)
        variant = detect_variant(state)
        built[name] = {"model": build_model(state, variant, schedule_from_checkpoint(state, variant)),
                       "clip": build_clip(state), "spec": spec}
    return built


def encode(clip, text):
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def sample_counting_unet_calls(model, latent, positive, negative):
    """Core KSampler path (comfy.sample.sample, euler, 1 step); returns how many times the UNet ran."""
    import comfy.sample

    calls = []
    patched = model.clone()
    patched.set_model_unet_function_wrapper(lambda apply, args: calls.append(1) or apply(args["input"],
                                                                                         args["timestep"],
                                                                                         **args["c"]))
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    error = None
    try:
        with torch.inference_mode():
            comfy.sample.sample(patched, noise, 1, 2.0, "euler", "normal", positive, negative, latent)
    except Exception as raised:  # noqa: BLE001 — the test inspects what was raised
        error = raised
    return len(calls), error


def test_a_latent_the_unet_cannot_halve_is_refused_before_sampling_with_nearest_sizes(tiny):
    from videocrafter_suite.bridge.model_checks import ModelInputError

    t2v = tiny["t2v"]
    positive, negative = encode(t2v["clip"], "a cat"), encode(t2v["clip"], "")
    latent = torch.zeros(4, 4, 6, 9)  # width 72 px: latent 9, one downsample -> 5 vs 4 on the way up
    calls, error = sample_counting_unet_calls(t2v["model"], latent, positive, negative)
    assert calls == 0 and isinstance(error, ModelInputError), error
    message = str(error)
    assert "72×48" in message and "multiples of 16 pixels" in message and "64×48" in message and "80×48" in message
    calls, error = sample_counting_unet_calls(t2v["model"], torch.zeros(4, 4, 6, 8), positive, negative)
    assert error is None and calls > 0


def test_a_core_latent_batch_of_300_frames_is_refused_at_the_model(tiny):
    from videocrafter_suite.bridge.model_checks import MAX_FRAMES, ModelInputError

    t2v = tiny["t2v"]
    latent = torch.zeros(300, 4, 2, 2)  # core EmptyLatentImage(16, 16, batch_size=300)
    calls, error = sample_counting_unet_calls(t2v["model"], latent, encode(t2v["clip"], "x"), encode(t2v["clip"], ""))
    assert calls == 0 and isinstance(error, ModelInputError), error
    assert "300 frames" in str(error) and f"at most {MAX_FRAMES}" in str(error)


def test_a_prompt_encoded_by_another_clip_is_named_with_both_widths(tiny):
    from videocrafter_suite.bridge.model_checks import ModelInputError

    t2v, other = tiny["t2v"], tiny["wide_clip"]
    positive, negative = encode(other["clip"], "a cat"), encode(other["clip"], "")
    calls, error = sample_counting_unet_calls(t2v["model"], torch.zeros(2, 4, 6, 8), positive, negative)
    assert calls == 0 and isinstance(error, ModelInputError), error
    assert "is 128 wide" in str(error) and "expects 64" in str(error)


def test_an_i2v_model_without_image_conditioning_names_the_node_to_add(tiny):
    from videocrafter_suite.bridge.model_checks import ModelInputError

    i2v = tiny["i2v"]
    positive, negative = encode(i2v["clip"], "a cat"), encode(i2v["clip"], "")
    calls, error = sample_counting_unet_calls(i2v["model"], torch.zeros(2, 4, 6, 8), positive, negative)
    assert calls == 0 and isinstance(error, ModelInputError), error
    assert "'VideoCrafter Image-to-Video Conditioning'" in str(error)


def released_unet():
    from videocrafter_suite.models.unet.unet3d import UNet3DConfig

    return UNet3DConfig()  # channel_mult (1, 2, 4, 4), model_channels 320: every released VideoCrafter UNet


@pytest.mark.parametrize("width,height,suggested", [(512, 328, ["512×320", "512×384"]),
                                                    (520, 320, ["512×320", "576×320"])])
def test_released_unet_sizes_must_be_multiples_of_64_and_the_suggestions_are(width, height, suggested):
    from videocrafter_suite.bridge.model_checks import ModelInputError, check_before_sampling

    config = released_unet()
    with pytest.raises(ModelInputError, match="multiples of 64 pixels") as error:
        check_before_sampling(config, (16, 4, height // 8, width // 8))
    for size in suggested:
        assert size in str(error.value)
        w, h = (int(v) for v in size.split("×"))
        check_before_sampling(config, (16, 4, h // 8, w // 8))


def test_4096_square_256_frames_is_refused_before_allocation_saying_what_fits(comfy_path):
    import re

    import comfy.model_management

    from videocrafter_suite.bridge.model_checks import ModelInputError, check_before_sampling

    config = released_unet()
    device = comfy.model_management.get_torch_device()
    total = comfy.model_management.get_total_memory(device)
    with pytest.raises(ModelInputError, match="GiB") as error:
        check_before_sampling(config, (256, 4, 512, 512), dtype_bytes=4, free_bytes=total)
    message = str(error.value)
    frames = int(re.search(r"at 4096×4096 up to (\d+) frames", message).group(1)) if "up to" in message else 0
    if frames:
        check_before_sampling(config, (frames, 4, 512, 512), dtype_bytes=4, free_bytes=total)
    size = re.search(r"at 256 frames up to about (\d+)×(\d+)", message)
    assert frames or size, message
    if size:
        w, h = (int(v) for v in size.groups())
        assert w % 64 == 0 and h % 64 == 0
        check_before_sampling(config, (256, 4, h // 8, w // 8), dtype_bytes=4, free_bytes=total)
    check_before_sampling(config, (16, 4, 40, 64), dtype_bytes=4, free_bytes=total)  # 512x320x16 fits
