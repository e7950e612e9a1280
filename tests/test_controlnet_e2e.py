"""Real server: the experimental example workflow 'videocrafter2_depth_controlnet_experimental' (API twin) on tiny
files — a user's clip (mp4 in input/) → frames → MiDaS depth (tiny DPT-Hybrid) → core ControlNetLoader (tiny
ControlNet built with core's classes) → Apply ControlNet per frame → KSampler on a tiny VideoCrafter2 → video
with the expected frame count and size; a ControlNet made for another UNet gives one clear error naming the
block, and the server keeps serving."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.server import ExecutionFailed, probe_media
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny

WORKFLOW = "videocrafter2_depth_controlnet_experimental"
FRAMES = 4


def _write_clip(path, frames=6, width=80, height=64):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            x = np.linspace(0, 255, width)[None, :] * np.ones((height, 1))
            rgb = np.stack([x, np.roll(x, 7 * i, axis=1), np.full_like(x, 60)], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def files(comfy_server, comfy_path):
    from tests.tiny_controlnet import TINY_CONTROLNET_SPEC, make_tiny_controlnet_state
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec, tiny_unet_config
    from videocrafter_suite.devkit.tiny_dpt import save_tiny_dpt

    folders = {name: comfy_server.models_dir / name for name in ("checkpoints", "controlnet", "depth")}
    for folder in [*folders.values(), comfy_server.input_dir]:
        folder.mkdir(parents=True, exist_ok=True)
    spec = tiny_spec(**TINY_CONTROLNET_SPEC)
    save_file(make_tiny_state_dict(spec), str(folders["checkpoints"] / "tiny_vc2_64_for_control.safetensors"))
    save_file(make_tiny_controlnet_state(tiny_unet_config(spec)), str(folders["controlnet"] / "tiny_control.safetensors"))
    other = tiny_unet_config(tiny_spec("vc2_t2v_512", seed=2, model_channels=128))
    save_file(make_tiny_controlnet_state(other), str(folders["controlnet"] / "tiny_control_other_widths.safetensors"))
    save_tiny_dpt(folders["depth"] / "tiny_dpt_for_control.pt", "vitb_rn50_384", seed=21)
    _write_clip(comfy_server.input_dir / "control_clip.mp4")
    return {"ckpt": "tiny_vc2_64_for_control.safetensors", "control": "tiny_control.safetensors",
            "other": "tiny_control_other_widths.safetensors", "depth": "tiny_dpt_for_control.pt",
            "clip": "control_clip.mp4"}


def control_workflow(files, control="control", prefix="e2e/depth_control"):
    graph = shrink_for_tiny(load_api_workflow(WORKFLOW), ckpt_name=files["ckpt"], frames=FRAMES, prefix=prefix)
    graph[node_of(graph, "LoadVideo")]["inputs"]["file"] = files["clip"]
    graph[node_of(graph, "ImageFromBatch")]["inputs"]["length"] = FRAMES
    graph[node_of(graph, "ImageScale")]["inputs"].update(TINY_SIZE)
    graph[node_of(graph, "VideoCrafterDepthModelLoader")]["inputs"]["model_name"] = files["depth"]
    graph[node_of(graph, "VideoCrafterDepthEstimator")]["inputs"]["resolution"] = 64
    graph[node_of(graph, "ControlNetLoader")]["inputs"]["control_net_name"] = files[control]
    graph[node_of(graph, "KSampler")]["inputs"]["steps"] = 2
    return graph


def test_depth_controlnet_workflow_turns_a_clip_into_a_video(comfy_server, files):
    result = comfy_server.run(control_workflow(files), timeout=900)
    videos = [r for r in result.files() if r["filename"].endswith(".mp4")]
    assert len(videos) == 1
    info = probe_media(comfy_server.output_path(videos[0]))
    assert (info.frame_count, info.width, info.height) == (FRAMES, TINY_SIZE["width"], TINY_SIZE["height"])


def test_controlnet_for_another_unet_gives_one_clear_error_and_the_server_keeps_serving(comfy_server, files):
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(control_workflow(files, control="other", prefix="e2e/depth_control_bad"), timeout=900)
    error = failed.value.result.error
    assert "control residual for the UNet's" in error["exception_message"]
    assert "made for a UNet with other widths" in error["exception_message"]
    assert comfy_server.run(control_workflow(files, prefix="e2e/depth_control_again"), timeout=900).succeeded
