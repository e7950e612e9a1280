"""The pack in the real ComfyUI frontend (headless Chromium, playwright-core, ComfyUI 0.3.75's
frontend package): every example workflow loads with no missing node types and no errors from our
extension, ``app.graphToPrompt()`` gives exactly the API twin (so the UI widget orders are right),
a workflow queued from the UI runs on a tiny checkpoint and writes a decodable video, and the
screenshot of a loaded graph is a real picture.

One browser session serves the whole module (startup ~10 s); each test reads its report. Skipped
only when chromium / node / playwright-core cannot be installed (scripts/install_browser_deps.sh).
"""
import base64
import io
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

import tests.pack
from tests.browser import (EXTENSION_PREFIX, WEB_SCRIPTS, api_view, browser_deps, drive, extension_problems,
                           extension_url_part, is_network_noise)
from tests.server import ComfyServer, ServerError, probe_media
from tests.server.harness import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

WORKFLOWS = tests.pack.PACK_ROOT / "workflows"
UI_WORKFLOWS = sorted(path.stem for path in WORKFLOWS.glob("*.json"))
QUEUED = "videocrafter2_t2v_512"
TINY_CKPT = "browser_tiny_vc2_t2v_512.safetensors"
TINY = {"width": 64, "height": 48, "frames": 8, "steps": 3}
PREFIX = "browser/vc2_t2v"
SCREENSHOT = "graph_videocrafter2_t2v_512.png"
VIEWPORT = {"width": 2400, "height": 1000}
DEFAULT_FOLDER = "videocrafter-suite"
RENAMED_FOLDER = "ComfyUI-VideoCrafter"  # what a clone under another name looks like
# The pack's frontend extensions, in load order (ComfyUI sorts the scripts); each registered once.
PACK_EXTENSIONS = ["videocrafter-suite.appearance", "videocrafter-suite.preview", "videocrafter-suite.readout"]


def tiny_ui_workflow(size: dict = TINY, prefix: str = PREFIX, sampler: str | None = None,
                     seed: int | None = None) -> dict:
    """The VC2 UI workflow pointed at the tiny checkpoint, at ``size`` (a copy); ``sampler``: a core
    sampler (KSamplerSelect) instead of the pack's DDIM, ``seed``: another noise seed."""
    graph = json.loads((WORKFLOWS / f"{QUEUED}.json").read_text())
    for node in graph["nodes"]:
        values = node["widgets_values"]
        if node["type"] == "VideoCrafterCheckpointLoader":
            values[0] = TINY_CKPT
        elif node["type"] == "VideoCrafterEmptyVideoLatent":
            values[:3] = [size["width"], size["height"], size["frames"]]
        elif node["type"] == "VideoCrafterDDIMSigmas":
            values[0] = size["steps"]
        elif node["type"] == "SaveVideo":
            values[0] = prefix
        elif node["type"] == "VideoCrafterNoise" and seed is not None:
            values[0] = seed
        elif node["type"] == "VideoCrafterDDIMSampler" and sampler is not None:
            node.update(type="KSamplerSelect", widgets_values=[sampler], properties={"Node name for S&R": "KSamplerSelect"})
    return graph


def tiny_api_twin(size: dict = TINY, prefix: str = PREFIX, sampler: str | None = None,
                  seed: int | None = None) -> dict:
    """The same edits applied to the API twin: what the UI must send."""
    graph = json.loads((WORKFLOWS / "api" / f"{QUEUED}.json").read_text())
    for node in graph.values():
        inputs = node["inputs"]
        if node["class_type"] == "VideoCrafterCheckpointLoader":
            inputs["ckpt_name"] = TINY_CKPT
        elif node["class_type"] == "VideoCrafterEmptyVideoLatent":
            inputs.update(width=size["width"], height=size["height"], frames=size["frames"])
        elif node["class_type"] == "VideoCrafterDDIMSigmas":
            inputs["steps"] = size["steps"]
        elif node["class_type"] == "SaveVideo":
            inputs["filename_prefix"] = prefix
        elif node["class_type"] == "VideoCrafterNoise" and seed is not None:
            inputs["noise_seed"] = seed
        elif node["class_type"] == "VideoCrafterDDIMSampler" and sampler is not None:
            node.update(class_type="KSamplerSelect", inputs={"sampler_name": sampler})
    return graph


