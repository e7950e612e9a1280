"""Development support: tiny seeded checkpoints in the exact released layouts, for tests, scripts and benchmarks.

Not used by the nodes at run time. Importable two ways: inside the pack (``videocrafter_suite.devkit``, after
:func:`devkit.pack.import_pack`) — which is how tests, scripts and benchmarks use it.
"""
