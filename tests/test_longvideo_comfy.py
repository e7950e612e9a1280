"""In-process ComfyUI: FreeNoise and FIFO-Diffusion through the pack's nodes/glue against the official runs
(``../shared/reference/longvideo``), and the video context windows on core samplers.

Tolerances: recorded sampler runs end to end <= 1e-4 relative (reference README §4.3: cfg 12 on random
weights amplifies float32 rounding); identities that hold exactly (T <= window / context length) are
``torch.equal``; the frame-local windowed run differs from the unwindowed one only by float32 rounding of the
fusion ``(a·w + a·w') / (w + w')`` and of batch-size dependent matmuls (<= 1e-5 relative of |x| ~ 1).
"""
import json
from types import SimpleNamespace

import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file

LONGVIDEO = "longvideo/fixtures"
E2E_RTOL = 1e-4


def _build(weights_path, variant, schedule):
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.models.checkpoints.layout import VARIANTS

    state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    state.update(schedule.buffers())
    return build_model(state, VARIANTS[variant], schedule)


@pytest.fixture(scope="module")
def freenoise_model(comfy, reference_dir):
    from videocrafter_suite.models.sampling.schedule import VC1_1024

    return _build(reference_dir / LONGVIDEO / "freenoise_unet_tiny.weights.safetensors", "vc1_t2v_1024", VC1_1024)


@pytest.fixture(scope="module")
def vc2_model(comfy, reference_dir):
    from videocrafter_suite.models.sampling.schedule import VC2_512

    return _build(reference_dir / "fixtures" / "t2v_tiny_vc2style.weights.safetensors", "vc2_t2v_512", VC2_512)


@pytest.fixture(scope="module")
def freenoise_run(reference_dir):
    return load_file(str(reference_dir / LONGVIDEO / "freenoise_sampler_tiny.safetensors"))


@pytest.fixture(scope="module")
def fifo_run(reference_dir):
    config = json.loads((reference_dir / LONGVIDEO / "fifo_tiny.config.json").read_text())
    return config, load_file(str(reference_dir / LONGVIDEO / "fifo_tiny.io.safetensors"))


def _frames(video):  # [C, T, h, w] -> [T, C, h, w]
    return rearrange(video, "c t h w -> t c h w")


def _relative(actual, expected):
    return float((actual - expected).abs().max() / expected.abs().max())


# ------------------------------------------------------------------------------------------------ FreeNoise
def test_freenoise_noise_node_gives_the_official_x_T(comfy, freenoise_run):
    from videocrafter_suite.bridge.longvideo import FreeNoiseVideoNoise

    x_T = freenoise_run["run_eta0/x_T"]  # [2, 4, 24, 8, 8]: the same rescheduled draw for both prompts
    noise = FreeNoiseVideoNoise(123, 16, 4).generate_noise({"samples": torch.zeros(24, 4, 8, 8)})
    assert torch.equal(noise, _frames(x_T[0])) and torch.equal(noise, _frames(x_T[1]))
    with pytest.raises(ValueError, match="divisible by stride"):
        FreeNoiseVideoNoise(123, 16, 4).generate_noise({"samples": torch.zeros(22, 4, 8, 8)})


def test_freenoise_in_comfy_reproduces_the_official_run(comfy, freenoise_model, freenoise_run):
    """Official FreeNoise (eta 0, 5 steps, cfg 12, fps 28, window 16 / stride 4) = FreeNoise NOISE + FreeNoise
    attention patch + the pack's DDIM SAMPLER/SIGMAS under core CFGGuider."""
    import comfy.samplers

    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas
    from videocrafter_suite.bridge.longvideo import FreeNoiseVideoNoise, patch_freenoise_attention

    tensors, video = freenoise_run, 1
    text, uncond = tensors["cond/text_emb"][video:video + 1], tensors["cond/uncond_emb_row"][None]
    noise_per_step = tensors["run_eta0/noise_per_step"]
    patched = patch_freenoise_attention(freenoise_model, 16, 4)
    guider = comfy.samplers.CFGGuider(patched)
    guider.set_conds([[text, {"fps": 28}]], [[uncond, {"fps": 28}]])
    guider.set_cfg(12.0)
    sampler = VideoCrafterDDIM(eta=0.0, noise_sampler=lambda i: _frames(noise_per_step[i, video]))
    sigmas = ddim_sigmas(freenoise_model.get_model_object("model_sampling"), noise_per_step.shape[0])
    noise = FreeNoiseVideoNoise(123, 16, 4).generate_noise({"samples": torch.zeros(24, 4, 8, 8)})
    with torch.inference_mode():
        out = guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, disable_pbar=True, seed=123)
    expected = _frames(tensors["run_eta0/batch_ddim_sampling_freenoise_return"][video, 0])
    assert _relative(out, expected) <= E2E_RTOL


