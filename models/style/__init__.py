"""StyleCrafter: the style adapter (StyleTransformer, ScaleEncoder, dual-attention K/V) and its layouts."""
