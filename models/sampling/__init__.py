"""Noise schedules, the original DDIM arithmetic and the guidance formulas (pure functions)."""
