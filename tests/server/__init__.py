"""End-to-end test support: a real headless ComfyUI (:mod:`.harness`) and media decoding (:mod:`.media`).

Importing this package starts nothing; ``tests/conftest.py`` owns the session's server.
"""
from .harness import ComfyServer, ExecutionFailed, PromptRejected, RunResult, ServerError, host
from .media import VideoInfo, probe_media, read_frames

__all__ = ["ComfyServer", "ExecutionFailed", "PromptRejected", "RunResult", "ServerError", "host",
           "VideoInfo", "probe_media", "read_frames"]
