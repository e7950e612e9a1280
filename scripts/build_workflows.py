#!/usr/bin/env python3
"""Generate the example workflows: UI format (``workflows/*.json``) and API twins (``workflows/api/*.json``).

One Python description per graph produces both formats, so the twins cannot drift apart
(a test regenerates them in memory and compares with the committed files). Only core nodes
and this pack's nodes are used. Run: ``python3 scripts/build_workflows.py``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"

NEGATIVE_PROMPT = ""  # the original's unconditional input is the EMPTY prompt (funcs.py:19-38)


@dataclass
class Node:
    id: int
    type: str
    title: str
    pos: tuple
    widgets: list                      # (name, value) in the node's widget order
    inputs: dict = field(default_factory=dict)   # input name -> (node id, output slot, TYPE)
    outputs: list = field(default_factory=list)  # [(name, TYPE)]
    seed_control: str | None = None    # value of the extra "control_after_generate" widget
    ui_only_widgets: tuple = ()        # trailing widget values the UI stores but the API does not (LoadImage's upload)


LOADER_OUTPUTS = [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE"), ("CLIP_VISION", "CLIP_VISION")]


def _t2v_graph(ckpt: str, width: int, height: int, prompt: str, fps: int, prefix: str) -> list[Node]:
    return [
        Node(1, "VideoCrafterCheckpointLoader", "Load VideoCrafter Checkpoint", (40, 120),
             [("ckpt_name", ckpt)], outputs=LOADER_OUTPUTS),
        Node(2, "CLIPTextEncode", "Prompt", (420, 40), [("text", prompt)],
             {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(3, "CLIPTextEncode", "Empty prompt (unconditional, as the original)", (420, 260),
             [("text", NEGATIVE_PROMPT)], {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(4, "VideoCrafterVideoConditioning", "fps conditioning", (820, 120), [("fps", fps)],
             {"positive": (2, 0, "CONDITIONING"), "negative": (3, 0, "CONDITIONING")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
        Node(5, "CFGGuider", "CFG 12 (original default)", (1160, 40), [("cfg", 12.0)],
             {"model": (1, 0, "MODEL"), "positive": (4, 0, "CONDITIONING"), "negative": (4, 1, "CONDITIONING")},
             [("GUIDER", "GUIDER")]),
        Node(6, "VideoCrafterNoise", "Noise (original seed order)", (1160, 200), [("noise_seed", 123)],
             outputs=[("NOISE", "NOISE")], seed_control="fixed"),
        Node(7, "VideoCrafterDDIMSampler", "DDIM (eta 1.0)", (1160, 330), [("eta", 1.0)],
             outputs=[("SAMPLER", "SAMPLER")]),
        Node(8, "VideoCrafterDDIMSigmas", "DDIM 50 steps", (1160, 440), [("steps", 50), ("denoise", 1.0)],
             {"model": (1, 0, "MODEL")}, [("SIGMAS", "SIGMAS")]),
        Node(9, "VideoCrafterEmptyVideoLatent", "Video latent", (1160, 600),
             [("width", width), ("height", height), ("frames", 16)], outputs=[("LATENT", "LATENT")]),
        Node(10, "SamplerCustomAdvanced", "Sample", (1520, 200), [],
             {"noise": (6, 0, "NOISE"), "guider": (5, 0, "GUIDER"), "sampler": (7, 0, "SAMPLER"),
              "sigmas": (8, 0, "SIGMAS"), "latent_image": (9, 0, "LATENT")},
             [("output", "LATENT"), ("denoised_output", "LATENT")]),
        Node(11, "VAEDecode", "Decode frames", (1860, 200), [],
             {"samples": (10, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]),
        Node(12, "CreateVideo", "Frames to video", (2200, 200), [("fps", 10.0)],
             {"images": (11, 0, "IMAGE")}, [("VIDEO", "VIDEO")]),
        Node(13, "SaveVideo", "Save video", (2540, 200),
             [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")], {"video": (12, 0, "VIDEO")}),
    ]


def _i2v_graph(ckpt: str, image: str, prompt: str, prefix: str) -> list[Node]:
    """VideoCrafter1 I2V 512 as scripts/run_image2video.sh: 512x320, 16 frames, fps 8, cfg 12, DDIM 50, eta 1."""
    return [
        Node(1, "VideoCrafterCheckpointLoader", "Load VideoCrafter I2V Checkpoint", (40, 160),
             [("ckpt_name", ckpt)], outputs=LOADER_OUTPUTS),
        Node(2, "LoadImage", "Conditioning image", (40, 420), [("image", image)],
             outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], ui_only_widgets=("image",)),
        Node(3, "ImageScale", "Resize to the video size (as the original's loader)", (380, 420),
             [("upscale_method", "bilinear"), ("width", 512), ("height", 320), ("crop", "disabled")],
             {"image": (2, 0, "IMAGE")}, [("IMAGE", "IMAGE")]),
        Node(4, "CLIPTextEncode", "Prompt", (420, 40), [("text", prompt)],
             {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(5, "CLIPTextEncode", "Empty prompt (unconditional, as the original)", (420, 220),
             [("text", NEGATIVE_PROMPT)], {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(6, "VideoCrafterImageConditioning", "Image conditioning (fps 8; grey-image uncond)", (820, 160),
             [("fps", 8), ("image_strength", 1.0)],
             {"model": (1, 0, "MODEL"), "clip_vision": (1, 3, "CLIP_VISION"), "image": (3, 0, "IMAGE"),
              "positive": (4, 0, "CONDITIONING"), "negative": (5, 0, "CONDITIONING")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
        Node(7, "CFGGuider", "CFG 12 (original default)", (1160, 40), [("cfg", 12.0)],
             {"model": (1, 0, "MODEL"), "positive": (6, 0, "CONDITIONING"), "negative": (6, 1, "CONDITIONING")},
             [("GUIDER", "GUIDER")]),
        Node(8, "VideoCrafterNoise", "Noise (original seed order)", (1160, 200), [("noise_seed", 123)],
             outputs=[("NOISE", "NOISE")], seed_control="fixed"),
        Node(9, "VideoCrafterDDIMSampler", "DDIM (eta 1.0)", (1160, 330), [("eta", 1.0)],
             outputs=[("SAMPLER", "SAMPLER")]),
        Node(10, "VideoCrafterDDIMSigmas", "DDIM 50 steps", (1160, 440), [("steps", 50), ("denoise", 1.0)],
             {"model": (1, 0, "MODEL")}, [("SIGMAS", "SIGMAS")]),
        Node(11, "VideoCrafterEmptyVideoLatent", "Video latent", (1160, 600),
             [("width", 512), ("height", 320), ("frames", 16)], outputs=[("LATENT", "LATENT")]),
        Node(12, "SamplerCustomAdvanced", "Sample", (1520, 200), [],
             {"noise": (8, 0, "NOISE"), "guider": (7, 0, "GUIDER"), "sampler": (9, 0, "SAMPLER"),
              "sigmas": (10, 0, "SIGMAS"), "latent_image": (11, 0, "LATENT")},
             [("output", "LATENT"), ("denoised_output", "LATENT")]),
        Node(13, "VAEDecode", "Decode frames", (1860, 200), [],
             {"samples": (12, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]),
        Node(14, "CreateVideo", "Frames to video", (2200, 200), [("fps", 10.0)],
             {"images": (13, 0, "IMAGE")}, [("VIDEO", "VIDEO")]),
        Node(15, "SaveVideo", "Save video", (2540, 200),
             [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")], {"video": (14, 0, "VIDEO")}),
    ]


def _style_graph(base: str, prompt: str, prefix: str, *, image_mode: bool, multi_reference: bool) -> list[Node]:
    """StyleCrafter as scripts/run_infer_video.sh / run_infer_image.sh: the VC1-512 base patched with
    adapter_v1.pth (+ temporal_v1_1.pth for video); video 512x320x16, λ_t 15, λ_s 7.5; image 512x512,
    plain CFG 6 (the image script's DDIMSampler); DDIM 50, eta 1, seed 123."""
    nodes = [
        Node(1, "VideoCrafterCheckpointLoader", "Load VideoCrafter1 T2V 512 (StyleCrafter's base)", (40, 120),
             [("ckpt_name", base)], outputs=LOADER_OUTPUTS),
        Node(2, "VideoCrafterStyleCrafterLoader", "Load StyleCrafter " + ("(image mode)" if image_mode else "adapter + temporal"),
             (420, 420), [("adapter_name", "adapter_v1.pth"),
                          ("temporal_name", "none" if image_mode else "temporal_v1_1.pth"),
                          ("mode", "image" if image_mode else "video")],
             {"model": (1, 0, "MODEL")}, [("MODEL", "MODEL")]),
        Node(3, "CLIPVisionLoader", "OpenCLIP ViT-H/14 (style encoder)", (40, 560),
             [("clip_name", "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors")], outputs=[("CLIP_VISION", "CLIP_VISION")]),
        Node(4, "LoadImage", "Style reference", (40, 720), [("image", "style.png")],
             outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], ui_only_widgets=("image",)),
        Node(5, "CLIPTextEncode", "Prompt", (420, 40), [("text", prompt)],
             {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(6, "CLIPTextEncode", "Empty prompt (no text, no style: the original's uncond)", (420, 240),
             [("text", NEGATIVE_PROMPT)], {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
    ]
    style_inputs = {"model": (2, 0, "MODEL"), "clip_vision": (3, 0, "CLIP_VISION"), "style_images": (4, 0, "IMAGE"),
                    "positive": (5, 0, "CONDITIONING")}
    if multi_reference:
        nodes.append(Node(16, "LoadImage", "Second style reference", (40, 1020), [("image", "style_2.png")],
                          outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], ui_only_widgets=("image",)))
        style_inputs["more_style_images"] = (16, 0, "IMAGE")
    nodes.append(Node(7, "VideoCrafterStyleConditioning", "Style tokens + per-layer scales", (820, 160),
                      [("style_weight", 1.0), ("style_attention", "scaled (xformers path, released results)")],
                      style_inputs, [("positive", "CONDITIONING")]))
    size = (512, 512, 1) if image_mode else (512, 320, 16)
    latent = Node(11, "VideoCrafterEmptyVideoLatent", "Image latent (1 frame)" if image_mode else "Video latent",
                  (1160, 600), [("width", size[0]), ("height", size[1]), ("frames", size[2])],
                  outputs=[("LATENT", "LATENT")])
    if multi_reference:
        nodes += [latent, Node(12, "VideoCrafterStyleCrafterSampler", "StyleCrafter sampler (λ_t 15, λ_s 7.5, DDIM 50)", (1200, 160),
                               [("seed", 123), ("steps", 50), ("eta", 1.0), ("text_scale", 15.0),
                                ("condition_scale", 7.5), ("temporal_scale", 0.0)],
                               {"model": (2, 0, "MODEL"), "positive": (7, 0, "CONDITIONING"),
                                "negative": (6, 0, "CONDITIONING"), "latent_image": (11, 0, "LATENT")},
                               [("LATENT", "LATENT")], seed_control="fixed")]
    else:
        guider = (Node(8, "CFGGuider", "CFG 6 (the original image script)", (1160, 40), [("cfg", 6.0)],
                       {"model": (2, 0, "MODEL"), "positive": (7, 0, "CONDITIONING"),
                        "negative": (6, 0, "CONDITIONING")}, [("GUIDER", "GUIDER")]) if image_mode else
                  Node(8, "VideoCrafterMultiConditionGuider", "StyleCrafter guidance (λ_t 15, λ_s 7.5)", (1160, 40),
                       [("text_scale", 15.0), ("condition_scale", 7.5), ("temporal_scale", 0.0)],
                       {"model": (2, 0, "MODEL"), "positive": (7, 0, "CONDITIONING"),
                        "negative": (6, 0, "CONDITIONING")}, [("GUIDER", "GUIDER")]))
        nodes += [
            guider,
            Node(9, "VideoCrafterNoise", "Noise (original seed order)", (1160, 200), [("noise_seed", 123)],
                 outputs=[("NOISE", "NOISE")], seed_control="fixed"),
            Node(10, "VideoCrafterDDIMSampler", "DDIM (eta 1.0)", (1160, 330), [("eta", 1.0)],
                 outputs=[("SAMPLER", "SAMPLER")]),
            Node(17, "VideoCrafterDDIMSigmas", "DDIM 50 steps", (1160, 440), [("steps", 50), ("denoise", 1.0)],
                 {"model": (2, 0, "MODEL")}, [("SIGMAS", "SIGMAS")]),
            latent,
            Node(12, "SamplerCustomAdvanced", "Sample", (1520, 200), [],
                 {"noise": (9, 0, "NOISE"), "guider": (8, 0, "GUIDER"), "sampler": (10, 0, "SAMPLER"),
                  "sigmas": (17, 0, "SIGMAS"), "latent_image": (11, 0, "LATENT")},
                 [("output", "LATENT"), ("denoised_output", "LATENT")]),
        ]
    nodes.append(Node(13, "VAEDecode", "Decode frames", (1860, 200), [],
                      {"samples": (12, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]))
    if image_mode:
        nodes.append(Node(14, "SaveImage", "Save image", (2200, 200), [("filename_prefix", prefix)],
                          {"images": (13, 0, "IMAGE")}))
    else:
        nodes += [Node(14, "CreateVideo", "Frames to video (10 fps, as the original)", (2200, 200), [("fps", 10.0)],
                       {"images": (13, 0, "IMAGE")}, [("VIDEO", "VIDEO")]),
                  Node(15, "SaveVideo", "Save video", (2540, 200),
                       [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")], {"video": (14, 0, "VIDEO")})]
    return nodes


STYLE_BASE = "videocrafter1_t2v_512.safetensors"

GRAPHS = {
    "videocrafter2_t2v_512": _t2v_graph(
        "videocrafter2_t2v_512.safetensors", 512, 320,
        "A cat playing the piano in a cozy living room, high quality, detailed", 28, "videocrafter/vc2_t2v"),
    "videocrafter1_t2v_1024": _t2v_graph(
        "videocrafter1_t2v_1024.safetensors", 1024, 576,
        "An astronaut riding a horse on the beach at sunset, cinematic", 28, "videocrafter/vc1_t2v_1024"),
    "videocrafter1_i2v_512": _i2v_graph(
        "videocrafter1_i2v_512.safetensors", "example.png", "horses are walking on the grassland",
        "videocrafter/vc1_i2v_512"),
    "stylecrafter_style_video": _style_graph(STYLE_BASE, "A bear walking through a snowy forest",
                                             "videocrafter/stylecrafter_video", image_mode=False, multi_reference=False),
    "stylecrafter_style_image": _style_graph(STYLE_BASE, "A lighthouse on a cliff above the sea",
                                             "videocrafter/stylecrafter_image", image_mode=True, multi_reference=False),
    "stylecrafter_multi_reference_video": _style_graph(STYLE_BASE, "A sailboat drifting on a calm lake",
                                                       "videocrafter/stylecrafter_multi_ref", image_mode=False,
                                                       multi_reference=True),
}

# --- long video (FreeNoise, FIFO-Diffusion, context windows): scripts/workflows_longvideo.py -------------------
sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflows_longvideo import longvideo_graphs  # noqa: E402

GRAPHS.update(longvideo_graphs(Node, LOADER_OUTPUTS, NEGATIVE_PROMPT))


# ----------------------------------------------------------------------------------------------------------------
# VideoLDM blocks (docs/videoldm.md): keyframe interpolation, long video by prediction, temporal upscaling,
# temporal VAE decode. Each starts from the VC2 T2V graph's first ten nodes (loader … SamplerCustomAdvanced).
VIDEOLDM_CKPT = "videocrafter2_t2v_512.safetensors"
SVD_TEMPORAL_VAE = "svd_temporal_decoder_vae.safetensors"


def _videoldm_head(prompt: str, fps: int, frames: int) -> list[Node]:
    nodes = _t2v_graph(VIDEOLDM_CKPT, 512, 320, prompt, fps, "")[:10]
    nodes[8].widgets = [("width", 512), ("height", 320), ("frames", frames)]
    return nodes


def _video_tail(first_id: int, images: tuple, fps: float, prefix: str, x: int) -> list[Node]:
    return [Node(first_id, "CreateVideo", "Frames to video", (x, 200), [("fps", fps)],
                 {"images": images}, [("VIDEO", "VIDEO")]),
            Node(first_id + 1, "SaveVideo", "Save video", (x + 340, 200),
                 [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")],
                 {"video": (first_id, 0, "VIDEO")})]


def _interpolation_nodes(first_id: int, keyframes: tuple, factor: int, x: int) -> list[Node]:
    """Keyframes → ×factor latent with noise_mask, fps ×factor, RePaint around the DDIM, windowed sampling."""
    i = first_id
    return [
        Node(i, "VideoCrafterKeyframeInterpolation", f"Keyframes ×{factor} (VideoLDM §3.3)", (x, 40),
             [("factor", factor), ("init", "linear")], {"keyframes": keyframes}, [("LATENT", "LATENT")]),
        Node(i + 1, "VideoCrafterFrameRateScale", f"fps ×{factor}", (x, 260), [("factor", factor)],
             {"positive": (4, 0, "CONDITIONING"), "negative": (4, 1, "CONDITIONING")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
        Node(i + 2, "CFGGuider", "CFG 12 at the new frame rate", (x + 340, 260), [("cfg", 12.0)],
             {"model": (1, 0, "MODEL"), "positive": (i + 1, 0, "CONDITIONING"),
              "negative": (i + 1, 1, "CONDITIONING")}, [("GUIDER", "GUIDER")]),
        Node(i + 3, "VideoCrafterRePaintSampler", "RePaint (j 2, r 2) around DDIM", (x + 340, 440),
             [("jump", 2), ("resample", 2)], {"sampler": (7, 0, "SAMPLER")}, [("SAMPLER", "SAMPLER")]),
        Node(i + 4, "VideoCrafterKeyframeSampler", "Fill in between (16-frame windows)", (x + 680, 200),
             [("window_frames", 16)],
             {"noise": (6, 0, "NOISE"), "guider": (i + 2, 0, "GUIDER"), "sampler": (i + 3, 0, "SAMPLER"),
              "sigmas": (8, 0, "SIGMAS"), "latent_image": (i, 0, "LATENT")}, [("LATENT", "LATENT")]),
    ]


def _videoldm_interpolation_graph() -> list[Node]:
    """4 keyframes at fps 7 → ×4 = 16 frames at fps 28."""
    nodes = _videoldm_head("A hot air balloon rising over a valley at dawn", 7, 4)
    nodes += _interpolation_nodes(11, (10, 0, "LATENT"), 4, 1860)
    nodes.append(Node(16, "VAEDecode", "Decode frames", (2900, 200), [],
                      {"samples": (15, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]))
    return nodes + _video_tail(17, (16, 0, "IMAGE"), 28.0, "videocrafter/videoldm_interpolation", 3240)


def _videoldm_prediction_graph() -> list[Node]:
    """16 frames, then 4 segments of 16 frames each predicted from the last 4: 16 + 4·12 = 64 frames."""
    nodes = _videoldm_head("A red kite flying over the sea, steady camera", 28, 16)
    nodes += [
        Node(11, "VideoCrafterExtendByPrediction", "Extend by prediction (VideoLDM §3.2)", (1860, 200),
             [("segments", 4), ("segment_frames", 16), ("context_frames", 4), ("blend", "hold")],
             {"noise": (6, 0, "NOISE"), "guider": (5, 0, "GUIDER"), "sampler": (7, 0, "SAMPLER"),
              "sigmas": (8, 0, "SIGMAS"), "latent_image": (10, 0, "LATENT")}, [("LATENT", "LATENT")]),
        Node(12, "VAEDecode", "Decode frames", (2200, 200), [],
             {"samples": (11, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")])]
    return nodes + _video_tail(13, (12, 0, "IMAGE"), 10.0, "videocrafter/videoldm_long_video", 2540)


def _videoldm_upscale_graph() -> list[Node]:
    """16 frames at fps 7 → fps ×4 (64 frames, fps 28) → spatial ×2, re-denoised in tiles (denoise 0.5)."""
    nodes = _videoldm_head("Waves breaking on a rocky shore, aerial view", 7, 16)
    nodes += _interpolation_nodes(11, (10, 0, "LATENT"), 4, 1860)
    nodes += [
        Node(16, "LatentUpscaleBy", "Spatial ×2", (2900, 40), [("upscale_method", "bilinear"), ("scale_by", 2.0)],
             {"samples": (15, 0, "LATENT")}, [("LATENT", "LATENT")]),
        Node(17, "VideoCrafterDDIMSigmas", "DDIM 50 steps, denoise 0.5", (2900, 260),
             [("steps", 50), ("denoise", 0.5)], {"model": (1, 0, "MODEL")}, [("SIGMAS", "SIGMAS")]),
        Node(18, "VideoCrafterTiledRedenoise", "Re-denoise in tiles (patch-wise upsampler)", (3240, 200),
             [("tile_width", 512), ("tile_height", 320), ("overlap", 64)],
             {"noise": (6, 0, "NOISE"), "guider": (13, 0, "GUIDER"), "sampler": (7, 0, "SAMPLER"),
              "sigmas": (17, 0, "SIGMAS"), "latent_image": (16, 0, "LATENT")}, [("LATENT", "LATENT")]),
        Node(19, "VAEDecode", "Decode frames", (3580, 200), [],
             {"samples": (18, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")])]
    return nodes + _video_tail(20, (19, 0, "IMAGE"), 28.0, "videocrafter/videoldm_temporal_upscale", 3920)


def _videoldm_temporal_vae_graph() -> list[Node]:
    """VC2 T2V 16 frames decoded as one clip by the Stable Video Diffusion temporal decoder (VideoLDM §3.1.1)."""
    nodes = _videoldm_head("A hummingbird hovering at a flower, slow motion", 28, 16)
    nodes += [
        Node(11, "VAELoader", "SVD temporal-decoder VAE (SGM layout)", (1520, 520), [("vae_name", SVD_TEMPORAL_VAE)],
             outputs=[("VAE", "VAE")]),
        Node(12, "VideoCrafterTemporalVAEDecode", "Decode as one clip (temporal decoder)", (1860, 200),
             [("frames_per_clip", 0), ("chunk_frames", 0), ("chunk_overlap", 4)],
             {"samples": (10, 0, "LATENT"), "vae": (11, 0, "VAE")}, [("IMAGE", "IMAGE")])]
    return nodes + _video_tail(13, (12, 0, "IMAGE"), 10.0, "videocrafter/videoldm_temporal_vae", 2200)


GRAPHS.update({
    "videoldm_keyframe_interpolation": _videoldm_interpolation_graph(),
    "videoldm_long_video_prediction": _videoldm_prediction_graph(),
    "videoldm_temporal_upscale": _videoldm_upscale_graph(),
    "videoldm_temporal_vae_decode": _videoldm_temporal_vae_graph(),
})
# ------------------------------------------------------------------------------------------ end of VideoLDM block


# ---------------------------------------------------------------------------------------------------------------
# Structure-guided video (Make-Your-Video, Gen-1's structure input): docs/structure.md
MYV_CKPT = "makeyourvideo_256.safetensors"
MYV_DEPTH_MODEL = "dpt_hybrid-midas-501f0c75.pt"


def _myv_graph(clip: str, prompt: str, prefix: str, *, latent_init: bool) -> list[Node]:
    """Make-Your-Video video re-rendering as scripts/run.sh: 16 frames every 2nd, 256x256, MiDaS DPT-Hybrid depth
    (384x384 model grid, then resized to the latent size as the original), the same depth on positive and negative,
    cfg 7.5, DDIM 50 steps, eta 1.0, seed 123, saved at 8 fps. ``latent_init``: start from the VAE-encoded clip
    at denoise 0.7 instead of pure noise (closer to the source; not in the original)."""
    nodes = [
        Node(1, "VideoCrafterCheckpointLoader", "Load Make-Your-Video (model.ckpt as safetensors)", (40, 40),
             [("ckpt_name", MYV_CKPT)], outputs=LOADER_OUTPUTS),
        Node(2, "LoadVideo", "Your clip", (40, 420), [("file", clip)], outputs=[("VIDEO", "VIDEO")],
             ui_only_widgets=("image",)),
        Node(3, "GetVideoComponents", "Clip frames", (360, 420), [], {"video": (2, 0, "VIDEO")},
             [("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT")]),
        Node(4, "VideoCrafterSampleClip", "16 frames, stride 2, 256x256 (as the original)", (680, 420),
             [("frames", 16), ("frame_stride", 2), ("width", 256), ("height", 256), ("resize", "squash (original)")],
             {"images": (3, 0, "IMAGE")}, [("frames", "IMAGE")]),
        Node(5, "VideoCrafterDepthModelLoader", "MiDaS DPT-Hybrid (Make-Your-Video's estimator)", (680, 640),
             [("model_name", MYV_DEPTH_MODEL)], outputs=[("depth_model", "DEPTH_MODEL")]),
        Node(6, "VideoCrafterDepthEstimator", "Depth of every frame", (1020, 520),
             [("batch_size", 4), ("resolution", 384), ("output_size", "model grid")],
             {"depth_model": (5, 0, "DEPTH_MODEL"), "images": (4, 0, "IMAGE")}, [("depth", "IMAGE")]),
        Node(7, "CLIPTextEncode", "Prompt", (420, 40), [("text", prompt)],
             {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(8, "CLIPTextEncode", "Empty prompt (unconditional, as the original)", (420, 220),
             [("text", NEGATIVE_PROMPT)], {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
    ]
    if latent_init:
        nodes.append(Node(9, "VAEEncode", "Encode the clip (latent init)", (1020, 760), [],
                          {"pixels": (4, 0, "IMAGE"), "vae": (1, 2, "VAE")}, [("LATENT", "LATENT")]))
    else:
        nodes.append(Node(9, "VideoCrafterEmptyVideoLatent", "Video latent 256x256x16", (1020, 760),
                          [("width", 256), ("height", 256), ("frames", 16)], outputs=[("LATENT", "LATENT")]))
    nodes += [
        Node(10, "VideoCrafterStructureConditioning", "Depth structure on positive AND negative", (1360, 300),
             [("structure_blur", 0), ("clip_normalise", False)],
             {"model": (1, 0, "MODEL"), "positive": (7, 0, "CONDITIONING"), "negative": (8, 0, "CONDITIONING"),
              "depth": (6, 0, "IMAGE"), "latent": (9, 0, "LATENT")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
        Node(11, "CFGGuider", "CFG 7.5 (original default)", (1720, 40), [("cfg", 7.5)],
             {"model": (1, 0, "MODEL"), "positive": (10, 0, "CONDITIONING"), "negative": (10, 1, "CONDITIONING")},
             [("GUIDER", "GUIDER")]),
        Node(12, "VideoCrafterNoise", "Noise (original seed order)", (1720, 200), [("noise_seed", 123)],
             outputs=[("NOISE", "NOISE")], seed_control="fixed"),
        Node(13, "VideoCrafterDDIMSampler", "DDIM (eta 1.0)", (1720, 330), [("eta", 1.0)],
             outputs=[("SAMPLER", "SAMPLER")]),
        Node(14, "VideoCrafterDDIMSigmas", "DDIM 50 steps" + (", denoise 0.7" if latent_init else ""), (1720, 440),
             [("steps", 50), ("denoise", 0.7 if latent_init else 1.0)], {"model": (1, 0, "MODEL")},
             [("SIGMAS", "SIGMAS")]),
        Node(15, "SamplerCustomAdvanced", "Sample", (2080, 200), [],
             {"noise": (12, 0, "NOISE"), "guider": (11, 0, "GUIDER"), "sampler": (13, 0, "SAMPLER"),
              "sigmas": (14, 0, "SIGMAS"), "latent_image": (9, 0, "LATENT")},
             [("output", "LATENT"), ("denoised_output", "LATENT")]),
        Node(16, "VAEDecode", "Decode frames", (2420, 200), [],
             {"samples": (15, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]),
        Node(17, "CreateVideo", "Frames to video (8 fps, as the original saves)", (2760, 200), [("fps", 8.0)],
             {"images": (16, 0, "IMAGE")}, [("VIDEO", "VIDEO")]),
        Node(18, "SaveVideo", "Save video", (3100, 200),
             [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")], {"video": (17, 0, "VIDEO")}),
    ]
    return nodes


STRUCTURE_GRAPHS = {
    "makeyourvideo_depth_v2v": _myv_graph("input_clip.mp4", "a tiger walking in the snow, high quality",
                                          "videocrafter/makeyourvideo", latent_init=False),
    "makeyourvideo_depth_v2v_latent_init": _myv_graph("input_clip.mp4", "a tiger walking in the snow, high quality",
                                                      "videocrafter/makeyourvideo_init", latent_init=True),
}
GRAPHS.update(STRUCTURE_GRAPHS)


# --- depth structure: depth ControlNet with VideoCrafter2 (experimental; docs/depth_estimation.md) ----------------


def _depth_controlnet_graph(ckpt: str, clip: str, depth_model: str, control_net: str, prompt: str,
                            prefix: str) -> list[Node]:
    """A user's clip → 16 frames at 512x320 → MiDaS depth video → core ControlNet on VC2's conditioning → KSampler.

    Experimental: SD2.1 depth ControlNets fit VideoCrafter2's UNet shape for shape (same widths, 1024-wide
    OpenCLIP-H text) but were not trained on it; frame i of the depth video guides latent frame i."""
    return [
        Node(1, "VideoCrafterCheckpointLoader", "Load VideoCrafter2", (40, 120), [("ckpt_name", ckpt)],
             outputs=LOADER_OUTPUTS),
        Node(2, "LoadVideo", "Your clip", (40, 520), [("file", clip)], outputs=[("VIDEO", "VIDEO")],
             ui_only_widgets=("image",)),
        Node(3, "GetVideoComponents", "Frames", (360, 520), [], {"video": (2, 0, "VIDEO")},
             [("images", "IMAGE"), ("audio", "AUDIO"), ("fps", "FLOAT")]),
        Node(4, "ImageFromBatch", "First 16 frames", (680, 520), [("batch_index", 0), ("length", 16)],
             {"image": (3, 0, "IMAGE")}, [("IMAGE", "IMAGE")]),
        Node(5, "ImageScale", "Resize/crop to 512x320", (1000, 520),
             [("upscale_method", "bicubic"), ("width", 512), ("height", 320), ("crop", "center")],
             {"image": (4, 0, "IMAGE")}, [("IMAGE", "IMAGE")]),
        Node(6, "VideoCrafterDepthModelLoader", "Load MiDaS DPT-Hybrid", (1000, 760), [("model_name", depth_model)],
             outputs=[("depth_model", "DEPTH_MODEL")]),
        Node(7, "VideoCrafterDepthEstimator", "Depth video (near = bright)", (1320, 600),
             [("batch_size", 4), ("resolution", 384), ("output_size", "input size")],
             {"depth_model": (6, 0, "DEPTH_MODEL"), "images": (5, 0, "IMAGE")}, [("depth", "IMAGE")]),
        Node(8, "CLIPTextEncode", "Prompt", (420, 40), [("text", prompt)],
             {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(9, "CLIPTextEncode", "Empty prompt (unconditional, as the original)", (420, 260),
             [("text", NEGATIVE_PROMPT)], {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(10, "VideoCrafterVideoConditioning", "fps conditioning", (820, 120), [("fps", 28)],
             {"positive": (8, 0, "CONDITIONING"), "negative": (9, 0, "CONDITIONING")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
        Node(11, "ControlNetLoader", "SD2.1 depth ControlNet (experimental)", (1320, 820),
             [("control_net_name", control_net)], outputs=[("CONTROL_NET", "CONTROL_NET")]),
        Node(12, "ControlNetApplyAdvanced", "Apply depth per frame (experimental)", (1660, 160),
             [("strength", 0.6), ("start_percent", 0.0), ("end_percent", 1.0)],
             {"positive": (10, 0, "CONDITIONING"), "negative": (10, 1, "CONDITIONING"),
              "control_net": (11, 0, "CONTROL_NET"), "image": (7, 0, "IMAGE")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
        Node(13, "VideoCrafterEmptyVideoLatent", "Video latent (16 frames, 512x320)", (1660, 420),
             [("width", 512), ("height", 320), ("frames", 16)], outputs=[("LATENT", "LATENT")]),
        Node(14, "KSampler", "Sample (DDIM 50, cfg 12)", (2000, 200),
             [("seed", 123), ("steps", 50), ("cfg", 12.0), ("sampler_name", "ddim"),
              ("scheduler", "ddim_uniform"), ("denoise", 1.0)],
             {"model": (1, 0, "MODEL"), "positive": (12, 0, "CONDITIONING"), "negative": (12, 1, "CONDITIONING"),
              "latent_image": (13, 0, "LATENT")}, [("LATENT", "LATENT")], seed_control="fixed"),
        Node(15, "VAEDecode", "Decode frames", (2340, 200), [],
             {"samples": (14, 0, "LATENT"), "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]),
        Node(16, "CreateVideo", "Frames to video", (2680, 200), [("fps", 10.0)],
             {"images": (15, 0, "IMAGE")}, [("VIDEO", "VIDEO")]),
        Node(17, "SaveVideo", "Save video", (3020, 200),
             [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")], {"video": (16, 0, "VIDEO")}),
    ]


GRAPHS["videocrafter2_depth_controlnet_experimental"] = _depth_controlnet_graph(
    "videocrafter2_t2v_512.safetensors", "input_clip.mp4", "dpt_hybrid-midas-501f0c75.pt",
    "controlnet_sd21_depth.safetensors", "A robot walking through a neon city at night, detailed",
    "videocrafter/vc2_depth_controlnet")


def to_api(nodes: list[Node]) -> dict:
    graph = {}
    for node in nodes:
        inputs = {name: value for name, value in node.widgets}
        inputs.update({name: [str(src), slot] for name, (src, slot, _type) in node.inputs.items()})
        graph[str(node.id)] = {"class_type": node.type, "inputs": inputs, "_meta": {"title": node.title}}
    return graph


def to_ui(nodes: list[Node]) -> dict:
    links, link_id = [], 0
    incoming: dict[tuple, int] = {}
    for node in nodes:
        for slot_index, (name, (src, slot, type_)) in enumerate(node.inputs.items()):
            link_id += 1
            links.append([link_id, src, slot, node.id, slot_index, type_])
            incoming[(node.id, name)] = link_id
    ui_nodes = []
    for order, node in enumerate(nodes):
        outputs = []
        for slot, (name, type_) in enumerate(node.outputs):
            out_links = [link[0] for link in links if link[1] == node.id and link[2] == slot]
            outputs.append({"name": name, "type": type_, "links": out_links, "slot_index": slot})
        widgets = [value for _name, value in node.widgets]
        if node.seed_control is not None:
            widgets.insert(1, node.seed_control)
        widgets += list(node.ui_only_widgets)
        ui_nodes.append({
            "id": node.id, "type": node.type, "title": node.title, "pos": list(node.pos), "size": [300, 100],
            "flags": {}, "order": order, "mode": 0,
            "inputs": [{"name": name, "type": type_, "link": incoming[(node.id, name)]}
                       for name, (_s, _sl, type_) in node.inputs.items()],
            "outputs": outputs, "properties": {"Node name for S&R": node.type}, "widgets_values": widgets,
        })
    return {"last_node_id": max(n.id for n in nodes), "last_link_id": link_id, "nodes": ui_nodes, "links": links,
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


def render() -> dict[Path, str]:
    """Every workflow file's path and exact text."""
    files = {}
    for name, nodes in GRAPHS.items():
        files[WORKFLOWS / f"{name}.json"] = json.dumps(to_ui(nodes), indent=1) + "\n"
        files[WORKFLOWS / "api" / f"{name}.json"] = json.dumps(to_api(nodes), indent=1) + "\n"
    return files


def main() -> int:
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
