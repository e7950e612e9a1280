"""Pure PyTorch building blocks of the VideoCrafter family (no ComfyUI import, ever)."""
