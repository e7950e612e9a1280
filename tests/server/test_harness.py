"""The e2e harness itself, exercised with ComfyUI core nodes only.

Why: every end-to-end test trusts the harness to report what happened (files, websocket
messages, validation and execution errors). These checks use no pack node, so a harness bug
is told apart from a pack bug.
"""
from __future__ import annotations

import pytest

from tests.server.harness import ExecutionFailed, PromptRejected
from tests.server.media import probe_media, read_frames

pytestmark = pytest.mark.server

BLACK, WHITE = 0x000000, 0xFFFFFF


def _two_frames() -> dict:
    """Two 64×48 frames, black then white (identical frames would be merged by the WebP encoder)."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": BLACK}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": WHITE}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
    }


def test_run_records_messages_and_outputs(comfy_server):
    graph = {**_two_frames(),
             "4": {"class_type": "SaveAnimatedWEBP", "inputs": {
                 "images": ["3", 0], "filename_prefix": "harness/webp", "fps": 8.0, "lossless": True,
                 "quality": 100, "method": "default"}}}
    result = comfy_server.run(graph, timeout=120)

    kinds = [m["type"] for m in result.messages]
    assert kinds[0] == "execution_start" and "execution_success" in kinds, kinds
    assert {e["node"] for e in result.events("executed")} == {"4"}
    [record] = result.files("4")
    assert record["subfolder"] == "harness"
    assert probe_media(comfy_server.output_path(record)).as_tuple() == (2, 64, 48, 8.0)
    assert comfy_server.view_output(record) == comfy_server.output_path(record).read_bytes()
    frames = read_frames(comfy_server.output_path(record))
    assert frames[0].max() == 0 and frames[1].min() == 255


def test_validation_error_carries_the_server_json(comfy_server):
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "does-not-exist.png"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(PromptRejected) as caught:
        comfy_server.queue(graph)
    assert caught.value.status == 400
    assert caught.value.error["type"] == "prompt_outputs_failed_validation"
    assert "does-not-exist.png" in str(caught.value.node_errors["1"])


def test_execution_error_is_reported(comfy_server):
    graph = {**_two_frames(),  # ImageToMask(alpha) of an RGB image: IndexError while executing
             "4": {"class_type": "ImageToMask", "inputs": {"image": ["3", 0], "channel": "alpha"}},
             "5": {"class_type": "MaskPreview", "inputs": {"mask": ["4", 0]}}}
    result = comfy_server.run(graph, timeout=120, check=False)
    assert result.status == "error" and not result.succeeded
    assert result.error["node_id"] == "4" and result.error["exception_type"].endswith("IndexError")
    with pytest.raises(ExecutionFailed, match="IndexError"):
        result.raise_for_error()
