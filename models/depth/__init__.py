"""Depth structure: MiDaS DPT estimators (``dpt``, ``dpt_backbone``, ``dpt_run``) and structure conditioning."""
