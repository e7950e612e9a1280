"""The VideoCrafter 3D UNet (openaimodel3d.py / attention.py of the original): blocks, config, detection."""
