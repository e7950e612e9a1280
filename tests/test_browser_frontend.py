"""The pack in the real ComfyUI frontend (headless Chromium, playwright-core, ComfyUI 0.3.75's
frontend package): every example workflow loads with no missing node types and no errors from our
extension, ``app.graphToPrompt()`` gives exactly the API twin (so the UI widget orders are right),
a workflow queued from the UI runs on a tiny checkpoint and writes a decodable video, and the
screenshot of a loaded graph is a real picture.

One browser session serves the whole module (startup ~10 s); each test reads its report. Skipped
only when chromium / node / playwright-core cannot be installed (scripts/install_browser_deps.sh).
"""
import copy
import json
import struct

import pytest
from safetensors.torch import save_file

import tests.pack
from tests.browser import api_view, browser_deps, drive, extension_problems, is_network_noise
from tests.server import probe_media

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

WORKFLOWS = tests.pack.PACK_ROOT / "workflows"
UI_WORKFLOWS = sorted(path.stem for path in WORKFLOWS.glob("*.json"))
QUEUED = "videocrafter2_t2v_512"
TINY_CKPT = "browser_tiny_vc2_t2v_512.safetensors"
TINY = {"width": 64, "height": 48, "frames": 8, "steps": 3}
PREFIX = "browser/vc2_t2v"
SCREENSHOT = "graph_videocrafter2_t2v_512.png"
VIEWPORT = {"width": 2400, "height": 1000}


def tiny_ui_workflow() -> dict:
    """The VC2 UI workflow pointed at the tiny checkpoint, at 64x48x8 and 3 DDIM steps (a copy)."""
    graph = json.loads((WORKFLOWS / f"{QUEUED}.json").read_text())
    for node in graph["nodes"]:
        values = node["widgets_values"]
        if node["type"] == "VideoCrafterCheckpointLoader":
            values[0] = TINY_CKPT
        elif node["type"] == "VideoCrafterEmptyVideoLatent":
            values[:3] = [TINY["width"], TINY["height"], TINY["frames"]]
        elif node["type"] == "VideoCrafterDDIMSigmas":
            values[0] = TINY["steps"]
        elif node["type"] == "SaveVideo":
            values[0] = PREFIX
    return graph


def tiny_api_twin() -> dict:
    """The same edits applied to the API twin: what the UI must send."""
    graph = json.loads((WORKFLOWS / "api" / f"{QUEUED}.json").read_text())
    for node in graph.values():
        inputs = node["inputs"]
        if node["class_type"] == "VideoCrafterCheckpointLoader":
            inputs["ckpt_name"] = TINY_CKPT
        elif node["class_type"] == "VideoCrafterEmptyVideoLatent":
            inputs.update(width=TINY["width"], height=TINY["height"], frames=TINY["frames"])
        elif node["class_type"] == "VideoCrafterDDIMSigmas":
            inputs["steps"] = TINY["steps"]
        elif node["class_type"] == "SaveVideo":
            inputs["filename_prefix"] = PREFIX
    return graph


@pytest.fixture(scope="module")
def frontend(comfy_server, tmp_path_factory):
    """One browser session: load every UI workflow (screenshot the first), then load the tiny copy
    and queue it from the UI. Returns ``(report, {name: workflow report}, out_dir)``."""
    deps = browser_deps()
    if not deps.ok:
        pytest.skip(f"no browser for the frontend tests: {deps.reason}")
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec

    folder = comfy_server.models_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    save_file(make_tiny_state_dict(tiny_spec("vc2_t2v_512", seed=1)), str(folder / TINY_CKPT))
    out_dir = tmp_path_factory.mktemp("browser")
    jobs = [{"name": name, "path": WORKFLOWS / f"{name}.json"} for name in UI_WORKFLOWS]
    for job in jobs:
        if job["name"] == QUEUED:
            job["screenshot"] = SCREENSHOT
    jobs.append({"name": "tiny_queued", "graph": tiny_ui_workflow(), "queue": True, "screenshot": "queued.png"})
    report = drive(comfy_server.url, jobs, out_dir, viewport=VIEWPORT, queue_timeout_ms=600000)
    print(f"browser: frontend {report['frontend_version']}, ready after {report['ready_ms']} ms, "
          f"driver {report['wall_seconds']:.1f} s, screenshots in {out_dir}"
          + (f", deps installed in {deps.install_seconds:.0f} s" if deps.install_seconds else ""))
    return report, {w["name"]: w for w in report["workflows"]}, out_dir


