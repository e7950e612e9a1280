"""Animated latent previews: the whole clip on the sampler node, every step, with any sampler.

Why here: core's previewers decode ``x0[:1]`` — for a batch-as-frames video latent ``[T, 4, h, w]``
that is frame 0 only. This module keeps core's preview machinery (its previewer choice — latent2rgb
or TAESD — its progress bar, its per-step callback, with the pack's DDIM and every core sampler) and
changes only what one step's preview contains, and only for clients that asked for it:

* :class:`VideoLatentFormat` marks the pack's models' latents as batch-as-frames video (an SD15
  latent format in every other respect), so ordinary image models are never touched;
* :func:`install` wraps ``latent_preview.get_previewer``: for a video latent format it returns an
  :class:`AnimatedPreviewer` around core's previewer;
* per step, :class:`AnimatedPreviewer` asks :data:`CLIENTS` whether the client that queued the
  prompt renders animated previews (the pack's web extension says so on ``POST`` :data:`ROUTE`,
  per websocket client id, following its user setting). If yes, it decodes every frame with core's
  previewer, lays them out as one contact-sheet JPEG and sends it as the JSON event :data:`EVENT`
  to that client, and returns no core preview (so the node does not flicker between a still and the
  clip). Otherwise — no extension (API clients, an older or newer frontend without it), the setting
  off, a single frame — core's own preview is returned unchanged.

A custom JSON event rather than a binary preview: unknown binary event types are a hard error in
the frontend, and core's binary preview path re-encodes a single PIL frame; JSON events are
delivered by every ComfyUI version to listeners and ignored (one console warning) by clients
without one. Cost per step for 16 frames of a 64x64 latent with latent2rgb: see
``tests/test_preview.py::test_animated_preview_cost_per_step`` (a few ms; a sampling step of the
real models takes seconds).
"""
from __future__ import annotations

import base64
import io
import itertools
import logging
import math
import sys
import threading
from collections import OrderedDict

import comfy.latent_formats
import latent_preview
import torch
from PIL import Image

EVENT = "videocrafter-suite.preview"
ROUTE = "/videocrafter-suite/preview"
JPEG_QUALITY = 85
MAX_CLIENTS = 256  # remembered opt-ins (one per browser tab); the oldest is forgotten first


class VideoLatentFormat(comfy.latent_formats.SD15):
    """SD VAE latents laid out batch-as-frames ``[B*T, 4, h, w]``: previews show the whole clip."""

    frames_in_batch = True


def is_video_latent_format(latent_format) -> bool:
    return bool(getattr(latent_format, "frames_in_batch", False))


class PreviewClients:
    """Which websocket clients render animated previews (their extension said so); thread-safe."""

    def __init__(self, capacity: int = MAX_CLIENTS):
        self.capacity = capacity
        self._wants: OrderedDict[str, bool] = OrderedDict()
        self._lock = threading.Lock()

    def set(self, client_id: str, animated: bool) -> None:
        with self._lock:
            self._wants.pop(client_id, None)
            self._wants[client_id] = bool(animated)
            while len(self._wants) > self.capacity:
                self._wants.popitem(last=False)

    def wants_animation(self, client_id: str | None) -> bool:
        with self._lock:
            return client_id is not None and self._wants.get(client_id, False)


CLIENTS = PreviewClients()


def grid_shape(frames: int) -> tuple[int, int]:
    """``(rows, columns)`` of a near-square grid: 64 frames of 512 px in one strip would pass JPEG's
    65535 px limit; a grid never does."""
    columns = math.ceil(math.sqrt(frames))
    return math.ceil(frames / columns), columns


