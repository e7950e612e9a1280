"""A real ComfyUI 0.3.75 loads the pack: nodes, documentation, JS and workflow templates.

These are the first things a user sees, and ComfyUI hides most failures behind a running
server (an import error is a log line), so each is asserted against the live process.
"""
from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.pack import PACK_ROOT
from tests.server.harness import host

pytestmark = pytest.mark.server

PACK_URL_NAME = urllib.parse.quote(host.PACK_LINK_NAME)
# ComfyUI 0.3.75, app/custom_node_manager.py: folders served as workflow templates, in its order.
TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")
# Node types the frontend draws itself; they never appear in /object_info.
FRONTEND_ONLY_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


@pytest.fixture(scope="module")
def pack_node_ids(comfy_path) -> list[str]:
    """Node ids the pack declares, read in-process (ComfyUI's folder on sys.path)."""
    from videocrafter_suite.nodes import all_node_classes

    return [cls.GET_SCHEMA().node_id for cls in all_node_classes()]


def test_pack_imports_without_errors(comfy_server):
    comfy_server.assert_pack_imported()


def test_object_info_lists_every_pack_node(comfy_server, pack_node_ids):
    assert pack_node_ids, "videocrafter_suite.nodes.all_node_classes() returned no nodes"
    duplicates = sorted({i for i in pack_node_ids if pack_node_ids.count(i) > 1})
    assert not duplicates, f"node ids declared twice: {duplicates}"
    unprefixed = [i for i in pack_node_ids if not i.startswith("VideoCrafter")]
    assert not unprefixed, f"node ids must start with 'VideoCrafter': {unprefixed}"

    served = comfy_server.object_info()
    missing = [i for i in pack_node_ids if i not in served]
    assert not missing, f"declared by the pack but absent from /object_info: {missing}"
    extra = sorted(i for i in served if i.startswith("VideoCrafter") and i not in pack_node_ids)
    assert not extra, f"served but not returned by all_node_classes(): {extra}"


def test_pack_nodes_are_categorised_and_documented(comfy_server, pack_node_ids):
    served = comfy_server.object_info()
    problems = []
    for node_id in pack_node_ids:
        info = served.get(node_id)
        if info is None:
            problems.append(f"{node_id}: not in /object_info")
            continue
        if not str(info.get("category", "")).startswith("VideoCrafter"):
            problems.append(f"{node_id}: category {info.get('category')!r} does not start with 'VideoCrafter'")
        if not str(info.get("description", "")).strip():
            problems.append(f"{node_id}: empty description")
        for section in ("required", "optional"):
            for name, spec in info.get("input", {}).get(section, {}).items():
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if not str(options.get("tooltip", "")).strip():
                    problems.append(f"{node_id}: input {name!r} has no tooltip")
    assert not problems, "undocumented nodes:\n" + "\n".join(problems)


def _web_files() -> list[str]:
    web = PACK_ROOT / "web"
    return sorted(p.relative_to(web).as_posix() for p in web.rglob("*.js")) if web.is_dir() else []


def test_web_extension_is_served(comfy_server):
    files = _web_files()
    listed = comfy_server.get_json("/extensions")
    ours = sorted(url for url in listed if url.startswith(f"/extensions/{PACK_URL_NAME}/"))
    assert ours == [f"/extensions/{PACK_URL_NAME}/{name}" for name in files], \
        f"/extensions lists {ours} for the pack, web/ holds {files}"
    for name in files:
        body = comfy_server.request(f"/extensions/{PACK_URL_NAME}/{urllib.parse.quote(name)}")
        assert body == (PACK_ROOT / "web" / name).read_bytes(), f"web/{name} served with different content"


def _template_files() -> tuple[list[str], dict[str, object]]:
    """(names ComfyUI lists for the pack, name → path it serves) — mirrors custom_node_manager."""
    names, served = [], {}
    for folder in TEMPLATE_FOLDERS:
        for path in sorted((PACK_ROOT / folder).glob("*.json")):
            names.append(path.stem)
    first = next((PACK_ROOT / f for f in TEMPLATE_FOLDERS if (PACK_ROOT / f).is_dir()), None)
    if first is not None:
        served = {p.name: p for p in sorted(first.glob("*.json"))}
    return names, served


def test_workflow_templates_are_listed_and_served(comfy_server):
    names, served = _template_files()
    listing = comfy_server.get_json("/api/workflow_templates")
    assert sorted(listing.get(host.PACK_LINK_NAME, [])) == sorted(names), \
        f"/api/workflow_templates lists {listing.get(host.PACK_LINK_NAME)} for the pack; its folders hold {names}"
    for filename, path in served.items():
        body = comfy_server.request(f"/api/workflow_templates/{PACK_URL_NAME}/{urllib.parse.quote(filename)}")
        assert json.loads(body) == json.loads(path.read_text()), f"{filename} served with different content"


def test_workflow_templates_use_only_known_node_types(comfy_server):
    """The template browser loads these as UI graphs: every node type must exist on the server."""
    _, served = _template_files()
    known = set(comfy_server.object_info()) | FRONTEND_ONLY_TYPES
    problems = []
    for filename, path in served.items():
        graph = json.loads(path.read_text())
        if not isinstance(graph.get("nodes"), list):
            problems.append(f"{filename}: not a UI-format graph (no 'nodes' list)")
            continue
        subgraphs = {sg.get("id") for sg in graph.get("definitions", {}).get("subgraphs", [])}
        unknown = sorted({n.get("type") for n in graph["nodes"]} - known - subgraphs)
        if unknown:
            problems.append(f"{filename}: unknown node types {unknown}")
    assert not problems, "\n".join(problems)
