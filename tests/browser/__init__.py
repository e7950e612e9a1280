"""The real ComfyUI frontend in headless Chromium, driven by ``drive.mjs`` (playwright-core).

Python side of the browser tests: finds (or installs, through ``scripts/install_browser_deps.sh``)
Debian's chromium, node and a pinned playwright-core in the host cache, runs the Node driver on a
job and returns its JSON report. Nothing here starts a browser at import time.

    deps = browser_deps()                     # BrowserDeps(ok, reason, ...)
    report = drive(server.url, [{"path": p, "screenshot": "x.png"}], out_dir)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.server.harness import REPO_ROOT, host

DRIVER = Path(__file__).resolve().parent / "drive.mjs"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_browser_deps.sh"
EXTENSION_URL_PART = f"/extensions/{host.PACK_LINK_NAME}/"
EXTENSION_NAME = "videocrafter-suite.appearance"
# Every frontend extension of the pack is named "videocrafter-suite.<what>", whatever the folder.
EXTENSION_PREFIX = "videocrafter-suite."
WEB_SCRIPTS = sorted(path.name for path in (REPO_ROOT / "web").glob("*.js"))


def extension_url_part(link_name: str = host.PACK_LINK_NAME) -> str:
    """``/extensions/<link>/``: where ComfyUI serves the pack's web folder for that folder name."""
    return f"/extensions/{link_name}/"


def node_dir() -> Path:
    """``$VIDEOCRAFTER_SUITE_CACHE/node``: the npm prefix that holds playwright-core."""
    return host.cache_dir() / "node"


def chromium_path() -> Path:
    return Path(os.environ.get("VIDEOCRAFTER_CHROMIUM", "/usr/bin/chromium"))


@dataclass
class BrowserDeps:
    ok: bool
    reason: str
    chromium: Path
    node: str | None
    node_dir: Path
    install_seconds: float | None = None


def _check() -> BrowserDeps:
    chromium, node, prefix = chromium_path(), shutil.which("node"), node_dir()
    missing = []
    if not (chromium.is_file() and os.access(chromium, os.X_OK)):
        missing.append(f"chromium ({chromium})")
    if node is None:
        missing.append("node (not on PATH)")
    if not (prefix / "node_modules" / "playwright-core" / "package.json").is_file():
        missing.append(f"playwright-core (in {prefix}/node_modules)")
    return BrowserDeps(not missing, "missing: " + ", ".join(missing) if missing else "", chromium, node, prefix)


_cached: BrowserDeps | None = None


def browser_deps(install: bool = True) -> BrowserDeps:
    """Chromium, node and playwright-core, installed once per process if missing.

    ``scripts/test.sh`` already ran the installer; this covers a bare ``pytest`` call. The result
    says why when something cannot be had (no root for apt, no network ...).
    """
    global _cached
    if _cached is not None and (_cached.ok or not install):
        return _cached
    deps = _check()
    if not deps.ok and install and INSTALL_SCRIPT.is_file():
        began = time.monotonic()
        run = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
        deps = _check()
        deps.install_seconds = time.monotonic() - began
        if not deps.ok:
            deps.reason += f"; {INSTALL_SCRIPT.name} said: {(run.stderr or run.stdout).strip()[-800:]}"
    _cached = deps
    return deps


class DriverFailed(RuntimeError):
    pass


def drive(url: str, workflows: list[dict], out_dir: Path, *, timeout_ms: int = 60000,
          queue_timeout_ms: int = 600000, process_timeout: float = 900.0, **extra) -> dict:
    """Run ``drive.mjs`` on one job; return its report (see the script's header for the fields).

    ``workflows``: ``[{"name", "path" | "graph", "queue": bool, "screenshot": "file.png"}]``.
    """
    deps = browser_deps()
    if not deps.ok:
        raise DriverFailed(deps.reason)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    job = {"url": url, "chromium": str(deps.chromium), "node_dir": str(deps.node_dir), "out_dir": str(out_dir),
           "timeout_ms": timeout_ms, "queue_timeout_ms": queue_timeout_ms,
           "workflows": [{**spec, "path": str(spec["path"])} if "path" in spec else spec for spec in workflows],
           **extra}
    job_path = out_dir / "job.json"
    job_path.write_text(json.dumps(job))
    began = time.monotonic()
    try:
        run = subprocess.run([deps.node, str(DRIVER), str(job_path)], capture_output=True, text=True,
                             timeout=process_timeout, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired as error:
        raise DriverFailed(f"drive.mjs ran past {process_timeout:.0f}s\n{error.stderr or ''}") from None
    if run.returncode != 0:
        raise DriverFailed(f"drive.mjs exited {run.returncode}\n--- stderr ---\n{run.stderr[-4000:]}"
                           f"\n--- stdout ---\n{run.stdout[-2000:]}")
    try:
        report = json.loads(run.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DriverFailed(f"drive.mjs printed no JSON report\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}") from None
    report["wall_seconds"] = time.monotonic() - began
    report["stderr"] = run.stderr
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report


# ----- reading a report ---------------------------------------------------------------------------
def mentions_extension(entry: dict) -> bool:
    """A console message or page error that points at this pack's frontend code."""
    text = " ".join(str(entry.get(key, "")) for key in ("text", "url", "message", "stack"))
    return (EXTENSION_URL_PART in text or EXTENSION_PREFIX in text or "[videocrafter-suite]" in text
            or any(f"/{script}" in text for script in WEB_SCRIPTS))


def extension_problems(report: dict) -> list[dict]:
    """Console errors/warnings and uncaught page errors that come from our extension, any phase."""
    console = [m for m in report.get("console", []) if m.get("type") in ("error", "warning") and mentions_extension(m)]
    return console + [e for e in report.get("page_errors", []) if mentions_extension(e)]


def is_network_noise(message: dict) -> bool:
    """The frontend's own calls that cannot succeed here (comfy.org registry/news, offline)."""
    return message.get("text", "").startswith("Failed to load resource") and "api.comfy.org" in message.get("url", "")


def api_view(prompt: dict) -> dict:
    """``{node_id: (class_type, inputs)}`` of an API graph; ``_meta`` (titles) ignored."""
    return {str(node_id): (node["class_type"], node["inputs"]) for node_id, node in prompt.items()}
