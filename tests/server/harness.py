"""A real, headless ComfyUI process for end-to-end tests.

Why a real server: the pack's contract is with ComfyUI itself (custom-node loading,
``/object_info``, prompt validation, execution, ``/view``, the websocket), and only a real
process shows that contract holds. Installing and launching are ``scripts/host.py``'s job; this
module adds what tests need on top: a private base directory per session, a free port, a
websocket listener that records every message, and small HTTP helpers with readable errors.

Usage::

    with ComfyServer() as server:
        server.assert_pack_imported()
        shutil.copy(ckpt, server.models_dir / "checkpoints")
        result = server.run(api_graph, timeout=600)      # queue + wait + raise on error
        data = server.view_output(result.files()[0])
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import websocket  # websocket-client, installed in the host venv

REPO_ROOT = Path(__file__).resolve().parents[2]
# Terminal websocket events for a prompt (``executing`` with ``node: None`` also ends one).
_TERMINAL_EVENTS = {"execution_success", "execution_error", "execution_interrupted"}


def load_host():
    """Import ``scripts/host.py`` (not a package) as a module, once."""
    spec = importlib.util.spec_from_file_location("videocrafter_suite_host", REPO_ROOT / "scripts" / "host.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


host = load_host()


class ServerError(RuntimeError):
    """An HTTP call to ComfyUI failed; ``status`` and ``body`` hold the server's answer."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class PromptRejected(ServerError):
    """``POST /prompt`` answered 400: the graph failed validation.

    ``error`` is the server's ``error`` object (``type``, ``message``, ``details``) and
    ``node_errors`` maps node ids to their errors, so tests can assert on the exact message.
    """

    def __init__(self, status: int, payload: dict, body: str):
        self.payload = payload
        self.error = payload.get("error", {}) if isinstance(payload, dict) else {}
        self.node_errors = payload.get("node_errors", {}) if isinstance(payload, dict) else {}
        super().__init__(f"prompt rejected ({status}): {json.dumps(payload, indent=1)}", status, body)


class ExecutionFailed(RuntimeError):
    """The prompt was accepted but failed while executing; ``result`` has the details."""

    def __init__(self, result: "RunResult"):
        self.result = result
        super().__init__(result.describe_failure())


