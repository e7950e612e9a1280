"""Real server round trips: the example workflows (API twins) on tiny checkpoints, core KSampler,
bad inputs with clear errors, and the server still serving afterwards."""
import json

import pytest
import torch
from safetensors.torch import save_file

from tests.server import ExecutionFailed, PromptRejected, probe_media
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny

VARIANT_OF_WORKFLOW = {"videocrafter2_t2v_512": "vc2_t2v_512", "videocrafter1_t2v_1024": "vc1_t2v_1024"}


@pytest.fixture(scope="module")
def tiny_checkpoints(comfy_server, tiny_checkpoint):
    """Tiny checkpoints of every T2V variant in the server's models/checkpoints (exact released layout)."""
    folder = comfy_server.models_dir / "checkpoints"
    return {variant: tiny_checkpoint(variant, seed=1, folder=folder).name
            for variant in ("vc2_t2v_512", "vc1_t2v_1024", "vc1_t2v_512")}


def api_workflow(name, ckpt_name, *, steps=4, frames=8, seed=123):
    return shrink_for_tiny(load_api_workflow(name), ckpt_name=ckpt_name, steps=steps, frames=frames, seed=seed,
                           prefix=f"e2e/{name}")


def assert_video(server, result, frames):
    records = result.files()
    videos = [r for r in records if r["filename"].endswith(".mp4")]
    assert len(videos) == 1, records
    info = probe_media(server.output_path(videos[0]))
    assert (info.frame_count, info.width, info.height) == (frames, TINY_SIZE["width"], TINY_SIZE["height"])
    return info


@pytest.mark.parametrize("workflow", sorted(VARIANT_OF_WORKFLOW))
def test_example_workflow_runs_and_writes_a_video(comfy_server, tiny_checkpoints, workflow):
    graph = api_workflow(workflow, tiny_checkpoints[VARIANT_OF_WORKFLOW[workflow]], steps=4, frames=8)
    result = comfy_server.run(graph, timeout=600)
    progress = result.events("progress")
    assert progress and max(p["max"] for p in progress) == 4, "the sampler reports per-step progress on /ws"
    info = assert_video(comfy_server, result, frames=8)
    assert info.fps == pytest.approx(10, abs=0.01)


def test_same_seed_gives_the_same_video_and_another_seed_does_not(comfy_server, tiny_checkpoints):
    """Seeds 5, 6, 5: the third prompt differs from the one before it, so ComfyUI really samples again
    (asserted on its per-step progress) instead of answering from its cache; the sampled LATENTS are
    compared (core SaveLatent), not h264 bytes, which are not bit-stable under load."""
    from safetensors.torch import load_file

    latents = []
    for seed in (5, 6, 5):
        graph = api_workflow("videocrafter2_t2v_512", tiny_checkpoints["vc2_t2v_512"], steps=3, frames=4, seed=seed)
        sampled = node_of(graph, "SamplerCustomAdvanced")
        graph["save_latent"] = {"class_type": "SaveLatent",
                                "inputs": {"samples": [sampled, 0], "filename_prefix": "e2e/determinism"}}
        result = comfy_server.run(graph)
        assert sampled in {str(event.get("node")) for event in result.events("progress")}, "the sampler ran again"
        record = [r for r in result.files("save_latent") if r["filename"].endswith(".latent")][0]
        latents.append(load_file(comfy_server.output_path(record))["latent_tensor"])
    assert latents[0].shape == (4, 4, 6, 8) and torch.isfinite(latents[0]).all()
    assert torch.equal(latents[0], latents[2]), "same seed, same latent, bit for bit"
    assert (latents[0] - latents[1]).abs().mean() > 0.1 * latents[0].abs().mean(), "another seed, another video"


@pytest.mark.parametrize("sampler_name", ["euler", "dpmpp_2m"])
def test_workflow_with_core_ksampler(comfy_server, tiny_checkpoints, sampler_name):
    graph = api_workflow("videocrafter2_t2v_512", tiny_checkpoints["vc2_t2v_512"], frames=8)
    sample = node_of(graph, "SamplerCustomAdvanced")
    conditioning = node_of(graph, "VideoCrafterVideoConditioning")
    for kind in ("SamplerCustomAdvanced", "CFGGuider", "VideoCrafterNoise", "VideoCrafterDDIMSampler",
                 "VideoCrafterDDIMSigmas"):
        del graph[node_of(graph, kind)]
    graph[sample] = {"class_type": "KSampler", "inputs": {
        "model": [node_of(graph, "VideoCrafterCheckpointLoader"), 0], "positive": [conditioning, 0],
        "negative": [conditioning, 1], "latent_image": [node_of(graph, "VideoCrafterEmptyVideoLatent"), 0],
        "seed": 1, "steps": 4, "cfg": 12.0, "sampler_name": sampler_name, "scheduler": "normal", "denoise": 1.0}}
    result = comfy_server.run(graph)
    assert_video(comfy_server, result, frames=8)


