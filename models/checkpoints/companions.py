"""Key→shape layouts of the two companion networks stored in a VideoCrafter checkpoint.

The tiny-checkpoint factory needs the exact key layout of the SD KL-VAE
(``first_stage_model.*``, the LDM ``Encoder``/``Decoder`` of ``lvdm/modules/networks/ae_modules.py``)
and of the OpenCLIP text tower (``cond_stage_model.model.*``, open_clip ``TextTransformer``) for any
width, so that ComfyUI's core VAE and SD2 text-encoder loaders accept the file exactly as they
accept a released one. For the released sizes these layouts equal the reference manifests
key for key (tested).
"""
from __future__ import annotations


def _resnet(prefix: str, c_in: int, c_out: int) -> dict:
    out = {f"{prefix}norm1.weight": (c_in,), f"{prefix}norm1.bias": (c_in,),
           f"{prefix}conv1.weight": (c_out, c_in, 3, 3), f"{prefix}conv1.bias": (c_out,),
           f"{prefix}norm2.weight": (c_out,), f"{prefix}norm2.bias": (c_out,),
           f"{prefix}conv2.weight": (c_out, c_out, 3, 3), f"{prefix}conv2.bias": (c_out,)}
    if c_in != c_out:
        out[f"{prefix}nin_shortcut.weight"] = (c_out, c_in, 1, 1)
        out[f"{prefix}nin_shortcut.bias"] = (c_out,)
    return out


def _attention(prefix: str, c: int) -> dict:
    out = {f"{prefix}norm.weight": (c,), f"{prefix}norm.bias": (c,)}
    for name in ("q", "k", "v", "proj_out"):
        out[f"{prefix}{name}.weight"] = (c, c, 1, 1)
        out[f"{prefix}{name}.bias"] = (c,)
    return out


def kl_vae_layout(ddconfig: dict, embed_dim: int, prefix: str = "first_stage_model.") -> dict:
    """Every key and shape of an LDM ``AutoencoderKL`` built from ``ddconfig``."""
    ch, mult, blocks = ddconfig["ch"], list(ddconfig["ch_mult"]), ddconfig["num_res_blocks"]
    z = ddconfig["z_channels"]
    layout: dict = {}
    enc, dec = prefix + "encoder.", prefix + "decoder."
    layout[enc + "conv_in.weight"] = (ch, ddconfig["in_channels"], 3, 3)
    layout[enc + "conv_in.bias"] = (ch,)
    block_in = ch
    for level, m in enumerate(mult):
        block_out = ch * m
        for b in range(blocks):
            layout.update(_resnet(f"{enc}down.{level}.block.{b}.", block_in, block_out))
            block_in = block_out
        if level != len(mult) - 1:
            layout[f"{enc}down.{level}.downsample.conv.weight"] = (block_in, block_in, 3, 3)
            layout[f"{enc}down.{level}.downsample.conv.bias"] = (block_in,)
    layout.update(_resnet(enc + "mid.block_1.", block_in, block_in))
    layout.update(_attention(enc + "mid.attn_1.", block_in))
    layout.update(_resnet(enc + "mid.block_2.", block_in, block_in))
    layout[enc + "norm_out.weight"] = (block_in,)
    layout[enc + "norm_out.bias"] = (block_in,)
    z_out = 2 * z if ddconfig.get("double_z", True) else z
    layout[enc + "conv_out.weight"] = (z_out, block_in, 3, 3)
    layout[enc + "conv_out.bias"] = (z_out,)

    block_in = ch * mult[-1]
    layout[dec + "conv_in.weight"] = (block_in, z, 3, 3)
    layout[dec + "conv_in.bias"] = (block_in,)
    layout.update(_resnet(dec + "mid.block_1.", block_in, block_in))
    layout.update(_attention(dec + "mid.attn_1.", block_in))
    layout.update(_resnet(dec + "mid.block_2.", block_in, block_in))
    for level in reversed(range(len(mult))):
        block_out = ch * mult[level]
        for b in range(blocks + 1):
            layout.update(_resnet(f"{dec}up.{level}.block.{b}.", block_in, block_out))
            block_in = block_out
        if level != 0:
            layout[f"{dec}up.{level}.upsample.conv.weight"] = (block_in, block_in, 3, 3)
            layout[f"{dec}up.{level}.upsample.conv.bias"] = (block_in,)
    layout[dec + "norm_out.weight"] = (block_in,)
    layout[dec + "norm_out.bias"] = (block_in,)
    layout[dec + "conv_out.weight"] = (ddconfig["out_ch"], block_in, 3, 3)
    layout[dec + "conv_out.bias"] = (ddconfig["out_ch"],)
    layout[prefix + "quant_conv.weight"] = (2 * embed_dim, z_out, 1, 1)
    layout[prefix + "quant_conv.bias"] = (2 * embed_dim,)
    layout[prefix + "post_quant_conv.weight"] = (z, embed_dim, 1, 1)
    layout[prefix + "post_quant_conv.bias"] = (z,)
    return layout


def openclip_resblocks_layout(prefix: str, width: int, layers: int, mlp: int) -> dict:
    """Keys of an open_clip ``Transformer``'s residual attention blocks (text and vision towers alike)."""
    layout = {}
    for i in range(layers):
        p = f"{prefix}resblocks.{i}."
        layout.update({p + "ln_1.weight": (width,), p + "ln_1.bias": (width,),
                       p + "attn.in_proj_weight": (3 * width, width), p + "attn.in_proj_bias": (3 * width,),
                       p + "attn.out_proj.weight": (width, width), p + "attn.out_proj.bias": (width,),
                       p + "ln_2.weight": (width,), p + "ln_2.bias": (width,),
                       p + "mlp.c_fc.weight": (mlp, width), p + "mlp.c_fc.bias": (mlp,),
                       p + "mlp.c_proj.weight": (width, mlp), p + "mlp.c_proj.bias": (width,)})
    return layout


def openclip_text_layout(width: int, layers: int, *, mlp_ratio: int = 4, vocab: int = 49408, context_length: int = 77,
                         projection: int | None = None, prefix: str = "cond_stage_model.model.") -> dict:
    """Every key and shape of an open_clip text tower with ``visual`` deleted (condition.py:184-190)."""
    projection = width if projection is None else projection
    layout = {prefix + "positional_embedding": (context_length, width),
              prefix + "text_projection": (width, projection),
              prefix + "logit_scale": (),
              prefix + "token_embedding.weight": (vocab, width),
              prefix + "ln_final.weight": (width,), prefix + "ln_final.bias": (width,)}
    layout.update(openclip_resblocks_layout(prefix + "transformer.", width, layers, mlp_ratio * width))
    return layout
