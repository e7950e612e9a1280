"""MiDaS v3 DPT depth networks (DPT-Hybrid ``vitb_rn50_384`` and DPT-Large ``vitl16_384``), pure PyTorch.

Re-implementation of MiDaS v3 ``midas/dpt_depth.py`` (``DPT``, ``DPTDepthModel``), ``midas/vit.py``
(``forward_vit``, ``forward_flex``, ``ProjectReadout``, ``_make_vit_b_rn50_backbone``,
``_make_vit_b16_backbone``) and ``midas/blocks.py`` (``_make_scratch``, ``FeatureFusionBlock_custom``,
``ResidualConvUnit_custom``) as vendored by Make-Your-Video (``lvdm/modules/encoders/midas``, reference
README §0, §4.2). Module names reproduce the released state-dict keys (``pretrained.model.*``,
``pretrained.act_postprocess{1-4}.*``, ``scratch.*``), so ``dpt_hybrid-midas-501f0c75.pt`` and
``dpt_large-midas-2f21e586.pt`` load with ``strict=True``. The encoders are in ``dpt_backbone``.

Sizes are read from a state dict's shapes (:meth:`DPTConfig.from_state_dict`); only the number of
attention heads is not visible in any shape: the released files use 64-wide heads (12 for ViT-B,
16 for ViT-L), other layouts pass ``num_heads``.

The forward returns MiDaS's relative inverse depth (larger = nearer), ``[N, H, W]``, ReLU'd
(``non_negative=True``, as both released models and Make-Your-Video use, ``api.py:78-93``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .dpt_backbone import HybridEmbed, PatchEmbed, ResNetV2, VisionTransformer

HYBRID = "vitb_rn50_384"
LARGE = "vitl16_384"
#: ``DPT.__init__`` hooks per backbone (``dpt_depth.py:35-39``). Hybrid: ResNet stages 0 and 1 feed
#: the two finest levels, ViT blocks 8 and 11 the coarse ones.
HOOKS = {HYBRID: (0, 1, 8, 11), LARGE: (5, 11, 17, 23)}
RELEASED_HEAD_DIM = 64          # ViT-B/16: 768/12, ViT-L/16: 1024/16
PATCH_SIZE = 16
NET_SIZE = 384                  # both models' training / Make-Your-Video's input size
VIT_PREFIX = "pretrained.model."
HYBRID_MARKER = VIT_PREFIX + "patch_embed.backbone.stem.conv.weight"


class DPTLayoutError(ValueError):
    """A state dict that is not a MiDaS v3 DPT-Hybrid / DPT-Large layout; the message says why."""


@dataclass(frozen=True)
class DPTConfig:
    """Every size of a DPT depth model. Defaults = the released DPT-Hybrid."""

    backbone: str = HYBRID
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_hidden: int = 3072
    grid: int = NET_SIZE // PATCH_SIZE
    num_classes: int = 1000
    hooks: tuple[int, ...] = HOOKS[HYBRID]
    reassemble_channels: tuple[int, ...] = (256, 512, 768, 768)  # _make_scratch in_shape
    features: int = 256
    head_hidden: int = 32                                         # output_conv.2 (fixed in MiDaS)
    non_negative: bool = True
    # hybrid only: the ResNetV2 trunk
    stem_channels: int = 64
    resnet_depths: tuple[int, ...] = (3, 4, 9)
    resnet_channels: tuple[int, ...] = (256, 512, 1024)
    resnet_mid_channels: tuple[int, ...] = field(default=(64, 128, 256))

    def __post_init__(self):
        if self.backbone not in HOOKS:
            raise DPTLayoutError(f"unknown DPT backbone {self.backbone!r}; expected {HYBRID!r} or {LARGE!r}")
        if self.num_heads < 1 or self.embed_dim % self.num_heads:
            raise DPTLayoutError(f"ViT width {self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if len(self.hooks) != 4 or max(self.hooks) >= self.depth:
            raise DPTLayoutError(f"hooks {self.hooks} do not fit a {self.depth}-block ViT")

    @property
    def is_hybrid(self) -> bool:
        return self.backbone == HYBRID

    @classmethod
    def dpt_hybrid(cls) -> "DPTConfig":
        """``dpt_hybrid-midas-501f0c75.pt``: 123,146,985 parameters."""
        return cls()

    @classmethod
    def dpt_large(cls) -> "DPTConfig":
        """``dpt_large-midas-2f21e586.pt``: 344,055,465 parameters."""
        return cls(backbone=LARGE, embed_dim=1024, depth=24, num_heads=16, mlp_hidden=4096, hooks=HOOKS[LARGE],
                   reassemble_channels=(256, 512, 1024, 1024))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], num_heads: int | None = None) -> "DPTConfig":
        """Sizes from the shapes of a (prefix-free) DPT state dict; hybrid vs large from its keys."""
        def shape(key):
            if key not in state:
                raise DPTLayoutError(f"not a MiDaS DPT state dict: key '{key}' is missing")
            return tuple(state[key].shape)

        hybrid = HYBRID_MARKER in state
        embed_dim = shape(VIT_PREFIX + "pos_embed")[-1]
        tokens = shape(VIT_PREFIX + "pos_embed")[1] - 1
        depth = _count(state, VIT_PREFIX + "blocks.")
        if depth == 0:
            raise DPTLayoutError("not a MiDaS DPT state dict: no 'pretrained.model.blocks.*' keys")
        heads = num_heads if num_heads is not None else max(embed_dim // RELEASED_HEAD_DIM, 1)
        common = dict(
            embed_dim=embed_dim, depth=depth, num_heads=heads,
            mlp_hidden=shape(VIT_PREFIX + "blocks.0.mlp.fc1.weight")[0], grid=int(round(tokens ** 0.5)),
            num_classes=shape(VIT_PREFIX + "head.weight")[0],
            reassemble_channels=tuple(shape(f"scratch.layer{i}_rn.weight")[1] for i in range(1, 5)),
            features=shape("scratch.layer1_rn.weight")[0], head_hidden=shape("scratch.output_conv.2.weight")[0])
        if not hybrid:
            return cls(backbone=LARGE, hooks=HOOKS[LARGE], **common)
        trunk = VIT_PREFIX + "patch_embed.backbone."
        stages = _count(state, trunk + "stages.")
        depths = tuple(_count(state, f"{trunk}stages.{s}.blocks.") for s in range(stages))
        return cls(backbone=HYBRID, hooks=HOOKS[HYBRID], stem_channels=shape(trunk + "stem.conv.weight")[0],
                   resnet_depths=depths,
                   resnet_channels=tuple(shape(f"{trunk}stages.{s}.blocks.0.conv3.weight")[0] for s in range(stages)),
                   resnet_mid_channels=tuple(shape(f"{trunk}stages.{s}.blocks.0.conv1.weight")[0]
                                             for s in range(stages)),
                   **common)


def _count(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of consecutive integer children ``prefix{i}.`` present in ``state``."""
    indices = {int(k[len(prefix):].split(".", 1)[0]) for k in state
               if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()}
    count = 0
    while count in indices:
        count += 1
    return count


