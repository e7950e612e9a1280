"""Procedural moving-shapes videos with captions and ground truth (the demonstration model's dataset).

Nothing is downloaded: every clip is drawn from a seed. A clip is one coloured shape (circle, square,
triangle) on a plain or checkered background, moving left/right/up/down or growing/shrinking over
16 frames, with the caption that says so (``"a red circle moving left on a grey background"``) and
the ground truth the quality tests compare against (object centre and radius per frame).

Some (colour, shape, motion) triples are never used for training (:data:`HELD_BACK`): every word
is seen in training, but not in those combinations, so tests can ask whether the model composes
words rather than recalls captions.

Pixels are in ``[0, 1]``, laid out ``[T, H, W, 3]`` (ComfyUI's IMAGE layout, one video).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

FRAMES = 16
SIZE = 64

COLOURS = {"red": (0.86, 0.16, 0.16), "green": (0.16, 0.72, 0.24), "blue": (0.2, 0.32, 0.92),
           "yellow": (0.94, 0.84, 0.16)}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("left", "right", "up", "down", "growing", "shrinking")
BACKGROUNDS = {"grey": (0.5, 0.5, 0.5), "black": (0.06, 0.06, 0.06), "checkered": ((0.42, 0.42, 0.42), (0.62, 0.62, 0.62))}
CHECKER_CELL = 8  # pixels; one latent cell of the 8x VAE

#: (colour, shape, motion) triples never shown in training; each word is still seen elsewhere.
HELD_BACK = (("red", "triangle", "right"), ("blue", "circle", "left"), ("green", "square", "up"),
             ("yellow", "circle", "down"), ("red", "square", "growing"), ("blue", "triangle", "shrinking"),
             ("green", "triangle", "left"), ("yellow", "square", "right"))

#: unit direction (dx, dy) in image coordinates (y grows downwards) of each translation.
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


@dataclass(frozen=True)
class ClipSpec:
    colour: str
    shape: str
    motion: str
    background: str

    @property
    def caption(self) -> str:
        verb = f"moving {self.motion}" if self.motion in DIRECTIONS else self.motion
        return f"a {self.colour} {self.shape} {verb} on a {self.background} background"

    @property
    def held_back(self) -> bool:
        return (self.colour, self.shape, self.motion) in HELD_BACK


def all_specs() -> list[ClipSpec]:
    return [ClipSpec(c, s, m, b) for c, s, m, b in itertools.product(COLOURS, SHAPES, MOTIONS, BACKGROUNDS)]


def training_specs() -> list[ClipSpec]:
    return [spec for spec in all_specs() if not spec.held_back]


def held_back_specs() -> list[ClipSpec]:
    return [spec for spec in all_specs() if spec.held_back]


def parse_caption(caption: str) -> ClipSpec:
    """The :class:`ClipSpec` a caption of this dataset describes (ValueError for any other text)."""
    for spec in all_specs():
        if spec.caption == caption.strip().lower():
            return spec
    raise ValueError(f"{caption!r} is not a caption of the shapes dataset; e.g. {all_specs()[0].caption!r}")


@dataclass
class Clip:
    spec: ClipSpec
    frames: torch.Tensor  # [T, H, W, 3] float in [0, 1]
    centres: torch.Tensor  # [T, 2] (x, y) in pixels
    radii: torch.Tensor  # [T] half the object's extent in pixels

    @property
    def caption(self) -> str:
        return self.spec.caption


#: How translating objects travel. ``"anywhere"``: start, travel and the across position drawn over the whole
#: frame (the committed demonstration model's data). ``"entering"``: the object enters near one edge, travels
#: 20-30 px (about to the middle) and stays near the middle third across, so where it is differs by direction even
#: averaged over the clip. With "anywhere" (and clips also played backwards) "left" and "right" put the object at
#: the same place on average: the direction word only pays together with knowing which frame is which, and vice
#: versa, a saddle where both start with zero gradient (docs/demo_model.md). ``"crossing"``: a large object
#: (radius 11-14 px) starts touching one edge and crosses the middle of the frame to stop 6-10 px past it, along
#: the middle (+-5 px across); growing/shrinking objects stay near the centre. Each caption's object is then at
#: nearly the same place in the same frame of every clip (a sharp template, a third of the frame), and the clips
#: are not symmetric in time even without their captions (objects start at the edges and end near the middle), so
#: which frame comes first is worth learning on its own, before the direction words can use it. ``"edge_to_edge"``:
#: as "crossing", but the object goes on to touch the opposite edge (symmetric in time again; the warm-up stage of
#: the experiments in docs/demo_model.md).
PATHS = ("anywhere", "entering", "crossing", "edge_to_edge")
#: the paths with a large object on a fixed course (the translating ones) and a centred growing/shrinking one.
TEMPLATE_PATHS = ("crossing", "edge_to_edge")


def trajectory(motion: str, generator: torch.Generator, frames: int = FRAMES, size: int = SIZE,
               paths: str = "anywhere"):
    """Centres ``[T, 2]`` and radii ``[T]`` of one clip: linear motion, object fully inside the frame."""
    def uniform(lo, hi):
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    if paths not in PATHS:
        raise ValueError(f"unknown paths {paths!r}; choose one of {PATHS}")
    steps = torch.linspace(0.0, 1.0, frames)
    if motion in DIRECTIONS:
        big_object = paths in TEMPLATE_PATHS
        radius = uniform(11.0, 14.0) if big_object else uniform(7.0, 10.0)
        lo = radius + 2.0
        if big_object:
            start_along = radius + 1.0 + uniform(0.0, 3.0)
            travel = (size - 2.0 * start_along if paths == "edge_to_edge"
                      else size / 2 + uniform(6.0, 10.0) - start_along)
            across = size / 2 + uniform(-5.0, 5.0)
        elif paths == "entering":
            start_along = lo + uniform(0.0, 4.0)
            travel = uniform(20.0, 30.0)
            across = size / 2 + uniform(-size / 6, size / 6)
        else:
            travel = uniform(26.0, size - 2 * radius - 6.0)
            start_along = uniform(lo, size - lo - travel)
            across = uniform(lo + 4.0, size - lo - 4.0)
        along = start_along + travel * steps
        dx, dy = DIRECTIONS[motion]
        if dx:
            xs = along if dx > 0 else size - along
            ys = torch.full_like(steps, across)
        else:
            ys = along if dy > 0 else size - along
            xs = torch.full_like(steps, across)
        return torch.stack([xs, ys], -1), torch.full_like(steps, radius)
    small, large = uniform(4.0, 6.0), uniform(13.0, 16.0)
    radii = small + (large - small) * steps
    if motion == "shrinking":
        radii = radii.flip(0)
    if paths in TEMPLATE_PATHS:
        centre = [uniform(size / 2 - 6.0, size / 2 + 6.0) for _ in range(2)]
    else:
        centre = [uniform(large + 1.0, size - large - 1.0) for _ in range(2)]
    return torch.tensor(centre).expand(frames, 2).clone(), radii


def _coverage(shape: str, centres: torch.Tensor, radii: torch.Tensor, size: int) -> torch.Tensor:
    """Anti-aliased object mask ``[T, H, W]`` (1 px soft edge from a signed distance)."""
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    x = grid.view(1, 1, size) - centres[:, 0].view(-1, 1, 1)
    y = grid.view(1, size, 1) - centres[:, 1].view(-1, 1, 1)
    r = radii.view(-1, 1, 1)
    if shape == "circle":
        distance = torch.sqrt(x * x + y * y) - r
    elif shape == "square":
        distance = torch.maximum(x.abs(), y.abs()) - r * 0.85
    elif shape == "triangle":  # upward equilateral triangle with circumradius r
        edges = [(0.0, 1.0), (math.sqrt(3) / 2, -0.5), (-math.sqrt(3) / 2, -0.5)]  # outward normals (y down)
        distance = torch.stack([x * nx + y * ny for nx, ny in edges]).amax(0) - r * 0.5
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    return (0.5 - distance).clamp(0.0, 1.0)


def background(name: str, size: int = SIZE, frames: int = FRAMES) -> torch.Tensor:
    if name not in BACKGROUNDS:
        raise ValueError(f"unknown background {name!r}; choose one of {sorted(BACKGROUNDS)}")
    value = BACKGROUNDS[name]
    if name == "checkered":
        cells = torch.arange(size) // CHECKER_CELL
        odd = ((cells.view(-1, 1) + cells.view(1, -1)) % 2).float().unsqueeze(-1)
        image = torch.tensor(value[0]) * (1 - odd) + torch.tensor(value[1]) * odd
    else:
        image = torch.tensor(value).expand(size, size, 3)
    return image.expand(frames, size, size, 3).clone()


def render(spec: ClipSpec, centres: torch.Tensor, radii: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    mask = _coverage(spec.shape, centres, radii, size).unsqueeze(-1)
    colour = torch.tensor(COLOURS[spec.colour])
    return background(spec.background, size, centres.shape[0]) * (1 - mask) + colour * mask


def make_clip(spec: ClipSpec, seed: int, frames: int = FRAMES, size: int = SIZE, paths: str = "anywhere") -> Clip:
    """One clip of ``spec``; the same seed gives the same clip (``paths``: see :data:`PATHS`)."""
    generator = torch.Generator().manual_seed(seed)
    centres, radii = trajectory(spec.motion, generator, frames, size, paths)
    return Clip(spec, render(spec, centres, radii, size), centres, radii)


def sample_clips(count: int, seed: int, specs: list[ClipSpec] | None = None) -> list[Clip]:
    """``count`` clips of specs drawn uniformly (default: the training specs), reproducible from ``seed``."""
    specs = specs if specs is not None else training_specs()
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(specs), (count,), generator=generator).tolist()
    seeds = torch.randint(2 ** 31 - 1, (count,), generator=generator).tolist()
    return [make_clip(specs[i], s) for i, s in zip(picks, seeds)]


#: the motion a clip shows when played backwards
REVERSED_MOTION = {"left": "right", "right": "left", "up": "down", "down": "up", "growing": "shrinking",
                   "shrinking": "growing"}


def reversed_spec(spec: ClipSpec) -> ClipSpec:
    """What ``spec`` played backwards shows (a free, exact augmentation: frames are encoded one by one)."""
    return ClipSpec(spec.colour, spec.shape, REVERSED_MOTION[spec.motion], spec.background)
