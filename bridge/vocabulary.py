"""Every CONDITIONING key and ``transformer_options`` key the pack reads or writes, defined once.

Nodes write these keys into CONDITIONING (``node_helpers.conditioning_set_values``); ComfyUI hands them to
``VideoCrafterModel.extra_conds`` as keyword arguments, which turns each into the UNet input named in
:data:`UNET_INPUT_OF`. A key spelled differently in two places would silently turn a condition into a no-op,
so every module imports the names from here, and ``tests/test_vocabulary.py`` checks that no bare
``"videocrafter_…"`` string is used elsewhere.
"""
from __future__ import annotations

# --- CONDITIONING keys (per conditioning entry) -------------------------------------------------------------
FPS = "fps"  # frame-rate condition (VC2-512, VC1-1024, I2V); ``fps_embedding`` input
IMAGE_CONTEXT = "videocrafter_image_context"  # I2V: Resampler tokens [B, n, context_dim]
IMAGE_SCALE = "videocrafter_image_scale"  # I2V: weight of the image cross-attention
STYLE_CONTEXT = "videocrafter_style_context"  # StyleCrafter: style tokens (adapter's append_to_context)
STYLE_SCALES = "videocrafter_style_scales"  # StyleCrafter: per-layer factors (scale_scalar)
STYLE_WEIGHT = "videocrafter_style_weight"  # StyleCrafter: global style weight (--style_weight)
STYLE_SCALED_LOGITS = "videocrafter_style_scaled_logits"  # StyleCrafter: xformers-path (scaled) style logits

STRUCTURE_DEPTH = "videocrafter_structure_depth"  # Make-Your-Video: depth channel [T, 1, h, w] in [-1, 1]

STYLE_KEYS = (STYLE_CONTEXT, STYLE_SCALES, STYLE_WEIGHT, STYLE_SCALED_LOGITS)
#: Keys that carry the "second condition" of the multi-condition guider (style, or the I2V image).
CONDITION_KEYS = (*STYLE_KEYS, IMAGE_CONTEXT)

#: CONDITIONING key -> keyword argument of the UNet's forward (``ComfyVideoCrafterUNet.forward``).
UNET_INPUT_OF = {
    FPS: "fps",
    IMAGE_CONTEXT: "image_context",
    IMAGE_SCALE: "image_scale",
    STYLE_CONTEXT: "style_context",
    STYLE_SCALES: "style_scales",
    STYLE_WEIGHT: "style_weight",
    STYLE_SCALED_LOGITS: "style_scaled_logits",
}

# --- model condition names added by the model itself --------------------------------------------------------
NUM_VIDEO_FRAMES = "num_video_frames"  # frames per video of the batch-as-frames latent (core SVD's name)
#: Core's name for channels concatenated to the model input (``BaseModel._apply_model``); STRUCTURE_DEPTH goes there.
CONCAT_INPUT = "c_concat"

# --- transformer_options keys (per sampling call, read inside the UNet) -------------------------------------
TEMPORAL_OFF = "videocrafter_temporal_off"  # True: skip every temporal layer (temporal guidance, image mode)
#: FreeNoise (bridge/longvideo.py): override ``(layer, x, mask) -> out | None`` of every temporal self-attention.
TEMPORAL_ATTENTION = "videocrafter_temporal_attention"

# --- ModelPatcher attachments -------------------------------------------------------------------------------
STYLE_ADAPTER_ATTACHMENT = "videocrafter_style_adapter"  # StyleCrafter StyleTransformer + ScaleEncoder

# --- model construction -------------------------------------------------------------------------------------
#: The one ``unet_config`` entry of ``VideoCrafterConfig``: core passes it to the UNet's constructor as a keyword.
UNET_CONFIG_KWARG = "videocrafter_config"
