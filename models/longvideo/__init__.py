"""Long video beyond the training length on VideoCrafter models (pure PyTorch, no ComfyUI).

- :mod:`.freenoise`: FreeNoise (arthur-qiu/LongerCrafter) noise rescheduling and window-fused
  temporal attention.
- :mod:`.fifo`: FIFO-Diffusion (jjihwan/FIFO-Diffusion_public) diagonal denoising.
"""