def _ksample(model, latent, positive, negative, sampler="euler", steps=2, seed=0):
    import comfy.sample

    noise = comfy.sample.prepare_noise(latent, seed)
    with torch.inference_mode():
        return comfy.sample.sample(model, noise, steps, 7.0, sampler, "normal", positive, negative, latent,
                                   disable_pbar=True, seed=seed)


def _conds(tensors):
    return [[tensors["cond/text_emb"][:1], {"fps": 8}]], [[tensors["cond/uncond_emb"][:1], {"fps": 8}]]


def test_freenoise_attention_up_to_the_window_is_the_plain_model(comfy, vc2_model, fifo_run):
    from videocrafter_suite.bridge.longvideo import patch_freenoise_attention

    positive, negative = _conds(fifo_run[1])
    latent = torch.zeros(8, 4, 8, 8)
    plain = _ksample(vc2_model, latent, positive, negative)
    assert torch.equal(_ksample(patch_freenoise_attention(vc2_model, 16, 4), latent, positive, negative), plain)
    fused = _ksample(patch_freenoise_attention(vc2_model, 4, 2), latent, positive, negative)
    assert not torch.allclose(fused, plain, rtol=1e-3), "windows shorter than the video change the result"


# ------------------------------------------------------------------------------------------------ FIFO
def _recorded_draws(tensors, pre, settings):
    """The official run's draws after the base clip, in order: queue init, per window f, shift."""
    draws = list(tensors[pre + "queue/init_randn"])
    windows = len(settings.ranks)
    for it in range(settings.iterations):
        for k in range(it * windows, (it + 1) * windows):
            draws += list(tensors[pre + "onestep/step_noise"][k])
        draws.append(tensors[pre + "iter/shift_noise"][it])
    return lambda shape, like: draws.pop(0).reshape(shape).to(like)


def test_fifo_sampler_in_comfy_reproduces_the_official_run(comfy, vc2_model, fifo_run):
    import comfy.sample

    from videocrafter_suite.bridge.longvideo import FifoSampler, fifo_sigmas
    from videocrafter_suite.models.longvideo.fifo import FifoSettings

    config, tensors = fifo_run
    pre = "run_f4_n2_lookahead_eta1/"
    args = config["pipeline_runs"]["run_f4_n2_lookahead_eta1"]["args"]
    settings = FifoSettings(args["video_length"], args["num_partitions"], args["new_video_length"], True, args["eta"])
    base = _frames(tensors[pre + "base/final_latent"][0]) / 0.18215  # ComfyUI latents are VAE-space
    popped = []
    sampler = FifoSampler(settings, 321, on_frame=lambda i, total, frame: popped.append((i, total)),
                          draw=_recorded_draws(tensors, pre, settings))
    positive = [[tensors["cond/text_emb"], {"fps": 8}]]
    negative = [[tensors["cond/uncond_emb"], {"fps": 8}]]
    sigmas = fifo_sigmas(vc2_model.get_model_object("model_sampling"), settings)
    with torch.inference_mode():
        video = comfy.sample.sample_custom(vc2_model, torch.zeros_like(base), 12.0, sampler, sigmas, positive,
                                           negative, base, disable_pbar=True, seed=321)
    expected = _frames(tensors[pre + "iter/popped_decoded"][-settings.new_video_length:, 0, :, 0].transpose(0, 1))
    assert video.shape == (settings.new_video_length, 4, 8, 8)
    assert _relative(video, expected) <= E2E_RTOL
    assert popped == [(i, settings.iterations) for i in range(settings.iterations)]


