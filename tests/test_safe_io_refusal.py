"""The refusal of a malicious pickle reads as one paragraph: refused, why (the disallowed global), what to
do (use/convert to .safetensors) — without terminal colour codes, torch's boilerplate or a cut sentence.
Pure torch, no ComfyUI."""
import os
import pickle

import pytest
import torch

import tests.pack  # noqa: F401
from tests.test_checkpoint_io import _Exploit, write_malicious_ckpt
from videocrafter_suite.models.checkpoints.layout import CheckpointLayoutError
from videocrafter_suite.models.checkpoints.safe_io import pickle_globals, read_weights

SYSTEM = f"{os.system.__module__}.system"  # os.system pickles as posix.system on Linux


class _Opener:
    def __reduce__(self):
        return (open, ("/etc/hostname",))


def refusal_of(path):
    with pytest.raises(CheckpointLayoutError) as error:
        read_weights(path)
    return str(error.value)


def assert_readable(message, name, culprit):
    assert message.startswith(f"refused to load the checkpoint '{name}'"), message
    assert f"disallowed global {culprit}" in message, message
    assert ".safetensors" in message and "Nothing from it was executed" in message
    assert "\x1b" not in message and "Weights only load failed" not in message and "two options" not in message
    assert message.endswith(".") and "\n" not in message


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_plain_pickle_exploit_names_the_global_torch_does_not(tmp_path, protocol):
    marker, path = tmp_path / "pwned", tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"w": _Exploit(marker)}}, handle, protocol=protocol)
    assert_readable(refusal_of(path), "evil.ckpt", SYSTEM)
    assert not marker.exists()


def test_a_torch_zip_exploit_names_builtins_open(tmp_path):
    path = tmp_path / "opener.ckpt"
    torch.save({"state_dict": {"w": _Opener()}}, path)
    assert_readable(refusal_of(path), "opener.ckpt", f"{open.__module__}.open")


def test_the_reference_helper_exploit_is_refused_readably(tmp_path):
    marker = tmp_path / "pwned"
    write_malicious_ckpt(tmp_path / "evil.ckpt", marker)
    assert_readable(refusal_of(tmp_path / "evil.ckpt"), "evil.ckpt", SYSTEM)
    assert not marker.exists()


def test_terminal_colour_codes_in_torchs_message_are_dropped(tmp_path, monkeypatch):
    path = tmp_path / "coloured.ckpt"
    torch.save({"w": torch.zeros(1)}, path)

    def coloured_refusal(*args, **kwargs):
        raise pickle.UnpicklingError("\x1b[1mWeights only load failed.\x1b[0m This file can still be loaded, to do "
                                     "so you have two options, \x1b[1mdo those steps only if you trust the source"
                                     "\x1b[0m\n(1) ...\nWeightsUnpickler error: Unsupported global: GLOBAL "
                                     "builtins.open was not an allowed global by default.")

    monkeypatch.setattr(torch, "load", coloured_refusal)
    assert_readable(refusal_of(path), "coloured.ckpt", "builtins.open")


def test_weights_only_files_name_no_disallowed_global(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(2, 3), "b": torch.ones(4, dtype=torch.float16)}, "global_step": 3}, path)
    assert pickle_globals(str(path)) == []
    assert set(read_weights(path)["state_dict"]) == {"a", "b"}