def test_vc1_512_checkpoint_without_fps_input_runs(comfy_server, tiny_checkpoints):
    graph = api_workflow("videocrafter2_t2v_512", tiny_checkpoints["vc1_t2v_512"], steps=2, frames=4)
    assert_video(comfy_server, comfy_server.run(graph), frames=4)


# ----------------------------------------------------------------------------------------- bad input
def still_serving(server, tiny_checkpoints):
    graph = api_workflow("videocrafter2_t2v_512", tiny_checkpoints["vc2_t2v_512"], steps=1, frames=2)
    assert server.run(graph).succeeded


@pytest.mark.parametrize("field,value,message", [
    ("height", 0, "height"),
    ("frames", 0, "frames"),
    ("width", 100000, "width"),
])
def test_bad_sizes_are_rejected_before_compute(comfy_server, tiny_checkpoints, field, value, message):
    graph = api_workflow("videocrafter2_t2v_512", tiny_checkpoints["vc2_t2v_512"])
    graph[node_of(graph, "VideoCrafterEmptyVideoLatent")]["inputs"][field] = value
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.queue(graph)
    errors = [error for node in rejected.value.node_errors.values() for error in node["errors"]]
    assert [error["extra_info"]["input_name"] for error in errors] == [field], errors  # one error, on that input
    assert message in json.dumps(errors)
    still_serving(comfy_server, tiny_checkpoints)


def test_image_model_checkpoint_gives_one_clear_error(comfy_server, tiny_checkpoints):
    sd15_like = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3),
                 "model.diffusion_model.input_blocks.1.1.proj_in.weight": torch.zeros(32, 32, 1, 1),
                 "model.diffusion_model.out.2.weight": torch.zeros(4, 32, 3, 3)}
    save_file(sd15_like, str(comfy_server.models_dir / "checkpoints" / "sd15_like.safetensors"))
    graph = api_workflow("videocrafter2_t2v_512", "sd15_like.safetensors")
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    error = failed.value.result.error
    assert "no temporal layers" in error["exception_message"] and "image model" in error["exception_message"]
    still_serving(comfy_server, tiny_checkpoints)


def test_malicious_pickle_checkpoint_is_refused_on_the_server(comfy_server, tiny_checkpoints, tmp_path):
    from tests.test_checkpoint_io import write_malicious_ckpt

    marker = tmp_path / "pwned_by_server"
    write_malicious_ckpt(comfy_server.models_dir / "checkpoints" / "evil.ckpt", marker)
    graph = api_workflow("videocrafter2_t2v_512", "evil.ckpt")
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    message = failed.value.result.error["exception_message"]
    assert "refused to load the checkpoint 'evil.ckpt'" in message and "disallowed global" in message and ".system" in message
    convert = {"1": {"class_type": "VideoCrafterConvertCheckpoint", "inputs": {"ckpt_name": "evil.ckpt", "overwrite": False}}}
    with pytest.raises(ExecutionFailed):
        comfy_server.run(convert)
    assert not marker.exists()
    leftovers = [p.name for p in (comfy_server.models_dir / "checkpoints").iterdir() if p.name.startswith((".partial", "evil.safe"))]
    assert leftovers == []
    still_serving(comfy_server, tiny_checkpoints)


def test_convert_node_round_trip_then_load(comfy_server, tiny_checkpoints):
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec

    folder = comfy_server.models_dir / "checkpoints"
    state = make_tiny_state_dict(tiny_spec("vc2_t2v_512", seed=2))
    torch.save({"state_dict": state, "global_step": 1}, folder / "released_layout.ckpt")
    convert = {"1": {"class_type": "VideoCrafterConvertCheckpoint",
                     "inputs": {"ckpt_name": "released_layout.ckpt", "overwrite": True}}}
    comfy_server.run(convert)
    from safetensors.torch import load_file

    converted = load_file(folder / "released_layout.safetensors")
    assert set(converted) == set(state) and all(torch.equal(converted[k], state[k]) for k in state)
    graph = api_workflow("videocrafter2_t2v_512", "released_layout.safetensors", steps=2, frames=4)
    assert_video(comfy_server, comfy_server.run(graph), frames=4)