def test_fifo_node_outputs_the_requested_length_and_rejects_bad_input(comfy, vc2_model, fifo_run):
    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.longvideo import VideoCrafterFIFOSampler

    positive, negative = _conds(fifo_run[1])
    clip = {"samples": torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))}
    with torch.inference_mode():
        out = VideoCrafterFIFOSampler.execute(vc2_model, positive, negative, clip, seed=3, frames=5, num_partitions=1,
                                              lookahead=False, cfg=7.0, eta=1.0)
    video = out.result[0]["samples"]
    assert video.shape == (5, 4, 8, 8) and torch.isfinite(video).all()
    with pytest.raises(InputError, match="even window"):
        VideoCrafterFIFOSampler.execute(vc2_model, positive, negative, {"samples": torch.zeros(3, 4, 8, 8)}, seed=3,
                                        frames=5, num_partitions=1, lookahead=True, cfg=7.0, eta=1.0)


# ------------------------------------------------------------------------------------------------ context windows
def _windowed(model, length, overlap, fuse="pyramid", schedule="standard_static"):
    from videocrafter_suite.bridge.video_context_windows import install_video_context_windows

    return install_video_context_windows(model, length, overlap, schedule, 1, False, fuse)


def test_context_windows_at_or_below_the_context_length_are_the_plain_model(comfy, vc2_model, fifo_run):
    positive, negative = _conds(fifo_run[1])
    latent = torch.zeros(8, 4, 8, 8)
    assert torch.equal(_ksample(_windowed(vc2_model, 8, 2), latent, positive, negative),
                       _ksample(vc2_model, latent, positive, negative))


def test_frame_local_model_with_flat_fusion_equals_the_unwindowed_run(comfy, vc2_model, fifo_run):
    from videocrafter_suite.bridge import vocabulary as V

    local = vc2_model.clone()
    local.model_options.setdefault("transformer_options", {})[V.TEMPORAL_OFF] = True  # frames independent
    positive, negative = _conds(fifo_run[1])
    latent = torch.zeros(10, 4, 8, 8)
    plain = _ksample(local, latent, positive, negative)
    windowed = _ksample(_windowed(local, 4, 2, fuse="flat"), latent, positive, negative)
    assert _relative(windowed, plain) <= 1e-5
    coupled = _ksample(_windowed(vc2_model, 4, 2, fuse="flat"), latent, positive, negative)
    assert _relative(coupled, _ksample(vc2_model, latent, positive, negative)) > 1e-3, "temporal layers see windows"


