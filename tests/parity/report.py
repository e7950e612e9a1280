"""One comparison of a computed tensor against a golden one, and how it is printed."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Comparison:
    """``name`` compared with tolerance ``atol`` (absolute) or ``rtol`` (relative to max |expected|)."""

    fixture: str
    name: str
    max_abs: float
    max_rel: float
    atol: float | None = None
    rtol: float | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        if self.atol is not None and not self.max_abs <= self.atol:
            return False
        if self.rtol is not None and not self.max_rel <= self.rtol:
            return False
        return True

    def line(self) -> str:
        limit = f"abs<={self.atol:g}" if self.atol is not None else f"rel<={self.rtol:g}"
        status = "ok  " if self.passed else "FAIL"
        note = f"  ({self.note})" if self.note else ""
        return f"{status} {self.fixture}: {self.name}: max_abs={self.max_abs:.3e} max_rel={self.max_rel:.3e} [{limit}]{note}"


def compare(fixture: str, name: str, actual: torch.Tensor, expected: torch.Tensor, *,
            atol: float | None = None, rtol: float | None = None, note: str = "") -> Comparison:
    """Compare two tensors; shape mismatches count as infinite error.

    ``max_rel`` is max|a-e| / max|e| (a scale-aware relative error that does not blow up on
    elements near zero), which is how the reference README states its sampler tolerance.
    """
    if tuple(actual.shape) != tuple(expected.shape):
        return Comparison(fixture, name, float("inf"), float("inf"), atol, rtol,
                          note=f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    diff = (actual.double() - expected.double()).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    scale = float(expected.double().abs().max()) if expected.numel() else 0.0
    max_rel = max_abs / scale if scale > 0 else max_abs
    return Comparison(fixture, name, max_abs, max_rel, atol, rtol, note)


def failed(fixture: str, name: str, note: str) -> Comparison:
    """A check that could not be made (missing tensor, exception, wrong shape): printed as FAIL with the reason."""
    return Comparison(fixture, name, float("inf"), float("inf"), atol=0.0, note=note)
