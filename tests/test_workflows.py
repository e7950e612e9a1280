"""The committed example workflows are exactly what scripts/build_workflows.py generates, and each
UI graph and its API twin describe the same graph."""
import importlib.util
import json
import sys

import tests.pack

ROOT = tests.pack.PACK_ROOT


def load_builder():
    spec = importlib.util.spec_from_file_location("build_workflows", ROOT / "scripts" / "build_workflows.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_committed_workflows_are_up_to_date():
    rendered = load_builder().render()
    for path, text in rendered.items():
        assert path.exists(), f"{path.relative_to(ROOT)} missing: run python3 scripts/build_workflows.py"
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run python3 scripts/build_workflows.py"
    committed = set((ROOT / "workflows").glob("*.json")) | set((ROOT / "workflows" / "api").glob("*.json"))
    assert committed == set(rendered), "workflow files that the builder does not produce"


def test_ui_and_api_twins_have_the_same_nodes_and_links():
    for ui_path in (ROOT / "workflows").glob("*.json"):
        ui = json.loads(ui_path.read_text())
        api = json.loads((ROOT / "workflows" / "api" / ui_path.name).read_text())
        assert {str(n["id"]): n["type"] for n in ui["nodes"]} == {k: v["class_type"] for k, v in api.items()}
        links = {(str(l[3]), l[4]): (str(l[1]), l[2]) for l in ui["links"]}
        for node in ui["nodes"]:
            for slot, entry in enumerate(node["inputs"]):
                if entry.get("link") is None:
                    continue
                source = links[(str(node["id"]), slot)]
                assert api[str(node["id"])]["inputs"][entry["name"]] == [source[0], source[1]]
