"""Pure PyTorch building blocks of the VideoCrafter family (no ComfyUI import, ever).

One sub-room per family, so a reader finds a feature in one hop:

=================  ==================================================================================
``unet/``          the 3D UNet: blocks, attention, config and its detection from checkpoint keys
``sampling/``      noise schedules (incl. the scale schedule), the original DDIM, guidance formulas
``checkpoints/``   the one safe reader, strict loading, checkpoint key layouts of every component
``image/``         image conditioning: the original CLIP preprocessing, the I2V Resampler
``style/``         StyleCrafter: style adapter and its checkpoint layouts
=================  ==================================================================================
"""
