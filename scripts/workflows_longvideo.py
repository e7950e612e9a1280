"""Example graphs of the long-video family (imported by ``scripts/build_workflows.py``).

- ``videocrafter1_freenoise_64``: FreeNoise as ``run_text2video_freenoise_1024.sh`` (VC1 T2V 1024, 576x1024,
  64 frames, window 16, stride 4, DDIM 50, eta 0, cfg 12, fps 28, seed 123).
- ``videocrafter2_fifo_128``: FIFO-Diffusion as ``videocrafter_main.py`` (VC2 512x320, f 16, n 4, cfg 12,
  eta 1, lookahead, seed 321), 128 output frames; the base clip is a 16-frame DDIM run with f·n = 64 steps.
- ``videocrafter2_context_windows_48``: 48 frames with the pack's video context windows (16 / overlap 4,
  pyramid) and core KSampler.
"""
from __future__ import annotations


def _common(node_cls, loader_outputs, ckpt: str, prompt: str, fps: int, negative: str):
    Node = node_cls
    return [
        Node(1, "VideoCrafterCheckpointLoader", "Load VideoCrafter Checkpoint", (40, 120),
             [("ckpt_name", ckpt)], outputs=loader_outputs),
        Node(2, "CLIPTextEncode", "Prompt", (420, 40), [("text", prompt)],
             {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(3, "CLIPTextEncode", "Empty prompt (unconditional, as the original)", (420, 260),
             [("text", negative)], {"clip": (1, 1, "CLIP")}, [("CONDITIONING", "CONDITIONING")]),
        Node(4, "VideoCrafterVideoConditioning", f"fps {fps} conditioning", (820, 120), [("fps", fps)],
             {"positive": (2, 0, "CONDITIONING"), "negative": (3, 0, "CONDITIONING")},
             [("positive", "CONDITIONING"), ("negative", "CONDITIONING")]),
    ]


def _output(Node, latent_src: tuple, prefix: str, first_id: int = 20):
    return [
        Node(first_id, "VAEDecode", "Decode frames", (2200, 200), [],
             {"samples": latent_src, "vae": (1, 2, "VAE")}, [("IMAGE", "IMAGE")]),
        Node(first_id + 1, "CreateVideo", "Frames to video (10 fps)", (2540, 200), [("fps", 10.0)],
             {"images": (first_id, 0, "IMAGE")}, [("VIDEO", "VIDEO")]),
        Node(first_id + 2, "SaveVideo", "Save video", (2880, 200),
             [("filename_prefix", prefix), ("format", "mp4"), ("codec", "h264")], {"video": (first_id + 1, 0, "VIDEO")}),
    ]


def freenoise_graph(Node, loader_outputs, negative: str):
    nodes = _common(Node, loader_outputs, "videocrafter1_t2v_1024.safetensors",
                    "A chihuahua in astronaut suit floating in space, cinematic lighting, glow effect", 28, negative)
    nodes += [
        Node(5, "VideoCrafterFreeNoiseAttention", "FreeNoise window-fused attention (16 / 4)", (820, 400),
             [("window", 16), ("stride", 4)], {"model": (1, 0, "MODEL")}, [("MODEL", "MODEL")]),
        Node(6, "CFGGuider", "CFG 12 (FreeNoise scripts)", (1160, 40), [("cfg", 12.0)],
             {"model": (5, 0, "MODEL"), "positive": (4, 0, "CONDITIONING"), "negative": (4, 1, "CONDITIONING")},
             [("GUIDER", "GUIDER")]),
        Node(7, "VideoCrafterFreeNoiseNoise", "FreeNoise noise rescheduling (seed 123, 16 / 4)", (1160, 200),
             [("noise_seed", 123), ("window", 16), ("stride", 4)], outputs=[("NOISE", "NOISE")], seed_control="fixed"),
        Node(8, "VideoCrafterDDIMSampler", "DDIM (eta 0.0, FreeNoise scripts)", (1160, 360), [("eta", 0.0)],
             outputs=[("SAMPLER", "SAMPLER")]),
        Node(9, "VideoCrafterDDIMSigmas", "DDIM 50 steps", (1160, 470), [("steps", 50), ("denoise", 1.0)],
             {"model": (1, 0, "MODEL")}, [("SIGMAS", "SIGMAS")]),
        Node(10, "VideoCrafterEmptyVideoLatent", "64 frames", (1160, 620),
             [("width", 1024), ("height", 576), ("frames", 64)], outputs=[("LATENT", "LATENT")]),
        Node(11, "SamplerCustomAdvanced", "Sample", (1600, 200), [],
             {"noise": (7, 0, "NOISE"), "guider": (6, 0, "GUIDER"), "sampler": (8, 0, "SAMPLER"),
              "sigmas": (9, 0, "SIGMAS"), "latent_image": (10, 0, "LATENT")},
             [("output", "LATENT"), ("denoised_output", "LATENT")]),
    ]
    return nodes + _output(Node, (11, 0, "LATENT"), "videocrafter/freenoise_64")


def fifo_graph(Node, loader_outputs, negative: str):
    nodes = _common(Node, loader_outputs, "videocrafter2_t2v_512.safetensors",
                    "A spectacular fireworks display over Sydney Harbour, 4K, high resolution", 8, negative)
    nodes += [
        Node(5, "CFGGuider", "CFG 12 (FIFO default)", (1160, 40), [("cfg", 12.0)],
             {"model": (1, 0, "MODEL"), "positive": (4, 0, "CONDITIONING"), "negative": (4, 1, "CONDITIONING")},
             [("GUIDER", "GUIDER")]),
        Node(6, "VideoCrafterNoise", "Noise of the base clip (seed 321)", (1160, 200), [("noise_seed", 321)],
             outputs=[("NOISE", "NOISE")], seed_control="fixed"),
        Node(7, "VideoCrafterDDIMSampler", "DDIM (eta 1.0)", (1160, 330), [("eta", 1.0)],
             outputs=[("SAMPLER", "SAMPLER")]),
        Node(8, "VideoCrafterDDIMSigmas", "DDIM 64 steps (= f x n)", (1160, 440), [("steps", 64), ("denoise", 1.0)],
             {"model": (1, 0, "MODEL")}, [("SIGMAS", "SIGMAS")]),
        Node(9, "VideoCrafterEmptyVideoLatent", "Base clip: 16 frames (the window)", (1160, 600),
             [("width", 512), ("height", 320), ("frames", 16)], outputs=[("LATENT", "LATENT")]),
        Node(10, "SamplerCustomAdvanced", "Base clip", (1520, 200), [],
             {"noise": (6, 0, "NOISE"), "guider": (5, 0, "GUIDER"), "sampler": (7, 0, "SAMPLER"),
              "sigmas": (8, 0, "SIGMAS"), "latent_image": (9, 0, "LATENT")},
             [("output", "LATENT"), ("denoised_output", "LATENT")]),
        Node(11, "VideoCrafterFIFOSampler", "FIFO-Diffusion: 128 frames (n 4, lookahead, cfg 12, eta 1)",
             (1860, 200), [("seed", 321), ("frames", 128), ("num_partitions", 4), ("lookahead", True),
                           ("cfg", 12.0), ("eta", 1.0)],
             {"model": (1, 0, "MODEL"), "positive": (4, 0, "CONDITIONING"), "negative": (4, 1, "CONDITIONING"),
              "base_clip": (10, 0, "LATENT")}, [("LATENT", "LATENT")], seed_control="fixed"),
    ]
    return nodes + _output(Node, (11, 0, "LATENT"), "videocrafter/fifo_128")


def context_windows_graph(Node, loader_outputs, negative: str):
    nodes = _common(Node, loader_outputs, "videocrafter2_t2v_512.safetensors",
                    "A koi pond with fish swimming slowly, sunlight through the water", 8, negative)
    nodes += [
        Node(5, "VideoCrafterContextWindows", "Context windows 16 / overlap 4 (pyramid)", (820, 400),
             [("context_length", 16), ("context_overlap", 4), ("context_schedule", "standard_static"),
              ("context_stride", 1), ("closed_loop", False), ("fuse_method", "pyramid")],
             {"model": (1, 0, "MODEL")}, [("MODEL", "MODEL")]),
        Node(6, "VideoCrafterEmptyVideoLatent", "48 frames", (1160, 600),
             [("width", 512), ("height", 320), ("frames", 48)], outputs=[("LATENT", "LATENT")]),
        Node(7, "KSampler", "Core KSampler (dpmpp_2m karras, 30 steps, cfg 12)", (1520, 200),
             [("seed", 123), ("steps", 30), ("cfg", 12.0), ("sampler_name", "dpmpp_2m"), ("scheduler", "karras"),
              ("denoise", 1.0)],
             {"model": (5, 0, "MODEL"), "positive": (4, 0, "CONDITIONING"), "negative": (4, 1, "CONDITIONING"),
              "latent_image": (6, 0, "LATENT")}, [("LATENT", "LATENT")], seed_control="fixed"),
    ]
    return nodes + _output(Node, (7, 0, "LATENT"), "videocrafter/context_windows_48")


def longvideo_graphs(Node, loader_outputs, negative: str) -> dict:
    return {
        "videocrafter1_freenoise_64": freenoise_graph(Node, loader_outputs, negative),
        "videocrafter2_fifo_128": fifo_graph(Node, loader_outputs, negative),
        "videocrafter2_context_windows_48": context_windows_graph(Node, loader_outputs, negative),
    }
