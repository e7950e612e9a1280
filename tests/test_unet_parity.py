"""Golden parity of the 3D UNet against the original VideoCrafter code (../shared/reference).

Uses the same checker as ``python -m tests.parity`` (tests/parity/unet_fixtures.py), and runs the
runner itself as a subprocess: it must pass on the fixtures and fail on a corrupted copy.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.pack import PACK_ROOT, REFERENCE_DIR
from tests.parity import unet_fixtures

FIXTURES = REFERENCE_DIR / "fixtures"


@pytest.mark.parametrize("name", ["t2v_tiny_vc2style", "t2v_tiny_vc1style_relpos", "i2v_tiny"])
def test_unet_fixture_parity(name):
    results = unet_fixtures.check(FIXTURES / f"{name}.config.json")
    failed = [r.line() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    names = {r.name for r in results}
    io_keys = load_file(FIXTURES / f"{name}.io.safetensors").keys()
    # every output and every hook capture was compared
    assert {k for k in io_keys if k.startswith(("out/", "mid/"))} <= names
    assert {"out/y_f32 (batch-as-frames)", "detect_unet_config(keys) == unet_kwargs"} <= names
    y = next(r for r in results if r.name == "out/y_f32")
    assert y.max_abs <= 1e-5 and y.atol == 1e-5
    assert next(r for r in results if r.name == "out/y_f64").max_abs <= 1e-9
    if name == "i2v_tiny":
        assert "out/y_f32 (image_context=)" in names


def _run_parity(*paths):
    return subprocess.run([sys.executable, "-m", "tests.parity", *map(str, paths)], cwd=PACK_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_runner_passes_on_unet_fixtures(tmp_path):
    # (StyleCrafter fixtures have their own checker, exercised by tests/test_style_parity.py.)
    shutil.copy(FIXTURES / "t2v_tiny_vc2style.config.json", tmp_path)
    # the runner reads only the configs of what it was pointed at; give it the tensors too
    for suffix in ("weights", "io"):
        shutil.copy(FIXTURES / f"t2v_tiny_vc2style.{suffix}.safetensors", tmp_path)
    proc = _run_parity(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(l.startswith("ok   t2v_tiny_vc2style: out/y_f32: max_abs=") for l in lines)
    assert any(l.startswith("ok   t2v_tiny_vc2style: mid/middle_block:") for l in lines)
    assert lines[-1].startswith("parity: ") and lines[-1].endswith(" 0 failed, 0 skipped")


@pytest.mark.slow
def test_runner_on_whole_fixtures_dir():
    proc = _run_parity(FIXTURES)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "ok   t2v_tiny_vc1style_relpos: out/y_f32:" in proc.stdout
    assert "ok   i2v_tiny: out/image_emb_f32:" in proc.stdout


def test_runner_fails_on_corrupted_fixture(tmp_path):
    name = "t2v_tiny_vc1style_relpos"
    shutil.copy(FIXTURES / f"{name}.config.json", tmp_path)
    shutil.copy(FIXTURES / f"{name}.weights.safetensors", tmp_path)
    io = load_file(FIXTURES / f"{name}.io.safetensors")
    io["out/y_f32"] = io["out/y_f32"].clone()
    io["out/y_f32"][0, 0, 0, 0, 0] += 1e-3
    save_file(io, tmp_path / f"{name}.io.safetensors")
    proc = _run_parity(tmp_path / f"{name}.config.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"FAIL {name}: out/y_f32: max_abs=" in proc.stdout
    assert "parity: " in proc.stdout.splitlines()[-1]


def test_runner_fails_on_exception(tmp_path):
    name = "t2v_tiny_vc2style"
    config = json.loads((FIXTURES / f"{name}.config.json").read_text())
    (tmp_path / f"{name}.config.json").write_text(json.dumps(config))  # no tensor files beside it
    proc = _run_parity(tmp_path)
    assert proc.returncode == 1
    assert f"FAIL {name}: " in proc.stdout