@dataclass
class RunResult:
    """What one prompt did: its ``/history`` entry and the websocket messages it produced."""

    prompt_id: str
    history: dict
    messages: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``success`` or ``error`` (ComfyUI's ``status.status_str``)."""
        return self.history.get("status", {}).get("status_str", "")

    @property
    def succeeded(self) -> bool:
        return self.status == "success" and self.error is None

    @property
    def outputs(self) -> dict:
        """Node id → that node's UI output (``images``, ``animated``, ``text`` ...)."""
        return self.history.get("outputs", {})

    @property
    def error(self) -> dict | None:
        """The ``execution_error`` payload (``exception_message``, ``traceback``, ``node_id``) or None."""
        for event in self.events("execution_error"):
            return event
        for name, data in self.history.get("status", {}).get("messages", []):
            if name == "execution_error":
                return data
        return None

    def events(self, kind: str) -> list[dict]:
        """The ``data`` of every recorded websocket message of type ``kind``."""
        return [m.get("data", {}) for m in self.messages if m.get("type") == kind]

    def files(self, node_id: str | None = None) -> list[dict]:
        """Output file records ``{filename, subfolder, type}`` of one node or all nodes."""
        found = []
        for nid, output in self.outputs.items():
            if node_id is not None and str(nid) != str(node_id):
                continue
            for value in output.values():
                if isinstance(value, list):
                    found.extend(v for v in value if isinstance(v, dict) and "filename" in v)
        return found

    def describe_failure(self) -> str:
        err = self.error or {}
        return (f"prompt {self.prompt_id} ended with status {self.status!r}: node {err.get('node_id')} "
                f"({err.get('node_type')}) raised {err.get('exception_type')}: {err.get('exception_message')}\n"
                + "".join(err.get("traceback", [])))

    def raise_for_error(self) -> "RunResult":
        if not self.succeeded:
            raise ExecutionFailed(self)
        return self


class _Listener:
    """Reads ``/ws?clientId=...`` on a daemon thread and keeps every message, in order."""

    def __init__(self, url: str):
        self.messages: list[dict] = []
        self.condition = threading.Condition()
        self.closed = False
        self._ws = websocket.create_connection(url, timeout=30)
        self._ws.settimeout(None)
        self._thread = threading.Thread(target=self._read, name="comfy-ws", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                opcode, data = self._ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    message = json.loads(data.decode("utf-8"))
                else:  # previews: 4-byte big-endian event type, then the payload
                    message = {"type": "binary", "event": int.from_bytes(data[:4], "big"), "size": len(data)}
                message["received_at"] = time.monotonic()
                with self.condition:
                    self.messages.append(message)
                    self.condition.notify_all()
        except (websocket.WebSocketException, OSError):
            pass  # server stopped or socket closed by close(): the recording simply ends
        finally:
            with self.condition:
                self.closed = True
                self.condition.notify_all()

    def close(self) -> None:
        try:
            self._ws.close()
        except (websocket.WebSocketException, OSError):
            pass
        self._thread.join(timeout=5)


def _prompt_id_of(message: dict) -> str | None:
    data = message.get("data")
    return data.get("prompt_id") if isinstance(data, dict) else None


class ComfyServer:
    """A headless ComfyUI 0.3.75 with this pack linked in; a context manager.

    Each instance gets its own base directory (``custom_nodes/<link_name>`` → the repo,
    ``models/<kind>/``, ``input/``, ``output/``) and its own free loopback port, so sessions and
    the demo never share state. The process group is stopped on exit (SIGTERM, then SIGKILL).
    """

    def __init__(self, base: Path | None = None, port: int | None = None, log_path: Path | None = None,
                 startup_timeout: float = 300.0, extra_args: tuple[str, ...] = (),
                 link_name: str = host.PACK_LINK_NAME):
        self.link_name = link_name  # the pack's folder name in custom_nodes/ (and its /extensions/ URL)
        self._own_base = base is None
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="comfy-base-"))
        self.port = port or host.free_port()
        self.log_path = Path(log_path) if log_path else self.base / "comfyui.log"
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.client_id = uuid.uuid4().hex
        self.startup_seconds: float | None = None
        self._process = None
        self._listener: _Listener | None = None

    # ----- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ComfyServer":
        """Start the process and return once ``/object_info`` answers and the websocket is open."""
        began = time.monotonic()
        try:
            self._process = host.start(self.port, log_path=self.log_path, wait=True, timeout=self.startup_timeout,
                                       base=self.base, extra_args=self.extra_args, die_with_parent=True,
                                       link_name=self.link_name)
        except host.HostError as error:
            raise host.HostError(f"{error}\n--- last lines of the log ---\n{self.log_tail()}") from error
        self.startup_seconds = time.monotonic() - began
        self._listener = _Listener(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}")
        return self

    def stop(self) -> None:
        """Stop the websocket and the whole process group; safe to call twice."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._process is not None:
            host.stop_process(self._process, self.port)
            self._process = None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if self._own_base and exc_type is None:  # keep the base (and its log) when something failed
            shutil.rmtree(self.base, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # ----- folders ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models_dir(self) -> Path:
        """``<base>/models``: put checkpoints in ``models_dir / "checkpoints"`` before queueing."""
        return self.base / "models"

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    def output_path(self, file_record: dict) -> Path:
        """Local path of an output file record ``{filename, subfolder, type}`` (same machine)."""
        return self.base / file_record.get("type", "output") / file_record.get("subfolder", "") / file_record["filename"]

    # ----- log -------------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def assert_pack_imported(self) -> None:
        """Fail unless ComfyUI's log shows our pack loaded without any import/entrypoint error.

        ComfyUI keeps serving when a pack fails to import, so the log is the only witness.
        """
        text = self.log_text()
        pack_dir = f"custom_nodes/{self.link_name}"  # the cache folder may have the same name: match the link
        failures = [line for line in text.splitlines()
                    if pack_dir in line and re.search(
                        r"IMPORT FAILED|Cannot import|Error while calling comfy_entrypoint|"
                        r"did not return a (ComfyExtension|list of nodes)|Skip .* module for custom nodes", line)]
        if failures:
            raise AssertionError("the pack failed to load:\n" + "\n".join(failures)
                                 + "\n--- log ---\n" + self._excerpt_before(text, failures[0]))
        if not re.search(rf"seconds: \S*{re.escape(pack_dir)}\s*$", text, re.MULTILINE):
            raise AssertionError(f"the log has no successful import line for {pack_dir}"
                                 f"\n--- log ---\n{self.log_tail()}")

    @staticmethod
    def _excerpt_before(text: str, line: str, context: int = 60) -> str:
        lines = text.splitlines()
        index = lines.index(line)
        return "\n".join(lines[max(0, index - context):index + 1])

    # ----- HTTP ------------------------------------------------------------------------------
    def request(self, path: str, data: bytes | None = None, method: str | None = None,
                timeout: float = 120.0) -> bytes:
        """Raw HTTP call; raises :class:`ServerError` with the server's body on any HTTP error."""
        headers = {"Content-Type": "application/json"} if data is not None else {}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as reply:
                return reply.read()
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", errors="replace")
            raise ServerError(f"{method or ('POST' if data else 'GET')} {path} -> {error.code}: {body[:2000]}",
                              error.code, body) from error

    def get_json(self, path: str):
        return json.loads(self.request(path))

    def post_json(self, path: str, payload) -> bytes:
        return self.request(path, data=json.dumps(payload).encode("utf-8"), method="POST")

    def object_info(self, node_id: str | None = None) -> dict:
        """``/object_info`` (all nodes) or ``/object_info/<node_id>`` (``{}`` if unknown)."""
        return self.get_json("/object_info" + (f"/{urllib.parse.quote(node_id)}" if node_id else ""))

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of a finished prompt, or None while it is queued/running."""
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """Download a file through ``/view`` (what the frontend does)."""
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        return self.request(f"/view?{query}")

    def view_output(self, file_record: dict) -> bytes:
        return self.view(file_record["filename"], file_record.get("subfolder", ""), file_record.get("type", "output"))

    def interrupt(self) -> None:
        """Stop the prompt that is executing now (``POST /interrupt``)."""
        self.request("/interrupt", data=b"{}", method="POST")

    def free(self) -> None:
        """Unload models and free memory between heavy tests (``POST /free``)."""
        self.post_json("/free", {"unload_models": True, "free_memory": True})

    # ----- prompts ---------------------------------------------------------------------------
    def queue(self, api_graph: dict) -> str:
        """``POST /prompt`` an API-format graph; return its prompt_id.

        Raises :class:`PromptRejected` (with the server's JSON) when validation fails.
        """
        try:
            reply = self.post_json("/prompt", {"prompt": api_graph, "client_id": self.client_id})
        except ServerError as error:
            if error.status == 400:
                try:
                    payload = json.loads(error.body)
                except ValueError:
                    payload = {"error": {"message": error.body}}
                raise PromptRejected(400, payload, error.body) from None
            raise
        answer = json.loads(reply)
        if answer.get("node_errors"):
            raise PromptRejected(200, answer, reply.decode("utf-8"))
        return answer["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 600.0) -> RunResult:
        """Wait until the prompt is in ``/history``; return it with its websocket messages.

        The websocket was opened before the prompt was queued, so no message is missed; history
        is polled as well because it is what ComfyUI writes last (and survives a lost socket).
        """
        deadline = time.monotonic() + timeout
        listener = self._listener
        entry = None
        while time.monotonic() < deadline:
            if not self.running:
                raise ServerError(f"ComfyUI died while running {prompt_id}\n{self.log_tail()}")
            entry = self.history(prompt_id)
            if entry is not None and self._ended_on_ws(prompt_id, wait_s=5.0):
                break
            if listener is not None:
                with listener.condition:
                    listener.condition.wait(timeout=1.0)
            else:
                time.sleep(1.0)
        else:
            raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f}s"
                               f"\n--- last lines of the log ---\n{self.log_tail()}")
        return RunResult(prompt_id, entry, self._messages_of(prompt_id))

    def run(self, api_graph: dict, timeout: float = 600.0, check: bool = True) -> RunResult:
        """Queue, wait, and (``check``) raise :class:`ExecutionFailed` if execution failed."""
        result = self.wait(self.queue(api_graph), timeout)
        return result.raise_for_error() if check else result

    def _ended_on_ws(self, prompt_id: str, wait_s: float) -> bool:
        """True once the terminal websocket message of the prompt arrived (or no socket exists)."""
        listener = self._listener
        if listener is None:
            return True
        deadline = time.monotonic() + wait_s
        with listener.condition:
            while True:
                for message in reversed(listener.messages):
                    if _prompt_id_of(message) == prompt_id and (
                            message["type"] in _TERMINAL_EVENTS
                            or (message["type"] == "executing" and message["data"].get("node") is None)):
                        return True
                remaining = deadline - time.monotonic()
                if listener.closed or remaining <= 0:
                    return True  # history is authoritative; the socket is only a recording
                listener.condition.wait(timeout=remaining)

    def _messages_of(self, prompt_id: str) -> list[dict]:
        """Messages tagged with the prompt id, plus untagged ones (previews, status) in between."""
        if self._listener is None:
            return []
        with self._listener.condition:
            messages = list(self._listener.messages)
        tagged = [i for i, m in enumerate(messages) if _prompt_id_of(m) == prompt_id]
        if not tagged:
            return []
        return [m for m in messages[tagged[0]:tagged[-1] + 1]
                if _prompt_id_of(m) in (None, prompt_id)]

    @property
    def messages(self) -> list[dict]:
        """Every websocket message received so far (a copy)."""
        if self._listener is None:
            return []
        with self._listener.condition:
            return list(self._listener.messages)
