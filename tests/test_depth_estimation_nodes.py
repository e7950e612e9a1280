"""In-process ComfyUI: the depth loader and estimator nodes on tiny seeded checkpoints in a temporary
``models/depth`` folder — MiDaS .pt (weights-only) and .safetensors, hybrid and large detected from keys,
a transformers Depth Anything folder, the depth IMAGE convention (0..1 per frame, near = bright, input
size), chunking equivalence with one progress step per chunk, and clear errors for bad files."""
import pickle

import pytest
import torch


@pytest.fixture(scope="module")
def depth_dir(comfy_path, tmp_path_factory):
    import folder_paths

    from videocrafter_suite.devkit.tiny_dpt import save_tiny_dpt
    from videocrafter_suite.nodes import depth_estimation  # noqa: F401  (registers the folder)

    root = tmp_path_factory.mktemp("depth")
    save_tiny_dpt(root / "tiny_hybrid.pt", "vitb_rn50_384", seed=21)
    save_tiny_dpt(root / "tiny_hybrid.safetensors", "vitb_rn50_384", seed=21)
    save_tiny_dpt(root / "tiny_large.pt", "vitl16_384", seed=22)
    (root / "corrupt.pt").write_bytes(b"PK\x03\x04 not a zip at all")
    (root / "pickle_bomb.pt").write_bytes(pickle.dumps(_Exploit()))
    _save_tiny_depth_anything(root / "dav2_tiny")
    folder_paths.add_model_folder_path("depth", str(root), is_default=True)
    return root


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def _save_tiny_depth_anything(folder):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                            out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
                                 fusion_hidden_size=16, head_hidden_size=8, patch_size=14)
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], resample=3).save_pretrained(folder)


def frames(n=3, h=40, w=56, seed=0):
    return torch.rand(n, h, w, 3, generator=torch.Generator().manual_seed(seed))


def load(name):
    from videocrafter_suite.nodes.depth_estimation import DepthModelLoader
    return DepthModelLoader.execute(name).result[0]


def estimate(model, images, batch_size=4, output_size="input size", resolution=64):
    """Plumbing tests run MiDaS at 64² (any multiple of 32 works) to stay fast on a shared CPU;
    the 384² path of the original is checked against the golden fixture in test_depth_estimation_dpt."""
    from videocrafter_suite.nodes.depth_estimation import DepthEstimator
    return DepthEstimator.execute(model, images, batch_size, resolution, output_size).result[0]


def test_loader_lists_midas_files_and_transformers_folders(depth_dir):
    from videocrafter_suite.nodes.depth_estimation import DepthModelLoader

    options = DepthModelLoader.define_schema().inputs[0].options
    assert {"tiny_hybrid.pt", "tiny_hybrid.safetensors", "tiny_large.pt", "dav2_tiny/"} <= set(options)
    assert not any(o.startswith("dav2_tiny/") and o != "dav2_tiny/" for o in options), "folder files not listed twice"


def test_midas_pt_and_safetensors_load_the_same_detected_model(depth_dir):
    from videocrafter_suite.devkit.tiny_dpt import tiny_dpt_state_dict

    pt, st, large = load("tiny_hybrid.pt"), load("tiny_hybrid.safetensors"), load("tiny_large.pt")
    assert pt.kind == "midas" and pt.network.config.backbone == "vitb_rn50_384" and "Hybrid" in pt.description
    assert large.network.config.backbone == "vitl16_384" and large.network.config.depth == 24
    expected = tiny_dpt_state_dict("vitb_rn50_384", seed=21)
    for loaded in (pt, st):
        assert all(torch.equal(loaded.network.state_dict()[k], v) for k, v in expected.items())


def test_depth_image_is_the_original_fullres_depth_in_display_form(depth_dir):
    """0..1 per frame, near = bright, the input size; 2·image - 1 is Make-Your-Video's --save_cond depth."""
    from videocrafter_suite.models.depth.dpt_run import estimate_inverse_depth

    model = load("tiny_hybrid.pt")
    images = frames()
    depth = estimate(model, images)
    assert depth.shape == (3, 40, 56, 3) and depth.dtype == torch.float32
    assert torch.equal(depth[..., 0], depth[..., 1]) and torch.equal(depth[..., 0], depth[..., 2])
    assert depth.amin() == 0 and (depth.amax(dim=(1, 2, 3)) - 1).abs().max() < 1e-6
    with torch.inference_mode():
        raw = estimate_inverse_depth(model.network, images.movedim(-1, 1) * 2 - 1, 64)  # larger = nearer
    resized = torch.nn.functional.interpolate(raw, size=(40, 56), mode="bicubic", align_corners=False)[:, 0]
    for i in range(3):  # brightest pixel = the largest inverse depth (nearest), darkest = the farthest
        assert resized[i].flatten().argmax() == depth[i, ..., 0].flatten().argmax()
        assert resized[i].flatten().argmin() == depth[i, ..., 0].flatten().argmin()
    assert torch.allclose(depth[..., 0], (resized - resized.amin(dim=(1, 2), keepdim=True))
                          / (resized.amax(dim=(1, 2), keepdim=True) - resized.amin(dim=(1, 2), keepdim=True) + 1e-7),
                          atol=1e-6)
    grid = estimate(model, images[:1], output_size="model grid", resolution=96)
    assert grid.shape == (1, 96, 96, 3)


