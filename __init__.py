"""VideoCrafter Suite for ComfyUI: registration only.

ComfyUI calls :func:`comfy_entrypoint` (V3 node API). Nothing is imported at package import
time, so the pure-PyTorch ``models`` package stays importable without ComfyUI.
"""
WEB_DIRECTORY = "./web"  # the one registration of web/ (pyproject.toml has no [tool.comfy] web: it would add a second)


async def comfy_entrypoint():
    from .nodes import VideoCrafterSuiteExtension

    return VideoCrafterSuiteExtension()
