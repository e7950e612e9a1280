"""Training-free forms of VideoLDM's ideas (Blattmann et al. 2023, "Align your Latents").

No VideoLDM weights were released; these modules hold the pure-PyTorch math that lets a plain
VideoCrafter model do what VideoLDM's dedicated models do: keyframe interpolation by masked
generation (§3.3), long video by prediction from context frames (§3.2), patch-wise spatial
re-denoising (§3.4's upsampler, applied patch by patch), temporally chunked decoding (§3.1.1).
"""