def install_tiny_checkpoint(server) -> None:
    from videocrafter_suite.devkit.tiny_checkpoint import tiny_spec, write_tiny_checkpoint

    if not (server.models_dir / "checkpoints" / TINY_CKPT).exists():
        write_tiny_checkpoint(server.models_dir / "checkpoints" / TINY_CKPT, tiny_spec("vc2_t2v_512", seed=1))


@pytest.fixture(scope="module")
def frontend(comfy_server, tmp_path_factory):
    """One browser session: load every UI workflow (screenshot the first), then load the tiny copy
    and queue it from the UI. Returns ``(report, {name: workflow report}, out_dir)``."""
    deps = browser_deps()
    if not deps.ok:
        pytest.skip(f"no browser for the frontend tests: {deps.reason}")
    install_tiny_checkpoint(comfy_server)
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
    scripts = [s for s in report["extension_scripts"] if extension_url_part() in s["url"]]
    assert scripts and all(s["status"] == 200 for s in scripts), report["extension_scripts"]
    assert sorted(name for name in report["extensions"] if name.startswith(EXTENSION_PREFIX)) == PACK_EXTENSIONS
    assert not extension_problems(report), extension_problems(report)
    # the extension ran: our nodes carry its colours, core nodes do not
    nodes = loaded[QUEUED]["nodes"]
    ours = [n for n in nodes if n["type"].startswith("VideoCrafter")]
    assert ours and all((n["color"], n["bgcolor"]) == ("#2a3a4f", "#1f2a38") for n in ours), ours
    assert all(n["color"] is None for n in nodes if not n["type"].startswith("VideoCrafter"))


@pytest.mark.parametrize("folder", [DEFAULT_FOLDER, RENAMED_FOLDER])
@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_workflow_loads_without_missing_nodes_or_errors(request, folder, name):
    """Under the usual folder name and under another one (issue 11: the extension was loaded twice)."""
    report, loaded, _ = request.getfixturevalue("frontend" if folder == DEFAULT_FOLDER else "renamed_frontend")
    result = loaded[name]
    assert result["load_error"] is None, result["load_error"]
    assert result["missing_node_types"] == [], f"the frontend does not know: {result['missing_node_types']}"
    assert result["error_nodes"] == [] and result["dialogs"] == [] and result["toasts"] == [], \
        (result["error_nodes"], result["dialogs"], result["toasts"])
    assert result["page_errors"] == [], result["page_errors"]
    # console errors/warnings while loading: only failed network fetches the frontend makes on its own
    # (comfy.org registry lookups offline; on the session server, the example input images the user
    # has not added yet — the renamed server has them, so there: none at all)
    unexpected = [m for m in result["console"]
                  if not (is_network_noise(m) or (folder == DEFAULT_FOLDER and "/api/view?type=input" in m["url"]
                                                  and m["text"].startswith("Failed to load resource")))]
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