@pytest.mark.parametrize("sampler", ["heun", "dpmpp_2s_ancestral"])
def test_every_frame_is_covered_and_per_frame_conds_reach_their_frames(comfy, vc2_model, fifo_run, sampler):
    """A frame-coded per-frame condition (image tokens whose value is the frame index) must arrive in each
    window as exactly that window's frames, with multi-step samplers (sub-steps) too."""
    from videocrafter_suite.bridge import vocabulary as V

    frames, seen = 11, []

    def wrapper(apply_model, args):
        c = args["c"]
        window = c["transformer_options"]["context_window"].index_list
        image_context = c.get("image_context")
        if image_context is not None:
            coded = image_context[:, 0, 0].round().long().tolist()
            assert coded == list(window) * (len(coded) // len(window)), (coded, window)
        seen.append((tuple(window), image_context is not None))
        return apply_model(args["input"], args["timestep"], **c)

    model = _windowed(vc2_model, 4, 1)
    model.set_model_unet_function_wrapper(wrapper)
    text, uncond = fifo_run[1]["cond/text_emb"][:1], fifo_run[1]["cond/uncond_emb"][:1]
    coded = torch.arange(frames, dtype=torch.float32).reshape(frames, 1, 1).expand(frames, 2, 32).contiguous()
    positive = [[text, {"fps": 8, V.IMAGE_CONTEXT: coded}]]
    out = _ksample(model, torch.zeros(frames, 4, 8, 8), positive, [[uncond, {"fps": 8}]], sampler=sampler, steps=2)
    assert torch.isfinite(out).all()
    assert any(has for _w, has in seen), "the per-frame condition was never passed"
    covered = {frame for window, _has in seen for frame in window}
    assert covered == set(range(frames))
    assert all(len(window) == 4 for window, _has in seen)


def test_controlnet_hints_are_sliced_per_window_and_restored(comfy):
    from videocrafter_suite.bridge.video_context_windows import VideoContextHandler
    import comfy.context_windows as cw

    handler = VideoContextHandler(cw.get_matching_context_schedule("standard_static"),
                                  cw.get_matching_fuse_method("flat"), context_length=4, context_overlap=1)
    frames = 10
    hint = torch.arange(frames, dtype=torch.float32).reshape(frames, 1, 1, 1).expand(frames, 3, 8, 8)
    first = SimpleNamespace(cond_hint_original=hint, cond_hint="cached", previous_controlnet=None)
    control = SimpleNamespace(cond_hint_original=hint[:1], cond_hint=None, previous_controlnet=first)
    x = torch.zeros(frames, 4, 1, 1)
    for window in handler.get_context_windows(None, x, {}):
        handler.get_resized_cond([{"control": control, "model_conds": {}}], x, window)
        assert first.cond_hint_original[:, 0, 0, 0].tolist() == [float(i) for i in window.index_list]
        assert first.cond_hint is None
        assert control.cond_hint_original.shape[0] == 1, "a single hint for all frames is left alone"
    handler._restore_hints()
    assert first.cond_hint_original is hint


def test_core_gaps_are_detected_not_assumed(comfy):
    """On ComfyUI 0.3.75 both repairs are needed; on a release that has them the probes say so."""
    from videocrafter_suite.bridge import video_context_windows as W

    import comfy.context_windows as cw
    has_fixed_set_step = "timestep[0]" in __import__("inspect").getsource(cw.IndexListContextHandler.set_step)
    assert W.core_set_step_handles_video() == has_fixed_set_step
    assert isinstance(W.core_slices_per_frame_conds(), bool)


def test_with_a_core_that_has_the_fixes_the_core_methods_are_used(comfy):
    """A stand-in for newer ComfyUI (set_step on timestep[0] keeping the step on sub-steps; per-frame model conds
    sliced at dim 0): the probes detect it and the handler defers to it instead of repeating the repair."""
    import comfy.context_windows as cw

    from videocrafter_suite.bridge import video_context_windows as W

    class NewerCore(cw.IndexListContextHandler):
        calls = []

        def set_step(self, timestep, model_options):
            NewerCore.calls.append("set_step")
            matches = torch.nonzero(torch.isclose(model_options["transformer_options"]["sample_sigmas"],
                                                  timestep[0], rtol=0.0001))
            if torch.numel(matches):
                self._step = int(matches[0].item())

        def get_resized_cond(self, cond_in, x_in, window, device=None):
            out = super().get_resized_cond(cond_in, x_in, window, device)
            for cond in out:
                for key, value in list(cond.get("model_conds", {}).items()):
                    tensor = getattr(value, "cond", None)
                    if isinstance(tensor, torch.Tensor) and tensor.ndim and tensor.size(0) == x_in.size(0):
                        cond["model_conds"][key] = value._copy_with(tensor[window.index_list])
            return out

    assert W.core_set_step_handles_video(NewerCore) and W.core_slices_per_frame_conds(NewerCore)

    class Handler(W.VideoContextHandler, NewerCore):
        _core = NewerCore

    handler = Handler(cw.get_matching_context_schedule("standard_static"), cw.get_matching_fuse_method("flat"),
                      context_length=2, context_overlap=0)
    NewerCore.calls.clear()
    handler.set_step(torch.tensor([1.0, 1.0, 1.0]), {"transformer_options": {"sample_sigmas": torch.tensor([2.0, 1.0, 0.0])}})
    assert NewerCore.calls == ["set_step"] and handler._step == 1
    x = torch.zeros(4, 1)
    window = handler.get_context_windows(None, x, {})[1]
    cond = [{"model_conds": {"c": comfy.conds.CONDRegular(torch.arange(4.0).reshape(4, 1))}}]
    sliced = handler.get_resized_cond(cond, x, window)[0]["model_conds"]["c"].cond
    assert sliced.flatten().tolist() == [2.0, 3.0], "sliced once by the core, not again by the pack"