def contact_sheet(frames: list[Image.Image]) -> tuple[Image.Image, int]:
    """All frames in one image, row-major on :func:`grid_shape`; returns ``(sheet, columns)``."""
    width, height = frames[0].size
    rows, columns = grid_shape(len(frames))
    sheet = Image.new("RGB", (columns * width, rows * height))
    for index, frame in enumerate(frames):
        sheet.paste(frame.convert("RGB"), ((index % columns) * width, (index // columns) * height))
    return sheet, columns


def latent_grid(x0: torch.Tensor) -> torch.Tensor:
    """``[T, C, h, w]`` → ``[1, C, rows*h, columns*w]``: the frames tiled like :func:`contact_sheet`
    (missing tiles zero), so a per-pixel previewer decodes the whole sheet in one call."""
    frames, channels, height, width = x0.shape
    rows, columns = grid_shape(frames)
    if rows * columns > frames:
        x0 = torch.cat([x0, x0.new_zeros([rows * columns - frames, channels, height, width])])
    tiles = x0.reshape(rows, columns, channels, height, width).permute(2, 0, 3, 1, 4)
    return tiles.reshape(1, channels, rows * height, columns * width)


def decode_sheet(previewer, x0: torch.Tensor) -> tuple[Image.Image, int, tuple[int, int]]:
    """Every frame of ``x0`` decoded by core's ``previewer``: ``(sheet, columns, frame size)``.

    latent2rgb is per pixel, so the tiled latent is decoded in one call (exactly the frames' own
    previews, one op instead of T); anything else (TAESD's convolutions would blur across tile
    borders) decodes frame by frame.
    """
    per_pixel = (isinstance(previewer, latent_preview.Latent2RGBPreviewer)
                 and getattr(previewer, "latent_rgb_factors_reshape", None) is None)
    if per_pixel:
        rows, columns = grid_shape(x0.shape[0])
        sheet = previewer.decode_latent_to_preview(latent_grid(x0)).convert("RGB")
        return sheet, columns, (sheet.size[0] // columns, sheet.size[1] // rows)
    frames = [previewer.decode_latent_to_preview(x0[index:index + 1]) for index in range(x0.shape[0])]
    sheet, columns = contact_sheet(frames)
    return sheet, columns, frames[0].size


def clip_payload(sheet: Image.Image, frames: int, columns: int, frame_size: tuple[int, int],
                 max_size: int | None) -> dict:
    """The event's body: the sheet as one base64 JPEG plus the layout the extension needs.

    Frames larger than ``max_size`` (core's ``--preview-size``) are shrunk; smaller ones are sent
    as they are (the browser scales them up for free; core's stills are enlarged to 512 instead).
    """
    width, height = frame_size
    if max_size and max(width, height) > max_size:
        scale = max_size / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        rows = math.ceil(frames / columns)
        sheet = sheet.resize((columns * width, rows * height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return {"frames": frames, "columns": columns, "frame_width": width, "frame_height": height,
            "mime": "image/jpeg", "image": base64.b64encode(buffer.getvalue()).decode("ascii")}


def _server():
    """ComfyUI's PromptServer, or None in-process (no server: its module is never imported here)."""
    module = sys.modules.get("server")
    return getattr(getattr(module, "PromptServer", None), "instance", None)


class AnimatedPreviewer(latent_preview.LatentPreviewer):
    """Core's previewer for one sampling run, showing every frame to clients that render clips."""

    _sequence = itertools.count(1)

    def __init__(self, inner):
        self.inner = inner

    def decode_latent_to_preview(self, x0):
        return self.inner.decode_latent_to_preview(x0)

    def decode_latent_to_preview_image(self, preview_format, x0):
        server = _server()
        client = getattr(server, "client_id", None)
        if server is None or x0.ndim != 4 or x0.shape[0] < 2 or not CLIENTS.wants_animation(client):
            return self.inner.decode_latent_to_preview_image(preview_format, x0)
        sheet, columns, frame_size = decode_sheet(self.inner, x0)
        payload = clip_payload(sheet, x0.shape[0], columns, frame_size, latent_preview.MAX_PREVIEW_RESOLUTION)
        payload.update(node=getattr(server, "last_node_id", None), prompt_id=getattr(server, "last_prompt_id", None),
                       sequence=next(self._sequence))
        server.send_sync(EVENT, payload, client)
        return None  # the clip replaces core's still of frame 0


def _wrap_get_previewer(original):
    def get_previewer(device, latent_format, *args, **kwargs):
        previewer = original(device, latent_format, *args, **kwargs)
        if previewer is None or not is_video_latent_format(latent_format):
            return previewer
        return AnimatedPreviewer(previewer)

    get_previewer.wrapped_by_videocrafter_suite = original
    return get_previewer


def _register_route(server) -> None:
    from aiohttp import web

    @server.routes.post(ROUTE)
    async def preview_opt_in(request):
        try:
            body = await request.json()
            client_id, animated = body["client_id"], body["animated"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected JSON {"client_id": str, "animated": bool}'}, status=400)
        if not isinstance(client_id, str) or not client_id or not isinstance(animated, bool):
            return web.json_response({"error": "client_id must be a non-empty string, animated a boolean"},
                                     status=400)
        CLIENTS.set(client_id, animated)
        return web.json_response({"client_id": client_id, "animated": animated})


_installed = False


def install() -> None:
    """Wrap core's previewer factory and add the opt-in route; once per process, idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    if not hasattr(latent_preview.get_previewer, "wrapped_by_videocrafter_suite"):
        latent_preview.get_previewer = _wrap_get_previewer(latent_preview.get_previewer)
    server = _server()
    if server is not None and hasattr(server, "routes"):
        _register_route(server)
    else:
        logging.info("VideoCrafter: no PromptServer (in-process use); animated previews are off")