def test_chunks_give_the_same_depth_with_one_progress_step_each(depth_dir, monkeypatch):
    import comfy.utils

    model = load("tiny_large.pt")
    steps = []
    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", lambda value, total, preview, node_id=None: steps.append((value, total)))
    images = frames(3, 24, 24, seed=1)
    one = estimate(model, images, batch_size=1)
    assert steps == [(1, 3), (2, 3), (3, 3)]
    steps.clear()
    together = estimate(model, images, batch_size=2)
    assert steps == [(1, 2), (2, 2)]
    assert torch.allclose(one, together, atol=1e-5)


def test_transformers_depth_anything_folder(depth_dir):
    model = load("dav2_tiny/")
    assert model.kind == "transformers" and "DepthAnything" in model.description and not model.metric
    images = frames(2, 30, 50)
    depth = estimate(model, images, batch_size=1)
    assert depth.shape == (2, 30, 50, 3) and depth.amin() == 0 and depth.amax() <= 1
    with torch.inference_mode():
        raw = model.inverse_depth(images)   # the library's own preprocessing and model
    resized = torch.nn.functional.interpolate(raw, size=(30, 50), mode="bicubic", align_corners=False)[:, 0]
    for i in range(2):
        assert resized[i].flatten().argmax() == depth[i, ..., 0].flatten().argmax()
    native = estimate(model, images, output_size="model grid")
    assert native.shape[0] == 2 and native.shape[1] % 14 == 0 and native.shape[2] % 14 == 0


@pytest.mark.parametrize("name, message", [("corrupt.pt", "could not read the MiDaS depth model 'corrupt.pt'"),
                                           ("pickle_bomb.pt", "refused to load the MiDaS depth model 'pickle_bomb.pt'")])
def test_bad_files_give_one_clear_error(depth_dir, name, message, capsys):
    from videocrafter_suite.nodes.common import InputError

    with pytest.raises(InputError, match=message):
        load(name)
    assert "this must never run" not in capsys.readouterr().out


def test_a_non_depth_checkpoint_is_refused_by_name(depth_dir, tmp_path):
    from safetensors.torch import save_file

    from videocrafter_suite.bridge.depth_estimation import DepthModelError, load_midas

    path = tmp_path / "unet.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}, str(path))
    with pytest.raises(DepthModelError, match="'unet.safetensors' is not a MiDaS v3 DPT"):
        load_midas(str(path))


def test_estimator_rejects_a_non_image_input_and_a_bad_resolution(depth_dir):
    from videocrafter_suite.nodes.common import InputError

    with pytest.raises(InputError, match="images"):
        estimate(load("tiny_hybrid.pt"), torch.zeros(0, 8, 8, 3))
    with pytest.raises(InputError, match="resolution: 100"):
        estimate(load("tiny_hybrid.pt"), frames(1), resolution=100)


@pytest.mark.parametrize("layout", ["lightning", "deepspeed"])
def test_dpt_inside_a_make_your_video_checkpoint_loads(depth_dir, tmp_path, layout):
    from videocrafter_suite.bridge.depth_estimation import load_midas
    from videocrafter_suite.devkit.tiny_dpt import tiny_dpt_state_dict

    dpt = tiny_dpt_state_dict("vitb_rn50_384", seed=5)
    prefix = "depth_stage_model.model." if layout == "lightning" else "_forward_module.depth_stage_model.model."
    state = {prefix + k: v for k, v in dpt.items()}
    state[prefix.replace("depth_stage_model.model.", "model.diffusion_model.") + "out.2.bias"] = torch.zeros(4)
    path = tmp_path / "myv.ckpt"
    torch.save({"state_dict": state} if layout == "lightning" else {"module": state}, path)
    loaded = load_midas(str(path))
    assert all(torch.equal(loaded.network.state_dict()[k], v) for k, v in dpt.items())
