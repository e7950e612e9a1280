"""Safe checkpoint reading (a malicious pickle never runs) and the .ckpt → .safetensors conversion."""
import os
import pickle

import pytest
import torch
from safetensors.torch import load_file

import tests.pack
from videocrafter_suite.models.checkpoints.safe_io import convert_checkpoint_file, read_checkpoint
from videocrafter_suite.models.checkpoints.layout import CheckpointLayoutError


class _Exploit:
    """Unpickling this object calls os.system (the classic pickle attack)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious_ckpt(path, marker):
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"w": _Exploit(marker)}}, handle)


def test_malicious_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    write_malicious_ckpt(ckpt, marker)
    with pytest.raises(CheckpointLayoutError, match="refused to load the checkpoint 'evil.ckpt'") as refused:
        read_checkpoint(ckpt)
    assert not marker.exists(), "the pickle payload ran"
    assert "\x1b" not in str(refused.value) and ".safetensors" in str(refused.value)


def test_malicious_torch_zip_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned_zip"
    ckpt = tmp_path / "evil_zip.ckpt"
    torch.save({"state_dict": {"w": _Exploit(marker)}}, ckpt)
    with pytest.raises(CheckpointLayoutError, match="refused to load") as refused:
        read_checkpoint(ckpt)
    assert not marker.exists()
    message = str(refused.value)
    # The reason names the disallowed global; torch's colour codes and its cut "two options" text are gone.
    assert "disallowed global posix.system" in message or "disallowed global os.system" in message, message
    assert "\x1b" not in message and "two options" not in message and "In PyTorch 2.6" not in message


def test_conversion_round_trip_is_exact(tmp_path):
    generator = torch.Generator().manual_seed(0)
    state = {"model.diffusion_model.a.weight": torch.randn(3, 4, generator=generator),
             "first_stage_model.b": torch.randn(5, generator=generator).half(),
             "scale_arr": torch.linspace(1, 0.7, 10)}
    state["tied"] = state["scale_arr"]  # shared storage must still convert
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": state, "global_step": 7}, ckpt)
    written = convert_checkpoint_file(ckpt)
    assert written == tmp_path / "model.safetensors"
    loaded = load_file(written)
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value)
    with pytest.raises(CheckpointLayoutError, match="exists"):
        convert_checkpoint_file(ckpt)
    assert convert_checkpoint_file(ckpt, overwrite=True) == written


def test_failed_conversion_leaves_no_partial_file(tmp_path):
    ckpt = tmp_path / "evil.ckpt"
    write_malicious_ckpt(ckpt, tmp_path / "marker")
    with pytest.raises(CheckpointLayoutError):
        convert_checkpoint_file(ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.ckpt"]
