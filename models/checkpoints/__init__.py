"""Checkpoint files: the one safe reader, strict loading, and the key layouts of every component."""
