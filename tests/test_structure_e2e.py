"""Real server: the Make-Your-Video video-to-video example workflows on tiny models (a clip in, a video out with
the expected frame count and size), and bad inputs that give one clear error each while the server keeps serving.

The depth comes from the pack's MiDaS nodes when the server has them ('VideoCrafterDepthEstimator' on a tiny
DPT-Hybrid); otherwise the sampled frames themselves are connected as the depth IMAGE — which is exactly the "depth
IMAGE from another pack" path (any near = bright image is accepted)."""
import json

import av
import numpy as np
import pytest
from safetensors.torch import save_file

from tests.pack import PACK_ROOT
from tests.server import ExecutionFailed
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny

CLIP = "myv_source_clip.mp4"
DEPTH_MODEL = "dpt_hybrid-midas-501f0c75.pt"
FRAMES = 4


def write_clip(path, frames=12, width=80, height=64):
    """A moving diagonal gradient, h264 in mp4 (PyAV)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        y, x = np.mgrid[0:height, 0:width]
        for i in range(frames):
            value = ((x + y + 6 * i) % 64) * 4
            rgb = np.stack([value, 255 - value, (value // 2) + 64], axis=-1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def myv_setup(comfy_server):
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec
    from videocrafter_suite.devkit.tiny_makeyourvideo import save_tiny_makeyourvideo

    checkpoints = comfy_server.models_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    save_tiny_makeyourvideo(checkpoints / "tiny_makeyourvideo.safetensors", "safetensors", seed=1)
    save_file(make_tiny_state_dict(tiny_spec("vc2_t2v_512", seed=1)), str(checkpoints / "tiny_myv_t2v.safetensors"))
    comfy_server.input_dir.mkdir(parents=True, exist_ok=True)
    write_clip(comfy_server.input_dir / CLIP)
    has_dpt = bool(comfy_server.object_info("VideoCrafterDepthEstimator"))
    assert has_dpt == (PACK_ROOT / "nodes" / "depth_estimation.py").is_file(), "the pack's depth nodes did not load"
    if has_dpt:
        from videocrafter_suite.devkit.tiny_dpt import save_tiny_dpt

        (comfy_server.models_dir / "depth").mkdir(parents=True, exist_ok=True)
        save_tiny_dpt(comfy_server.models_dir / "depth" / DEPTH_MODEL)
    return {"has_dpt": has_dpt}


def v2v_graph(name, setup, *, ckpt="tiny_makeyourvideo.safetensors", frames=FRAMES, steps=2):
    graph = shrink_for_tiny(load_api_workflow(name), ckpt_name=ckpt, steps=steps, frames=frames, seed=7,
                            prefix=f"e2e/{name}")
    graph[node_of(graph, "LoadVideo")]["inputs"]["file"] = CLIP
    graph[node_of(graph, "VideoCrafterSampleClip")]["inputs"].update(frames=FRAMES, **TINY_SIZE)
    if not setup["has_dpt"]:  # a depth IMAGE from elsewhere: the sampled frames themselves
        structure = graph[node_of(graph, "VideoCrafterStructureConditioning")]["inputs"]
        structure["depth"] = [node_of(graph, "VideoCrafterSampleClip"), 0]
        del graph[node_of(graph, "VideoCrafterDepthEstimator")], graph[node_of(graph, "VideoCrafterDepthModelLoader")]
    return graph


def the_video(server, result):
    from tests.server import probe_media

    videos = [r for r in result.files() if r["filename"].endswith(".mp4")]
    assert len(videos) == 1, result.files()
    return probe_media(server.output_path(videos[0]))


@pytest.mark.parametrize("workflow", ["makeyourvideo_depth_v2v", "makeyourvideo_depth_v2v_latent_init"])
def test_v2v_workflow_turns_a_clip_into_a_video(comfy_server, myv_setup, workflow):
    result = comfy_server.run(v2v_graph(workflow, myv_setup), timeout=900)
    info = the_video(comfy_server, result)
    assert (info.frame_count, info.width, info.height) == (FRAMES, TINY_SIZE["width"], TINY_SIZE["height"])
    assert info.fps == pytest.approx(8, abs=0.01)


def still_serving(server, setup):
    assert server.run(v2v_graph("makeyourvideo_depth_v2v", setup, steps=1)).succeeded


def failure(server, graph) -> str:
    with pytest.raises(ExecutionFailed) as failed:
        server.run(graph)
    return failed.value.result.error["exception_message"]


def test_depth_frames_not_matching_the_latent(comfy_server, myv_setup):
    graph = v2v_graph("makeyourvideo_depth_v2v", myv_setup, frames=FRAMES - 1)
    assert f"depth has {FRAMES} frames but the latent has {FRAMES - 1}" in failure(comfy_server, graph)
    still_serving(comfy_server, myv_setup)


def test_text_to_video_checkpoint_given_depth(comfy_server, myv_setup):
    graph = v2v_graph("makeyourvideo_depth_v2v", myv_setup, ckpt="tiny_myv_t2v.safetensors")
    message = failure(comfy_server, graph)
    assert "model: the VideoCrafter2 text-to-video 512 model has no depth input channel" in message
    still_serving(comfy_server, myv_setup)


def test_corrupt_depth_file(comfy_server, myv_setup):
    graph = v2v_graph("makeyourvideo_depth_v2v", myv_setup)
    if myv_setup["has_dpt"]:  # corrupt depth-estimator weights
        (comfy_server.models_dir / "depth" / "corrupt_depth.pt").write_bytes(b"not a checkpoint" * 64)
        graph[node_of(graph, "VideoCrafterDepthModelLoader")]["inputs"]["model_name"] = "corrupt_depth.pt"
        expected = "corrupt_depth.pt"
    else:  # a corrupt depth video, loaded by core nodes and connected as the depth IMAGE
        (comfy_server.input_dir / "corrupt_depth.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 64)
        graph["90"] = {"class_type": "LoadVideo", "inputs": {"file": "corrupt_depth.mp4"}}
        graph["91"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["90", 0]}}
        graph[node_of(graph, "VideoCrafterStructureConditioning")]["inputs"]["depth"] = ["91", 0]
        expected = "corrupt_depth.mp4"
    message = failure(comfy_server, graph)
    assert expected in message, json.dumps(message)
    still_serving(comfy_server, myv_setup)