# ----- the pack under another folder name, with previews on: extension loading, preview, readout ----
# One more server (~20-40 s) for the whole module: ComfyUI serves the web folder under the folder's
# name, and only a server started with a preview method sends previews at all.
PREVIEW = {"width": 128, "height": 80, "frames": 16, "steps": 3}  # small: the tiny model's VAE is full size
PREVIEW_PREFIX = "browser/preview"
SAMPLER_NODE = "10"  # SamplerCustomAdvanced in the VC2 workflow: where the preview is shown
LATENT_NODE = "9"
PREVIEW_EVENT = "videocrafter-suite.preview"
PREVIEW_SETTING = "VideoCrafterSuite.Preview.Animated"
GIF_SHOTS = 8  # screenshots of the DDIM run's player in a row: scripts/readme_picture.py loops them
ARTIFACTS = Path(os.environ.get("VIDEOCRAFTER_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "browser"

READOUT_PROBE = """
app.canvas.draw(true, true);
return { readouts: app.graph.nodes.filter((n) => n.type === 'VideoCrafterEmptyVideoLatent').map((n) => {
  const element = n.widgets?.find((w) => w.name === 'videocrafter_readout')?.element;
  return { id: n.id, text: element?.textContent ?? null, title: element?.title ?? null,
           height: element?.getBoundingClientRect().height ?? 0 };
}) };
"""
COUNT_EVENTS = """
const api = window.comfyAPI.api.api;
if (!window.__vcCounts) {
  window.__vcCounts = { clip: 0, b_preview: 0 };
  api.addEventListener('videocrafter-suite.preview', () => { window.__vcCounts.clip += 1; });
  api.addEventListener('b_preview', () => { window.__vcCounts.b_preview += 1; });
}
return { ...window.__vcCounts };
"""
SETTING_OFF = f"""
await app.extensionManager.setting.set('{PREVIEW_SETTING}', false);
await new Promise((resolve) => setTimeout(resolve, 1000));  // the extension tells the server
{COUNT_EVENTS}
"""
# After the run: frame the latent and sampler nodes at scale 1, watch the player for 2.5 s (more
# than one loop of 16 frames at 10 fps), report its state, the event counts and the nodes' rects.
PREVIEW_PROBE = f"""
const canvas = app.canvas;
canvas.ds.scale = 1;
canvas.ds.offset = [-1040, -20];
canvas.setDirty(true, true);
canvas.draw(true, true);
await new Promise((resolve) => setTimeout(resolve, 2500));
const node = app.graph.getNodeById({SAMPLER_NODE});
const widget = node.widgets?.find((w) => w.name === 'videocrafter_clip_preview');
const box = canvas.canvas.getBoundingClientRect();
const rectOf = (ids) => {{
  const nodes = ids.map((id) => app.graph.getNodeById(id));
  const left = Math.min(...nodes.map((n) => n.pos[0])) - 10;
  const top = Math.min(...nodes.map((n) => n.pos[1])) - LiteGraph.NODE_TITLE_HEIGHT - 10;
  const right = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])) + 10;
  const bottom = Math.max(...nodes.map((n) => n.pos[1] + n.size[1])) + 10;
  const x = (left + canvas.ds.offset[0]) * canvas.ds.scale + box.left;
  const y = (top + canvas.ds.offset[1]) * canvas.ds.scale + box.top;
  return {{ x: Math.max(0, x), y: Math.max(0, y), width: (right - left) * canvas.ds.scale,
           height: (bottom - top) * canvas.ds.scale }};
}};
const player = widget?.element?.getBoundingClientRect();
{READOUT_PROBE.replace("return {", "const readout = {", 1)}
return {{
  clip: widget ? {{ ...widget.element.dataset }} : null,
  counts: {{ ...window.__vcCounts }},
  core_previews: (app.nodePreviewImages?.['{SAMPLER_NODE}'] ?? []).length,
  readouts: readout.readouts,
  rects: {{ both: rectOf([{LATENT_NODE}, {SAMPLER_NODE}]),
           player: player ? {{ x: player.x, y: player.y, width: player.width, height: player.height }} : null }},
}};
"""
PREVIEW_RUNS = {  # name: (sampler, seed, animated setting): each run differs, so nothing is cached
    "preview_ddim": (None, 1, True),      # the pack's DDIM sampler
    "preview_euler": ("euler", 2, True),  # a core sampler
    "preview_off": ("euler", 3, False),   # the setting off: core's single-frame preview
}


def write_clip(path: Path, frames: int = 8, side: int = 64) -> None:
    """A short h264 clip (PyAV, as ComfyUI's own video I/O): what LoadVideo nodes name."""
    import av
    import numpy

    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=8)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            image = numpy.full((side, side, 3), index * 255 // frames, dtype=numpy.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def add_example_inputs(server) -> None:
    """The images and clips the example workflows' LoadImage / LoadVideo nodes name, as a user would
    have them in input/ (then loading the workflows fetches nothing that is missing)."""
    from PIL import Image

    for name in UI_WORKFLOWS:
        for node in json.loads((WORKFLOWS / f"{name}.json").read_text())["nodes"]:
            target = server.input_dir / str((node.get("widgets_values") or [""])[0])
            if target.exists():
                continue
            if node["type"] == "LoadImage":
                Image.radial_gradient("L").convert("RGB").save(target)
            elif node["type"] == "LoadVideo":
                write_clip(target)


@pytest.fixture(scope="module")
def renamed_server(tmp_path_factory):
    """ComfyUI with the pack linked as ``ComfyUI-VideoCrafter`` and latent previews on."""
    base = tmp_path_factory.mktemp("comfy-renamed")
    with ComfyServer(base=base, link_name=RENAMED_FOLDER, extra_args=("--preview-method", "latent2rgb")) as server:
        server.assert_pack_imported()
        install_tiny_checkpoint(server)
        add_example_inputs(server)
        yield server


@pytest.fixture(scope="module")
def renamed_frontend(renamed_server, tmp_path_factory):
    """One browser session on the renamed pack: every workflow, then the three preview runs."""
    deps = browser_deps()
    if not deps.ok:
        pytest.skip(f"no browser for the frontend tests: {deps.reason}")
    out_dir = tmp_path_factory.mktemp("browser-renamed")
    jobs = [{"name": name, "path": WORKFLOWS / f"{name}.json", "probe_js": READOUT_PROBE} for name in UI_WORKFLOWS]
    for name, (sampler, seed, animated) in PREVIEW_RUNS.items():
        jobs.append({"name": name, "queue": True, "before_js": COUNT_EVENTS if animated else SETTING_OFF,
                     "graph": tiny_ui_workflow(PREVIEW, PREVIEW_PREFIX, sampler, seed), "probe_js": PREVIEW_PROBE,
                     "shots": [{"file": f"{name}_{i}.png", "clip": "both", "delay_ms": 130 if i else 0}
                               for i in range(GIF_SHOTS if name == "preview_ddim" else 2)]})
    report = drive(renamed_server.url, jobs, out_dir, viewport=VIEWPORT, queue_timeout_ms=600000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in out_dir.glob("*.png"):
        shutil.copy2(shot, ARTIFACTS / shot.name)
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=1))
    print(f"browser ({RENAMED_FOLDER}): driver {report['wall_seconds']:.1f} s, screenshots kept in {ARTIFACTS}")
    return report, {w["name"]: w for w in report["workflows"]}, out_dir


def test_renamed_folder_serves_each_script_once(renamed_server):
    listed = renamed_server.get_json("/extensions")
    ours = [url for url in listed if url.rsplit("/", 1)[-1] in WEB_SCRIPTS]
    assert sorted(ours) == sorted(f"{extension_url_part(RENAMED_FOLDER)}{name}" for name in WEB_SCRIPTS), ours


def test_renamed_folder_registers_each_extension_once_without_errors(renamed_frontend):
    report, _, _ = renamed_frontend
    scripts = [s for s in report["extension_scripts"] if extension_url_part(RENAMED_FOLDER) in s["url"]]
    assert sorted(s["url"].rsplit("/", 1)[-1] for s in scripts) == WEB_SCRIPTS, report["extension_scripts"]
    assert all(s["status"] == 200 for s in scripts), scripts
    assert sorted(name for name in report["extensions"] if name.startswith(EXTENSION_PREFIX)) == PACK_EXTENSIONS
    assert not [m for m in report["console"] if "already registered" in m["text"]]
    assert not extension_problems(report), extension_problems(report)


def expected_readout(name: str) -> dict[int, str]:
    """``{latent node id: text}`` computed from the workflow files the way the readout is specified:
    frames from the node, fps from the first node downstream with an ``fps`` / ``frame_rate`` widget
    (breadth-first, outputs and their links in order), else 8 fps. Widget names come from the API twin."""
    graph = json.loads((WORKFLOWS / f"{name}.json").read_text())
    twin = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    by_id = {node["id"]: node for node in graph["nodes"]}
    target_of = {link[0]: link[3] for link in graph["links"]}

    def fps_widget(node_id):
        inputs = twin.get(str(node_id), {}).get("inputs", {})
        values = [inputs[key] for key in ("fps", "frame_rate") if isinstance(inputs.get(key), (int, float))]
        return float(values[0]) if values and values[0] > 0 else None

    texts = {}
    for node in graph["nodes"]:
        if node["type"] != "VideoCrafterEmptyVideoLatent":
            continue
        frames, fps = twin[str(node["id"])]["inputs"]["frames"], 8.0
        queue, seen = [node["id"]], {node["id"]}
        while queue and fps == 8.0:
            current = queue.pop(0)
            for output in by_id[current].get("outputs") or []:
                for link_id in output.get("links") or []:
                    target = target_of.get(link_id)
                    if target is None or target in seen:
                        continue
                    seen.add(target)
                    found = fps_widget(target)
                    if found is not None:
                        fps, queue = found, []
                        break
                    queue.append(target)
                else:
                    continue
                break
        texts[node["id"]] = f"{frames} frame{'' if frames == 1 else 's'} @ {fps:g} fps = {frames / fps:.1f} s"
    return texts


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_latent_node_shows_frames_fps_and_duration(renamed_frontend, name):
    _, loaded, _ = renamed_frontend
    shown = {r["id"]: r["text"] for r in loaded[name]["probe"]["readouts"]}
    assert shown == expected_readout(name)
    if name == QUEUED:
        assert shown == {9: "16 frames @ 10 fps = 1.6 s"}


@pytest.mark.parametrize("run", ["preview_ddim", "preview_euler"])
def test_animated_preview_shows_the_whole_clip_looping_updated_per_step(renamed_frontend, renamed_server, run):
    _, loaded, _ = renamed_frontend
    result, before = loaded[run], loaded[run]["before"]
    assert result["queue"]["status"] == "success", result["queue"]
    probe = result["probe"]
    assert "error" not in probe, probe
    clip = probe["clip"]
    assert clip is not None, "no clip player on the sampler node"
    # per step: one clip per sampling step, no core still in between
    assert probe["counts"]["clip"] - before["clip"] == PREVIEW["steps"], (probe["counts"], before)
    assert probe["counts"]["b_preview"] == before["b_preview"] == 0
    assert int(clip["updates"]) == PREVIEW["steps"]  # the run loads a fresh graph: a fresh player
    # the whole clip, at the video's fps (CreateVideo: 10), looping: after 2.5 s every frame was
    # shown and the sequence wrapped from the last frame back to the first
    assert int(clip["frames"]) == PREVIEW["frames"] and float(clip["fps"]) == 10
    shown = [int(v) for v in clip["shown"].split(",") if v]
    assert set(shown[-PREVIEW["frames"]:]) == set(range(PREVIEW["frames"])), shown
    assert any(a == PREVIEW["frames"] - 1 and b == 0 for a, b in zip(shown, shown[1:])), shown
    assert clip["promptId"] == result["queue"]["prompt_id"]
    # the readout of the latent node in view is visible, and follows the edited frame count
    assert [(r["text"], r["height"] >= 16) for r in probe["readouts"]] == [("16 frames @ 10 fps = 1.6 s", True)]


def test_preview_screenshots_show_different_frames(renamed_frontend):
    """Two screenshots 130 ms apart (more than one frame at 10 fps) differ inside the player."""
    from PIL import Image, ImageChops

    _, loaded, _ = renamed_frontend
    result = loaded["preview_ddim"]
    first, second = (Image.open(shot["file"]).convert("RGB") for shot in result["shots"][:2])
    assert first.size == second.size and first.size[0] > 300, first.size
    both, player = result["probe"]["rects"]["both"], result["probe"]["rects"]["player"]
    box = (round(player["x"] - both["x"]) + 2, round(player["y"] - both["y"]) + 2,
           round(player["x"] - both["x"] + player["width"]) - 2, round(player["y"] - both["y"] + player["height"]) - 2)
    assert ImageChops.difference(first.crop(box), second.crop(box)).getbbox() is not None, "the preview did not move"
    # and the player is not blank: a clip of a random tiny model has many colours
    assert len(first.crop(box).getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20
    assert (ARTIFACTS / Path(result["shots"][0]["file"]).name).is_file()


def test_setting_off_gives_core_single_frame_preview(renamed_frontend):
    _, loaded, _ = renamed_frontend
    result, before = loaded["preview_off"], loaded["preview_off"]["before"]
    assert result["queue"]["status"] == "success", result["queue"]
    probe = result["probe"]
    assert probe["counts"]["clip"] == before["clip"], "clip events although the setting is off"
    assert probe["counts"]["b_preview"] - before["b_preview"] == PREVIEW["steps"]
    assert probe["core_previews"] == 1  # core's still of frame 0 on the sampler node
    assert probe["clip"] is None  # no clip player on the freshly loaded graph's sampler


# ----- the same protocol without a browser: what the server sends to whom -----------------------
def opt_in(server, animated: bool) -> None:
    server.post_json("/videocrafter-suite/preview", {"client_id": server.client_id, "animated": animated})


def test_server_sends_one_clip_per_step_to_a_client_that_asked(renamed_server):
    """The pack's DDIM here; a core sampler in the browser runs above."""
    from PIL import Image

    opt_in(renamed_server, True)
    size = {**TINY, "steps": 2}
    result = renamed_server.run(tiny_api_twin(size, "ws/preview", seed=10))
    clips = result.events(PREVIEW_EVENT)
    assert len(clips) == size["steps"], [m["type"] for m in result.messages]
    assert not [m for m in result.messages if m["type"] == "binary"], "core's still was sent as well"
    width, height = size["width"] // 8, size["height"] // 8  # latent2rgb: one pixel per latent
    for clip in clips:
        assert (clip["node"], clip["frames"], clip["frame_width"], clip["frame_height"]) == \
            (SAMPLER_NODE, size["frames"], width, height)
        assert clip["prompt_id"] == result.prompt_id
        sheet = Image.open(io.BytesIO(base64.b64decode(clip["image"])))
        rows = -(-size["frames"] // clip["columns"])
        assert sheet.format == "JPEG" and sheet.size == (clip["columns"] * width, rows * height)
    assert clips[0]["sequence"] < clips[1]["sequence"]


def test_server_keeps_core_preview_for_clients_that_did_not_ask(renamed_server):
    opt_in(renamed_server, False)
    size = {**TINY, "steps": 2}
    result = renamed_server.run(tiny_api_twin(size, "ws/still", None, seed=12))
    assert result.events(PREVIEW_EVENT) == []
    assert len([m for m in result.messages if m["type"] == "binary"]) == size["steps"]


@pytest.mark.parametrize("body", [{}, {"client_id": "", "animated": True}, {"client_id": "x", "animated": "yes"}])
def test_preview_route_rejects_bad_bodies(renamed_server, body):
    with pytest.raises(ServerError) as error:
        renamed_server.post_json("/videocrafter-suite/preview", body)
    assert error.value.status == 400 and "client_id" in error.value.body
