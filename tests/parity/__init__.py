"""Parity runner: compare our models against golden fixtures in the ../shared/reference format.

Run ``python -m tests.parity PATH...`` (directories or single ``*.config.json`` files).
Needs only torch, einops, safetensors and numpy; never imports ComfyUI.
"""
