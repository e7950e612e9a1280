"""The two DPT encoders of MiDaS v3 in pure PyTorch (no timm): hybrid ViT-B/16 + ResNet50 and ViT-L/16.

MiDaS v3 (isl-org/MiDaS tag ``v3``, vendored by Make-Your-Video as ``lvdm/modules/encoders/midas``)
builds its encoders with ``timm.create_model`` (``midas/vit.py:476-489`` ``vit_base_resnet50_384``,
``vit.py:297-305`` ``vit_large_patch16_384``). ComfyUI does not ship timm, so this file rebuilds
exactly the modules those calls create, under the same attribute names, so that the released
``dpt_hybrid-midas-501f0c75.pt`` / ``dpt_large-midas-2f21e586.pt`` state dicts load strictly:

* ResNetV2 of the hybrid (timm ``vision_transformer_hybrid._resnetv2``): ``preact=False``,
  ``stem_type='same'`` and ``StdConv2dSame(eps=1e-8)`` everywhere — weight standardisation the timm
  ≥ 0.6 way (``F.batch_norm`` over each filter, i.e. ``(w - mean) / sqrt(var + 1e-8)``,
  ``timm/layers/std_conv.py``) and TensorFlow "SAME" padding that is asymmetric (more on the
  right/bottom) whenever the stride is 2 (``timm/layers/padding.py``). The stem max-pool pads with
  ``-inf`` the same way (``pool2d_same.py``).
* The ViT (timm ``VisionTransformer``, 0.6.x ``Attention``: explicit ``softmax(q kᵀ · d^-½) v``),
  LayerNorm eps 1e-6, exact GELU. ``head`` (Linear to 1000 classes) is part of the released files
  and kept so they load strictly; MiDaS never calls it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GROUP_NORM_GROUPS = 32      # timm GroupNormAct(num_groups=32) in ResNetV2
GROUP_NORM_EPS = 1e-5
STD_CONV_EPS = 1e-8         # vision_transformer_hybrid._resnetv2: partial(StdConv2dSame, eps=1e-8)
LAYER_NORM_EPS = 1e-6       # timm VisionTransformer norm_layer = partial(LayerNorm, eps=1e-6)


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis as (before, after); the odd pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    top, bottom = tf_same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = tf_same_padding(x.shape[-1], kernel[1], stride[1])
    return F.pad(x, (left, right, top, bottom), value=value)


class StdConv2dSame(nn.Conv2d):
    """Weight-standardised conv with TF 'SAME' padding (timm ``StdConv2dSame``, no bias).

    Static symmetric padding when the stride is 1 (odd kernels), input-size-dependent asymmetric
    padding otherwise — timm's ``get_padding_value('same', ...)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 eps: float = STD_CONV_EPS, **factory):
        dynamic = stride != 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=0 if dynamic else (kernel_size - 1) // 2, bias=False, **factory)
        self.same_pad = dynamic
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad:
            x = pad_same(x, self.kernel_size, self.stride)
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class GroupNormAct(nn.GroupNorm):
    """GroupNorm(32) optionally followed by ReLU (timm ``GroupNormAct``)."""

    def __init__(self, channels: int, act: bool = True, **factory):
        super().__init__(GROUP_NORM_GROUPS, channels, eps=GROUP_NORM_EPS, **factory)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return F.relu(x) if self.act else x