def test_our_extension_is_served_and_registered(frontend):
    report, loaded, _ = frontend
    scripts = [s for s in report["extension_scripts"] if "/extensions/videocrafter-suite/" in s["url"]]
    assert scripts and all(s["status"] == 200 for s in scripts), report["extension_scripts"]
    assert "videocrafter-suite.appearance" in report["extensions"]
    assert not extension_problems(report), extension_problems(report)
    # the extension ran: our nodes carry its colours, core nodes do not
    nodes = loaded[QUEUED]["nodes"]
    ours = [n for n in nodes if n["type"].startswith("VideoCrafter")]
    assert ours and all((n["color"], n["bgcolor"]) == ("#2a3a4f", "#1f2a38") for n in ours), ours
    assert all(n["color"] is None for n in nodes if not n["type"].startswith("VideoCrafter"))


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_workflow_loads_without_missing_nodes_or_errors(frontend, name):
    report, loaded, _ = frontend
    result = loaded[name]
    assert result["load_error"] is None, result["load_error"]
    assert result["missing_node_types"] == [], f"the frontend does not know: {result['missing_node_types']}"
    assert result["error_nodes"] == [] and result["dialogs"] == [] and result["toasts"] == [], \
        (result["error_nodes"], result["dialogs"], result["toasts"])
    assert result["page_errors"] == [], result["page_errors"]
    # console errors while loading: only failed network fetches the frontend makes on its own
    # (comfy.org registry lookups offline, the example input image the user has not added yet)
    unexpected = [m for m in result["console"]
                  if not (is_network_noise(m) or m["text"].startswith("Failed to load resource"))]
    assert not unexpected, unexpected
    graph = json.loads((WORKFLOWS / f"{name}.json").read_text())
    assert sorted(n["id"] for n in result["nodes"]) == sorted(n["id"] for n in graph["nodes"])


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_graph_to_prompt_equals_the_api_twin(frontend, name):
    _, loaded, _ = frontend
    result = loaded[name]
    assert "prompt_error" not in result, result.get("prompt_error")
    twin = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    assert api_view(result["prompt"]) == api_view(twin)
    # and the widget values the frontend shows are the UI file's, by name (not only by position)
    for node in result["nodes"]:
        inputs = twin[str(node["id"])]["inputs"]
        for widget in node["widgets"]:
            if widget["name"] in inputs:
                assert widget["value"] == inputs[widget["name"]], (node["type"], widget)


def test_workflow_queued_from_the_ui_runs_and_writes_a_video(frontend, comfy_server):
    _, loaded, _ = frontend
    result = loaded["tiny_queued"]
    assert api_view(result["prompt"]) == api_view(tiny_api_twin())
    queue = result["queue"]
    assert queue["response"] and queue["response"]["status"] == 200, queue
    assert queue["response"]["body"].get("node_errors") in ({}, None), queue
    prompt_id = queue["prompt_id"]
    assert prompt_id, queue
    entry = comfy_server.history(prompt_id)  # the driver waited for it to end
    assert entry is not None, f"{prompt_id} not in /history"
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:4000]
    # what ran is what the UI sent: the API twin with the tiny edits, plus the UI workflow as pnginfo
    _number, _id, graph, extra, _outputs = entry["prompt"][:5]
    assert api_view(graph) == api_view(tiny_api_twin())
    assert extra.get("extra_pnginfo", {}).get("workflow", {}).get("nodes"), "the UI attaches its workflow"
    records = [r for output in entry["outputs"].values() for value in output.values() if isinstance(value, list)
               for r in value if isinstance(r, dict) and "filename" in r]
    videos = [r for r in records if r["filename"].endswith(".mp4")]
    assert len(videos) == 1 and videos[0]["subfolder"].startswith("browser"), records
    info = probe_media(comfy_server.output_path(videos[0]))
    assert (info.frame_count, info.width, info.height) == (TINY["frames"], TINY["width"], TINY["height"])
    assert info.fps == pytest.approx(10, abs=0.01)
    assert comfy_server.view_output(videos[0])[4:8] == b"ftyp", "the UI's /view serves the mp4"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("shot", [SCREENSHOT, "queued.png"])
def test_screenshot_shows_the_graph(frontend, shot):
    from PIL import Image

    _, _, out_dir = frontend
    path = out_dir / shot
    data = path.read_bytes()
    assert png_size(data) == (VIEWPORT["width"], VIEWPORT["height"])
    assert len(data) > 50_000, f"{path} is only {len(data)} bytes"
    image = Image.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 200, f"{path}: only {len(colours)} colours"  # None: > 1M colours
    # the canvas (left of the minimap, below the tabs) has drawn nodes: our node colour is there
    canvas = image.crop((100, 150, VIEWPORT["width"] - 400, VIEWPORT["height"] - 100))
    node_bg = (0x1f, 0x2a, 0x38)
    assert any(rgb == node_bg for _count, rgb in canvas.getcolors(maxcolors=1 << 20) or []), \
        f"{path}: no pixel of the pack's node colour on the canvas"
