"""Image conditioning: the original CLIP image preprocessing and the I2V Resampler."""