class Stem(nn.Module):
    """7×7/2 StdConv (SAME) → GroupNorm+ReLU → 3×3/2 max-pool (SAME, -inf padding)."""

    def __init__(self, out_channels: int, in_channels: int = 3, **factory):
        super().__init__()
        self.conv = StdConv2dSame(in_channels, out_channels, 7, stride=2, **factory)
        self.norm = GroupNormAct(out_channels, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(self.norm(self.conv(x)), (3, 3), (2, 2), value=-float("inf"))
        return F.max_pool2d(x, 3, 2)


class Downsample(nn.Module):
    """Projection shortcut: 1×1 StdConv (with the block's stride) → GroupNorm, no activation."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, **factory):
        super().__init__()
        self.conv = StdConv2dSame(in_channels, out_channels, 1, stride=stride, **factory)
        self.norm = GroupNormAct(out_channels, act=False, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """Non-pre-activation bottleneck (timm ``resnetv2.Bottleneck``); the stride sits on the 3×3 conv."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int, project: bool,
                 **factory):
        super().__init__()
        self.downsample = Downsample(in_channels, out_channels, stride, **factory) if project else None
        self.conv1 = StdConv2dSame(in_channels, mid_channels, 1, **factory)
        self.norm1 = GroupNormAct(mid_channels, **factory)
        self.conv2 = StdConv2dSame(mid_channels, mid_channels, 3, stride=stride, **factory)
        self.norm2 = GroupNormAct(mid_channels, **factory)
        self.conv3 = StdConv2dSame(mid_channels, out_channels, 1, **factory)
        self.norm3 = GroupNormAct(out_channels, act=False, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.norm1(self.conv1(x))
        x = self.norm2(self.conv2(x))
        x = self.norm3(self.conv3(x))
        return F.relu(x + shortcut)


class ResNetStage(nn.Module):
    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, depth: int, stride: int,
                 **factory):
        super().__init__()
        self.blocks = nn.Sequential(*[
            Bottleneck(in_channels if i == 0 else out_channels, mid_channels, out_channels,
                       stride if i == 0 else 1, project=i == 0, **factory)
            for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ResNetV2(nn.Module):
    """The hybrid's convolutional trunk: stem (/4) and stages with strides 1, 2, 2 (/16 in all)."""

    def __init__(self, stem_channels: int, depths: tuple[int, ...], out_channels: tuple[int, ...],
                 mid_channels: tuple[int, ...], **factory):
        super().__init__()
        self.stem = Stem(stem_channels, **factory)
        stages, previous = [], stem_channels
        for index, (depth, out, mid) in enumerate(zip(depths, out_channels, mid_channels)):
            stages.append(ResNetStage(previous, mid, out, depth, 1 if index == 0 else 2, **factory))
            previous = out
        self.stages = nn.ModuleList(stages)


class HybridEmbed(nn.Module):
    """ResNetV2 features → 1×1 conv to the ViT width (timm ``HybridEmbed``)."""

    def __init__(self, backbone: ResNetV2, backbone_channels: int, embed_dim: int, **factory):
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Conv2d(backbone_channels, embed_dim, 1, **factory)


class PatchEmbed(nn.Module):
    """16×16/16 conv patchifier (timm ``PatchEmbed``) of ViT-L/16."""

    def __init__(self, patch_size: int, embed_dim: int, in_channels: int = 3, **factory):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size, **factory)


class Attention(nn.Module):
    """Multi-head self-attention, computed as timm 0.6.x does (explicit softmax, scale on the logits)."""

    def __init__(self, dim: int, num_heads: int, **factory):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"ViT width {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, **factory)
        self.proj = nn.Linear(dim, dim, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, **factory):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, **factory)
        self.fc2 = nn.Linear(hidden, dim, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, **factory):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS, **factory)
        self.attn = Attention(dim, num_heads, **factory)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS, **factory)
        self.mlp = Mlp(dim, mlp_hidden, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """The ViT parameters MiDaS uses (cls token, learned 24×24+1 position table, blocks, final norm).

    ``forward`` is MiDaS's ``forward_flex`` (``vit.py:114-150``): the position table is resized
    bilinearly to the input's token grid, so inputs other than 384² work like in MiDaS.
    """

    def __init__(self, patch_embed: nn.Module, embed_dim: int, depth: int, num_heads: int, mlp_hidden: int,
                 grid: int, num_classes: int, **factory):
        super().__init__()
        self.patch_embed = patch_embed
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim, **factory))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim, **factory))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_hidden, **factory) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS, **factory)
        self.head = nn.Linear(embed_dim, num_classes, **factory)  # in the released files; never used

    def resized_pos_embed(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """``_resize_pos_embed`` (``vit.py:96-111``): bilinear, align_corners False (identity at 384²)."""
        token, table = self.pos_embed[:, :1], self.pos_embed[0, 1:]
        old = int(math.sqrt(len(table)))
        table = table.reshape(1, old, old, -1).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(grid_h, grid_w), mode="bilinear")
        return torch.cat([token, table.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)], dim=1)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Patch features ``[B, C, h, w]`` → tokens ``[B, 1 + h·w, D]`` with cls and positions added."""
        patches = self.patch_embed.proj(features)
        grid_h, grid_w = patches.shape[-2:]
        tokens = patches.flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens + self.resized_pos_embed(grid_h, grid_w)