def detect_backbone(state: Mapping[str, torch.Tensor]) -> str:
    """``vitb_rn50_384`` (hybrid: has the ResNet stem) or ``vitl16_384``; raises for anything else."""
    if VIT_PREFIX + "pos_embed" not in state or "scratch.layer1_rn.weight" not in state:
        raise DPTLayoutError("not a MiDaS v3 DPT state dict (no 'pretrained.model.pos_embed' / "
                             "'scratch.layer1_rn.weight'): expected dpt_hybrid-midas-501f0c75.pt or "
                             "dpt_large-midas-2f21e586.pt")
    return HYBRID if HYBRID_MARKER in state else LARGE


class ProjectReadout(nn.Module):
    """``readout='project'``: each patch token concatenated with the cls token → Linear → GELU."""

    def __init__(self, dim: int, **factory):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * dim, dim, **factory), nn.GELU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, 1:]
        return self.project(torch.cat([patches, tokens[:, :1].expand_as(patches)], dim=-1))


class Reassemble(nn.Module):
    """``act_postprocess{i}``: readout → tokens to a grid → 1×1 conv → optional resample.

    Children are named by their index in MiDaS's ``nn.Sequential`` (0 readout, 1 Transpose and
    2 Unflatten have no weights, 3 the 1×1 conv, 4 the resample), so keys match the files.
    """

    def __init__(self, dim: int, out_channels: int, resample: nn.Module | None, **factory):
        super().__init__()
        self.add_module("0", ProjectReadout(dim, **factory))
        self.add_module("3", nn.Conv2d(dim, out_channels, 1, **factory))
        if resample is not None:
            self.add_module("4", resample)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = self._modules["0"](tokens).transpose(1, 2).unflatten(2, grid)
        x = self._modules["3"](x)
        return self._modules["4"](x) if "4" in self._modules else x


