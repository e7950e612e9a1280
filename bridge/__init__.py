"""The one layer that touches ComfyUI internals (``comfy.*``, ``comfy_api``, ``folder_paths``).

``models/`` stays pure PyTorch; ``nodes/`` stays declarative. Everything that has to know how
ComfyUI builds a MODEL, samples, or registers folders lives here:

- :mod:`.api`          the pinned V3 node API (``comfy_api.v0_0_2``)
- :mod:`.model`        ``BASE`` config, ``BaseModel`` subclass and the scale-aware ``ModelSampling``
- :mod:`.checkpoint`   safe checkpoint loading → MODEL, CLIP, VAE
- :mod:`.ddim`         the original's exact DDIM as a SAMPLER, its SIGMAS, and original-order NOISE
- :mod:`.paths`        model folder registration
"""
