"""Real server: Load Image → Repeat Image Batch (a 3-frame clip) → Load Depth Model (tiny DPT-Hybrid .pt in
models/depth) → Estimate Video Depth → Save Image: one depth frame per input frame at the input size, grey
(3 equal channels) and spanning 0..255 per frame; a corrupt depth file gives one clear error from the loader
and the server keeps serving."""
import numpy as np
import pytest
import torch

from tests.server import ExecutionFailed

FRAME_W, FRAME_H = 48, 40


@pytest.fixture(scope="module")
def depth_files(comfy_server):
    from PIL import Image

    from videocrafter_suite.devkit.tiny_dpt import save_tiny_dpt

    depth = comfy_server.models_dir / "depth"
    for folder in (depth, comfy_server.input_dir):
        folder.mkdir(parents=True, exist_ok=True)
    save_tiny_dpt(depth / "e2e_tiny_dpt_hybrid.pt", "vitb_rn50_384", seed=21)
    (depth / "e2e_corrupt_depth.pt").write_bytes(b"this is not a checkpoint")
    ramp = torch.linspace(0, 255, FRAME_W).round().to(torch.uint8)
    picture = torch.stack([ramp.view(1, -1).expand(FRAME_H, -1), ramp.flip(0).view(1, -1).expand(FRAME_H, -1),
                           torch.full((FRAME_H, FRAME_W), 90, dtype=torch.uint8)], -1)
    Image.fromarray(picture.numpy()).save(comfy_server.input_dir / "depth_source.png")
    return {"good": "e2e_tiny_dpt_hybrid.pt", "corrupt": "e2e_corrupt_depth.pt"}


def depth_graph(model_name, frames=3, prefix="e2e/depth"):
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "depth_source.png"}},
        "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": frames}},
        "3": {"class_type": "VideoCrafterDepthModelLoader", "inputs": {"model_name": model_name}},
        "4": {"class_type": "VideoCrafterDepthEstimator",
              "inputs": {"depth_model": ["3", 0], "images": ["2", 0], "batch_size": 2, "resolution": 64,
                         "output_size": "input size"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }


def test_depth_video_from_a_clip(comfy_server, depth_files):
    from PIL import Image

    result = comfy_server.run(depth_graph(depth_files["good"]), timeout=600)
    images = result.files("5")
    assert len(images) == 3
    for record in images:
        with Image.open(comfy_server.output_path(record)) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert pixels.shape == (FRAME_H, FRAME_W, 3)
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()
        assert pixels.min() == 0 and pixels.max() >= 254


def test_corrupt_depth_file_gives_one_clear_error_and_the_server_keeps_serving(comfy_server, depth_files):
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(depth_graph(depth_files["corrupt"], prefix="e2e/depth_bad"))
    error = failed.value.result.error
    assert error["node_type"] == "VideoCrafterDepthModelLoader"
    assert "model_name" in error["exception_message"] and "e2e_corrupt_depth.pt" in error["exception_message"]
    assert "MiDaS" in error["exception_message"]
    assert comfy_server.run(depth_graph(depth_files["good"], frames=1, prefix="e2e/depth_again")).succeeded
