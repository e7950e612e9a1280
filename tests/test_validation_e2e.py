"""Real server (the session's ComfyUI, whichever host is selected): bad inputs a headless user sends
through the HTTP API are refused with ONE message that names the wrong input and says what to do,
before sampling, and the server keeps serving. Each case failed on the code before the fix
(issue 13, issue 11 §3): it ran to "success", crashed deep in the UNet, or named the wrong inputs.
"""
import math

import pytest
import torch
from safetensors.torch import save_file

from tests.server import ExecutionFailed, PromptRejected
from tests.server.workflows import load_api_workflow, node_of, shrink_for_tiny
from tests.test_e2e_style import style_files, style_workflow  # noqa: F401  (module fixture + graph helper)

T2V = "videocrafter2_t2v_512"


@pytest.fixture(scope="module")
def checkpoints(comfy_server):
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec

    folder = comfy_server.models_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    names = {"t2v": ("vc2_t2v_512", {}), "i2v": ("vc1_i2v_512", {}), "wide_clip": ("vc2_t2v_512", {"text_width": 128})}
    files = {}
    for key, (variant, overrides) in names.items():
        files[key] = f"validation_{key}.safetensors"
        save_file(make_tiny_state_dict(tiny_spec(variant, seed=7, **overrides)), str(folder / files[key]))
    return files


def t2v_graph(checkpoints, *, frames=4, steps=2, ckpt="t2v"):
    return shrink_for_tiny(load_api_workflow(T2V), ckpt_name=checkpoints[ckpt], steps=steps, frames=frames,
                           prefix="e2e/validation")


def refusal(server, graph):
    """Every message the server gave for a refused graph, and the run (None when refused at validation)."""
    try:
        server.run(graph)
    except PromptRejected as rejected:
        return [f"{error.get('extra_info', {}).get('input_name', '')}: {error['details']}"
                for node in rejected.node_errors.values() for error in node["errors"]], None
    except ExecutionFailed as failed:
        return [failed.result.error["exception_message"]], failed.result
    pytest.fail("the graph ran to success")


def still_serving(server, checkpoints):
    assert server.run(t2v_graph(checkpoints, frames=2, steps=1)).succeeded


def test_one_bad_width_is_one_message_naming_width_only(comfy_server, checkpoints):
    graph = t2v_graph(checkpoints)
    graph[node_of(graph, "VideoCrafterEmptyVideoLatent")]["inputs"]["width"] = 100
    messages, _ = refusal(comfy_server, graph)
    assert len(messages) == 1, messages
    assert "width" in messages[0] and "height" not in messages[0] and "frames" not in messages[0], messages


@pytest.mark.parametrize("node,field", [("VideoCrafterDDIMSampler", "eta"), ("VideoCrafterDDIMSigmas", "denoise")])
def test_nan_float_is_refused_naming_the_input(comfy_server, checkpoints, node, field):
    graph = t2v_graph(checkpoints)
    graph[node_of(graph, node)]["inputs"][field] = math.nan
    messages, run = refusal(comfy_server, graph)
    assert len(messages) == 1 and f"'{field}'" in messages[0] and "finite" in messages[0], messages
    assert run is None or not run.events("progress"), "refused before sampling"
    still_serving(comfy_server, checkpoints)


@pytest.mark.parametrize("field,value", [("style_attention", "scaled"), ("style_attention", "bogus")])
def test_a_dropdown_typo_is_refused_listing_the_valid_values(comfy_server, style_files, field, value):  # noqa: F811
    spec = comfy_server.object_info("VideoCrafterStyleConditioning")["VideoCrafterStyleConditioning"]
    options = spec["input"]["required"]["style_attention"]
    options = options[1]["options"] if options[0] == "COMBO" else options[0]
    graph = style_workflow("stylecrafter_style_video", style_files)
    graph[node_of(graph, "VideoCrafterStyleConditioning")]["inputs"][field] = value
    messages, run = refusal(comfy_server, graph)
    assert len(messages) == 1 and field in messages[0], messages
    assert len(options) == 2 and all(option in messages[0] for option in options), messages
    assert run is None or not run.events("progress")


@pytest.mark.parametrize("value", ["Image", "bogus"])
def test_a_stylecrafter_mode_typo_is_refused(comfy_server, style_files, value):  # noqa: F811
    graph = style_workflow("stylecrafter_style_video", style_files)
    graph[node_of(graph, "VideoCrafterStyleCrafterLoader")]["inputs"]["mode"] = value
    messages, _ = refusal(comfy_server, graph)
    assert len(messages) == 1 and "mode" in messages[0] and "'video'" in messages[0] and "'image'" in messages[0]


def test_a_width_the_unet_cannot_halve_is_refused_before_sampling(comfy_server, checkpoints):
    graph = t2v_graph(checkpoints)
    graph[node_of(graph, "VideoCrafterEmptyVideoLatent")]["inputs"]["width"] = 72  # latent 9, one downsample
    messages, run = refusal(comfy_server, graph)
    assert run is not None and not run.events("progress"), "refused before the first step"
    assert "multiples of 16 pixels" in messages[0] and "64×48" in messages[0] and "80×48" in messages[0], messages


def test_a_core_empty_latent_of_300_frames_is_refused_at_the_model(comfy_server, checkpoints):
    graph = t2v_graph(checkpoints)
    latent = node_of(graph, "VideoCrafterEmptyVideoLatent")
    graph[latent] = {"class_type": "EmptyLatentImage", "inputs": {"width": 16, "height": 16, "batch_size": 300}}
    messages, run = refusal(comfy_server, graph)
    assert run is not None and not run.events("progress")
    assert "300 frames" in messages[0] and "at most 256" in messages[0], messages


def test_a_prompt_from_another_clip_names_both_widths(comfy_server, checkpoints):
    graph = t2v_graph(checkpoints)
    graph["wide_clip_loader"] = {"class_type": "VideoCrafterCheckpointLoader",
                                 "inputs": {"ckpt_name": checkpoints["wide_clip"]}}
    for node in graph.values():
        if node["class_type"] == "CLIPTextEncode":
            node["inputs"]["clip"] = ["wide_clip_loader", 1]
    messages, run = refusal(comfy_server, graph)
    assert run is not None and not run.events("progress")
    assert "is 128 wide" in messages[0] and "expects 64" in messages[0], messages


def test_an_i2v_checkpoint_in_the_text_to_video_graph_names_the_node_to_add(comfy_server, checkpoints):
    messages, run = refusal(comfy_server, t2v_graph(checkpoints, ckpt="i2v"))
    assert run is not None and not run.events("progress")
    assert "'VideoCrafter Image-to-Video Conditioning'" in messages[0], messages
    still_serving(comfy_server, checkpoints)


def test_convert_node_reruns_when_its_files_change(comfy_server):
    from safetensors.torch import load_file

    folder = comfy_server.models_dir / "checkpoints"
    source, written = folder / "cache_probe.ckpt", folder / "cache_probe.safetensors"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, source)
    graph = {"1": {"class_type": "VideoCrafterConvertCheckpoint",
                   "inputs": {"ckpt_name": "cache_probe.ckpt", "overwrite": True}}}
    comfy_server.run(graph)
    assert torch.equal(load_file(written)["w"], torch.zeros(3))
    written.unlink()
    comfy_server.run(graph)
    assert written.exists(), "the same prompt after the output was deleted wrote it again (not a cached answer)"
    torch.save({"state_dict": {"w": torch.ones(3)}}, source)
    comfy_server.run(graph)
    assert torch.equal(load_file(written)["w"], torch.ones(3)), "a changed source is converted again"
