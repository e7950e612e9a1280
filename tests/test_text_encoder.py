"""Core's SD2 text encoder, fed by our loader with OpenCLIP-layout weights, gives the original's
prompt embedding: OpenCLIP tokens → token + positional embedding → all resblocks but the last
(causal mask) → ln_final (VideoCrafter ``FrozenOpenCLIPEmbedder``, condition.py:209-232).

``open_clip_torch`` is the original's encoder library and a test-only dependency here; the tower
is a small one with ViT-H's structure (random, seeded) so the test runs in seconds.
"""
import pytest
import torch

PROMPTS = ["A cat playing the piano in a cozy living room", ""]


@pytest.fixture(scope="module")
def open_clip_tower():
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, _build_text_tower

    torch.manual_seed(0)
    tower = _build_text_tower(64, CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=3))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in tower.named_parameters():
            if name.endswith("weight") and parameter.dim() == 1:
                parameter.copy_(1.0 + 0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
    return open_clip, tower.eval()


def original_embedding(open_clip, tower, prompts):
    """condition.py:209-232, penultimate layer: skip the last resblock, then ln_final."""
    tokens = open_clip.tokenize(prompts)
    x = tower.token_embedding(tokens) + tower.positional_embedding
    batch_first = getattr(tower.transformer, "batch_first", False)
    x = x if batch_first else x.permute(1, 0, 2)
    for block in tower.transformer.resblocks[:-1]:
        x = block(x, attn_mask=tower.attn_mask)
    x = x if batch_first else x.permute(1, 0, 2)
    return tokens, tower.ln_final(x)


def test_core_text_encoder_equals_the_original(comfy_path, open_clip_tower):
    from videocrafter_suite.bridge.checkpoint import build_clip

    open_clip, tower = open_clip_tower
    state = {f"cond_stage_model.model.{k}": v.detach().clone() for k, v in tower.state_dict().items()
             if k != "attn_mask"}
    state["cond_stage_model.model.logit_scale"] = torch.tensor(4.6052)
    clip = build_clip(state)
    with torch.no_grad():
        tokens, expected = original_embedding(open_clip, tower, PROMPTS)
    for row, prompt in enumerate(PROMPTS):
        ours_tokens = [token for token, _weight in clip.tokenize(prompt)["h"][0]]
        assert ours_tokens == tokens[row].tolist(), "tokenisation differs from open_clip's"
        ours = clip.encode_from_tokens(clip.tokenize(prompt))
        assert ours.shape == (1, 77, 64) and ours.dtype == torch.float32
        error = (ours[0] - expected[row]).abs().max().item()
        print(f"{prompt!r}: max abs error {error:.2e}")
        assert error <= 1e-5, f"{prompt!r}: max abs error {error:.2e}"