class ResidualConvUnit(nn.Module):
    """``ResidualConvUnit_custom`` (bn=False): ``x + conv2(relu(conv1(relu(x))))``."""

    def __init__(self, features: int, **factory):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, **factory)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusion(nn.Module):
    """``FeatureFusionBlock_custom``: (+ RCU(skip)) → RCU → ×2 bilinear (align_corners) → 1×1 conv."""

    def __init__(self, features: int, **factory):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1, **factory)
        self.resConfUnit1 = ResidualConvUnit(features, **factory)
        self.resConfUnit2 = ResidualConvUnit(features, **factory)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Upsample2x(nn.Module):
    """``blocks.Interpolate(scale_factor=2, mode='bilinear', align_corners=True)`` inside the head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def _head(features: int, hidden: int, non_negative: bool, **factory) -> nn.Sequential:
    """``DPTDepthModel`` head (``dpt_depth.py:91-99``); indices 0, 2, 4 hold the weights."""
    return nn.Sequential(
        nn.Conv2d(features, features // 2, 3, padding=1, **factory), Upsample2x(),
        nn.Conv2d(features // 2, hidden, 3, padding=1, **factory), nn.ReLU(),
        nn.Conv2d(hidden, 1, 1, **factory), nn.ReLU() if non_negative else nn.Identity(), nn.Identity())


class DPTDepthModel(nn.Module):
    """MiDaS v3 ``DPTDepthModel``: image ``[N, 3, H, W]`` (normalised to [-1, 1]) → inverse depth ``[N, H, W]``.

    ``H`` and ``W`` must be multiples of 32 (MiDaS's ``ensure_multiple_of=32``; 384 in Make-Your-Video).
    """

    def __init__(self, config: DPTConfig = DPTConfig(), *, dtype=None, device=None):
        super().__init__()
        self.config = config
        factory = {"dtype": dtype, "device": device}
        c = config
        if c.is_hybrid:
            trunk = ResNetV2(c.stem_channels, c.resnet_depths, c.resnet_channels, c.resnet_mid_channels, **factory)
            embed = HybridEmbed(trunk, c.resnet_channels[-1], c.embed_dim, **factory)
        else:
            embed = PatchEmbed(PATCH_SIZE, c.embed_dim, **factory)
        self.pretrained = nn.Module()
        self.pretrained.model = VisionTransformer(embed, c.embed_dim, c.depth, c.num_heads, c.mlp_hidden, c.grid,
                                                  c.num_classes, **factory)
        out = c.reassemble_channels
        if not c.is_hybrid:  # the hybrid's two finest levels are ResNet stages: act_postprocess1/2 are Identity
            self.pretrained.act_postprocess1 = Reassemble(
                c.embed_dim, out[0], nn.ConvTranspose2d(out[0], out[0], 4, stride=4, **factory), **factory)
            self.pretrained.act_postprocess2 = Reassemble(
                c.embed_dim, out[1], nn.ConvTranspose2d(out[1], out[1], 2, stride=2, **factory), **factory)
        self.pretrained.act_postprocess3 = Reassemble(c.embed_dim, out[2], None, **factory)
        self.pretrained.act_postprocess4 = Reassemble(
            c.embed_dim, out[3], nn.Conv2d(out[3], out[3], 3, stride=2, padding=1, **factory), **factory)
        self.scratch = nn.Module()
        for i, channels in enumerate(out, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(channels, c.features, 3, padding=1, bias=False, **factory))
        for i in range(1, 5):
            setattr(self.scratch, f"refinenet{i}", FeatureFusion(c.features, **factory))
        self.scratch.output_conv = _head(c.features, c.head_hidden, c.non_negative, **factory)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], num_heads: int | None = None, *,
                        dtype=None, device=None) -> "DPTDepthModel":
        """Build to the state dict's sizes and load it strictly (``num_heads`` as in :class:`DPTConfig`)."""
        detect_backbone(state)
        model = cls(DPTConfig.from_state_dict(state, num_heads), dtype=dtype, device=device)
        result = model.load_state_dict(dict(state), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise DPTLayoutError(f"DPT state dict does not match the {model.config.backbone} layout: "
                                 f"missing {result.missing_keys[:5]} unexpected {result.unexpected_keys[:5]}")
        return model

    def encode(self, x: torch.Tensor, capture: dict | None = None) -> list[torch.Tensor]:
        """``forward_vit``: the four feature maps (/4, /8, /16, /32) that feed the decoder."""
        vit = self.pretrained.model
        hooks = self.config.hooks
        if self.config.is_hybrid:
            trunk = vit.patch_embed.backbone
            feature = trunk.stem(x)
            if capture is not None:
                capture["stem"] = feature
            stage_outputs = []
            for stage in trunk.stages:
                feature = stage(feature)
                stage_outputs.append(feature)
            if capture is not None:
                capture["stage0"] = stage_outputs[0]
        else:
            feature = x
        tokens = vit.embed(feature)
        grid = (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE)
        taken = {}
        for index, block in enumerate(vit.blocks[: max(hooks) + 1]):
            tokens = block(tokens)
            if index in hooks:
                taken[index] = tokens
        if capture is not None:
            capture["vit_tokens"] = vit.norm(tokens)  # forward_flex's return value, unused by DPT
        p = self.pretrained
        if self.config.is_hybrid:
            levels = [stage_outputs[0], stage_outputs[1]]
        else:
            levels = [p.act_postprocess1(taken[hooks[0]], grid), p.act_postprocess2(taken[hooks[1]], grid)]
        levels.append(p.act_postprocess3(taken[hooks[2]], grid))
        levels.append(p.act_postprocess4(taken[hooks[3]], grid))
        return levels

    def forward(self, x: torch.Tensor, capture: dict | None = None) -> torch.Tensor:
        """``DPT.forward`` + ``squeeze(1)`` (``dpt_depth.py:63-80, 107-108``). ``capture`` collects
        intermediate maps (``stem``, ``stage0``, ``vit_tokens``, ``layer_{k}_rn``, ``path_{k}``) for tests."""
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"DPT input size {tuple(x.shape[-2:])} must be a multiple of 32 (MiDaS uses 384x384)")
        s = self.scratch
        levels = self.encode(x, capture)
        rn = [getattr(s, f"layer{i}_rn")(level) for i, level in enumerate(levels, start=1)]
        path = s.refinenet4(rn[3])
        paths = {4: path}
        for i in (3, 2, 1):
            path = getattr(s, f"refinenet{i}")(path, rn[i - 1])
            paths[i] = path
        if capture is not None:
            capture.update({f"layer_{i}_rn": r for i, r in enumerate(rn, start=1)})
            capture.update({f"path_{i}": p for i, p in paths.items()})
        return s.output_conv(path).squeeze(1)
