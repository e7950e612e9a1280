"""Real server: the three StyleCrafter example workflows (API twins) on tiny checkpoints in the released layouts
(VC1-512 base + adapter_v1 + temporal_v1_1 from the factories), and bad inputs with one clear error each while
the server keeps serving.

The tiny style encoder is the tiny I2V checkpoint's CLIP_VISION (core's 'Load CLIP Vision' only recognises
full-size encoders), so each graph's CLIPVisionLoader is swapped for 'Load VideoCrafter Checkpoint' on it."""
import json
import time

import pytest
import torch

from tests.server import ExecutionFailed, PromptRejected, probe_media
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny



@pytest.fixture(scope="module")
def style_files(comfy_server, tiny_checkpoint):
    from PIL import Image

    from videocrafter_suite.devkit.tiny_checkpoint import tiny_spec
    from videocrafter_suite.devkit.tiny_stylecrafter import make_tiny_adapter_state, make_tiny_temporal_state

    checkpoints = comfy_server.models_dir / "checkpoints"
    stylecrafter = comfy_server.models_dir / "stylecrafter"
    for folder in (checkpoints, stylecrafter, comfy_server.input_dir):
        folder.mkdir(parents=True, exist_ok=True)
    base = tiny_spec("vc1_t2v_512", seed=3)
    files = {"base": tiny_checkpoint("vc1_t2v_512", seed=3, folder=checkpoints).name,
             "vc2": tiny_checkpoint("vc2_t2v_512", seed=3, folder=checkpoints).name,
             "clip": tiny_checkpoint("vc1_i2v_512", seed=4, folder=checkpoints).name,
             "clip_wide": tiny_checkpoint("vc1_i2v_512", seed=4, folder=checkpoints, vision_width=192).name}
    torch.save(make_tiny_adapter_state(base), stylecrafter / "adapter_v1.pth")
    torch.save(make_tiny_temporal_state(base), stylecrafter / "temporal_v1_1.pth")
    gradient = torch.linspace(0, 255, 96).round().to(torch.uint8)
    stripes = torch.stack([gradient.view(1, -1).expand(80, -1), gradient.flip(0).view(1, -1).expand(80, -1),
                           torch.full((80, 96), 40, dtype=torch.uint8)], -1)
    Image.fromarray(stripes.numpy()).save(comfy_server.input_dir / "style.png")
    Image.fromarray(stripes.transpose(0, 1).flip(0).contiguous().numpy()).save(comfy_server.input_dir / "style_2.png")
    return files


def style_workflow(name, files, *, steps=2, frames=4, clip="clip", base="base", prefix=None):
    """The API twin on tiny files: the CLIP vision comes from the tiny I2V checkpoint (core's loader
    cannot build a tiny encoder), so the CLIPVisionLoader node is swapped for our loader's 4th output."""
    graph = shrink_for_tiny(load_api_workflow(name), ckpt_name=files[base], steps=steps, frames=frames,
                            prefix=prefix or f"e2e/{name}")
    clip_node = node_of(graph, "CLIPVisionLoader")
    graph[clip_node] = {"class_type": "VideoCrafterCheckpointLoader", "inputs": {"ckpt_name": files[clip]}}
    for node in graph.values():
        for key, value in node["inputs"].items():
            if value == [clip_node, 0]:
                node["inputs"][key] = [clip_node, 3]
    return graph


@pytest.mark.parametrize("name,frames", [("stylecrafter_style_video", 4), ("stylecrafter_multi_reference_video", 4),
                                         ("stylecrafter_style_image", 1)])
def test_example_workflow_runs_on_tiny_checkpoints(comfy_server, style_files, name, frames):
    start = time.perf_counter()
    result = comfy_server.run(style_workflow(name, style_files, steps=2, frames=frames), timeout=600)
    print(f"{name}: {time.perf_counter() - start:.2f} s (2 steps, {frames} frame(s), {TINY_SIZE['width']}x{TINY_SIZE['height']})")
    records = result.files()
    if frames == 1:
        images = [r for r in records if r["filename"].endswith(".png")]
        assert len(images) == 1, records
        from PIL import Image

        with Image.open(comfy_server.output_path(images[0])) as image:
            assert image.size == (TINY_SIZE["width"], TINY_SIZE["height"])
    else:
        videos = [r for r in records if r["filename"].endswith(".mp4")]
        assert len(videos) == 1, records
        info = probe_media(comfy_server.output_path(videos[0]))
        assert (info.frame_count, info.width, info.height) == (frames, TINY_SIZE["width"], TINY_SIZE["height"])


def still_serving(server, files):
    assert server.run(style_workflow("stylecrafter_style_image", files, steps=1, prefix="e2e/still")).succeeded


def failure(server, graph):
    with pytest.raises(ExecutionFailed) as failed:
        server.run(graph)
    return failed.value.result.error


def test_adapter_without_base_is_rejected_before_compute(comfy_server, style_files):
    graph = style_workflow("stylecrafter_style_video", style_files)
    del graph[node_of(graph, "VideoCrafterStyleCrafterLoader")]["inputs"]["model"]
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.queue(graph)
    assert "model" in json.dumps(rejected.value.node_errors)
    still_serving(comfy_server, style_files)


def test_base_of_the_wrong_family_gives_one_clear_error(comfy_server, style_files):
    error = failure(comfy_server, style_workflow("stylecrafter_style_video", style_files, base="vc2"))
    assert error["node_type"] == "VideoCrafterStyleCrafterLoader"
    assert "VideoCrafter1 text-to-video 512" in error["exception_message"]
    assert "VideoCrafter2" in error["exception_message"]
    still_serving(comfy_server, style_files)


def test_zero_style_images_give_one_clear_error(comfy_server, style_files):
    """No style image wired: rejected before compute, naming the input. (Core nodes cannot make an empty IMAGE
    batch; the node's own 'no style image' error for one is tested in-process, tests/test_style_nodes.py.)"""
    graph = style_workflow("stylecrafter_style_video", style_files)
    del graph[node_of(graph, "VideoCrafterStyleConditioning")]["inputs"]["style_images"]
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.queue(graph)
    assert "style_images" in json.dumps(rejected.value.node_errors)
    still_serving(comfy_server, style_files)


def test_mismatched_clip_vision_gives_one_clear_error(comfy_server, style_files):
    error = failure(comfy_server, style_workflow("stylecrafter_style_video", style_files, clip="clip_wide"))
    assert error["node_type"] == "VideoCrafterStyleConditioning"
    assert "192-wide tokens" in error["exception_message"] and "ViT-H/14" in error["exception_message"]
    still_serving(comfy_server, style_files)


def test_temporal_file_as_adapter_gives_one_clear_error(comfy_server, style_files):
    graph = style_workflow("stylecrafter_style_video", style_files)
    graph[node_of(graph, "VideoCrafterStyleCrafterLoader")]["inputs"]["adapter_name"] = "temporal_v1_1.pth"
    error = failure(comfy_server, graph)
    assert error["node_type"] == "VideoCrafterStyleCrafterLoader" and "not a StyleCrafter style adapter" in error["exception_message"]
    still_serving(comfy_server, style_files)
