"""The workspace: everything a piece of work consists of, as plain typed data (no Qt).

The GUI's document wraps one :class:`Workspace` and only adds signals and undo; a session
file (:mod:`restorelab.session`) is exactly a serialised workspace. Keeping this Qt-free
means the state a user cares about — the working image, the original it came from, the
painted mask, the clone placements, the method chosen in each tool and the last sampler
result — can be validated, saved and restored without a window, and that no panel owns a
piece of it that would survive (wrongly) when another image is opened.

Conventions: images follow :mod:`restorelab.image` (float32 ``(H, W)`` or ``(H, W, C)``);
the mask is uint8 ``(H, W)`` coverage (0 = off, 255 = on, soft values from a soft brush);
a pixel is *in* the mask when its coverage is at least half (:func:`mask_on`), the same
rule the command line applies to mask files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restorelab.image import as_float_image
from restorelab.sample_result import SampleResult
from restorelab.session import ClonePlacement, MaskLayer, MethodChoice, Session

__all__ = ["Workspace", "mask_on", "mask_to_coverage", "PAINT_MASK"]

#: name of the painted mask layer in session files
PAINT_MASK = "paint"


def mask_on(mask: np.ndarray) -> np.ndarray:
    """Boolean mask: coverage ≥ 128 of 255 (half of full scale)."""
    return np.asarray(mask) >= 128


def mask_to_coverage(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    """A bool, uint8 or float-in-[0, 1] mask as uint8 coverage of ``shape``.

    Raises ``ValueError`` for another shape or NaN values (a NaN mask is not silently 0).
    """
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"the mask is {m.shape[1]}×{m.shape[0]} (W×H), the image {shape[1]}×{shape[0]}")
    if m.dtype == np.bool_:
        return m.astype(np.uint8) * 255
    if m.dtype == np.uint8:
        return np.ascontiguousarray(m)
    f = as_float_image(m, name="mask")
    return np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Workspace:
    """One image being worked on.

    ``image`` is the working image, ``original`` the pixels as opened (the "before" of
    every comparison); ``methods`` maps a tool ("denoise", "sampler", ...) to the method
    and parameters chosen in it; ``sampler`` is the last sampler result, with the crop
    origin it belongs to in ``sampler.params["origin"]``.
    """

    image: np.ndarray
    original: np.ndarray
    mask: np.ndarray
    path: Path | None = None
    saved_path: Path | None = None
    bit_depth: int | None = None
    clones: list[ClonePlacement] = field(default_factory=list)
    methods: dict[str, MethodChoice] = field(default_factory=dict)
    history: list[MethodChoice] = field(default_factory=list)
    sampler: SampleResult | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_image(
        cls, image: Any, path: str | Path | None = None, *, bit_depth: int | None = None
    ) -> Workspace:
        """A fresh workspace on ``image`` (converted by the image policy; alpha kept)."""
        img = as_float_image(image, copy=True)
        return cls(
            image=img,
            original=img.copy(),
            mask=np.zeros(img.shape[:2], np.uint8),
            path=Path(path) if path else None,
            bit_depth=bit_depth,
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape)

    def mask_bool(self) -> np.ndarray:
        return mask_on(self.mask)

    # ------------------------------------------------------------------ sessions
    def to_session(self, *, image_sha256: str | None = None, copy: bool = True) -> Session:
        """The workspace as a :class:`~restorelab.session.Session` (arrays copied unless
        ``copy=False``, for a caller that owns a snapshot)."""
        c = (lambda a: a.copy()) if copy else (lambda a: a)
        image_path = None
        if self.path is not None:
            p = Path(self.path)
            image_path = str(p.resolve()) if p.exists() else str(p)
        s = Session(
            image_path=image_path,
            image_sha256=image_sha256,
            image=c(self.image),
            session_id=self.session_id,
        )
        s.masks.append(MaskLayer(PAINT_MASK, c(self.mask)))
        s.clones = list(self.clones)
        s.methods = list(self.methods.values())
        s.history = list(self.history)
        if self.sampler is not None:
            s.sampler_results.append(self.sampler)
        s.extra = {
            **self.extra,
            "bit_depth": self.bit_depth,
            "saved_path": None if self.saved_path is None else str(self.saved_path),
        }
        return s

    @classmethod
    def from_session(cls, s: Session, original: np.ndarray | None = None) -> Workspace:
        """Rebuild a workspace from a loaded session.

        ``original`` is the decoded file at ``s.image_path`` when it could be read (the
        caller decodes it, off the GUI thread); without it the session's pixels are the
        original too. Raises ``ValueError`` when there are no pixels at all.
        """
        image = s.image if s.image is not None else original
        if image is None:
            raise ValueError(f"the session holds no pixels and its image {s.image_path} cannot be read")
        image = as_float_image(image, name="session image", copy=True)
        orig = image.copy()
        if original is not None and not s.image_changed and np.shape(original) == image.shape:
            orig = as_float_image(original, name="original image", copy=True)
        bits = s.extra.get("bit_depth")
        ws = cls(
            image=image,
            original=orig,
            mask=np.zeros(image.shape[:2], np.uint8),
            path=s.image_file if s.image_file is not None else Path(s.image_path) if s.image_path else None,
            bit_depth=bits if isinstance(bits, int) and not isinstance(bits, bool) else None,
            session_id=s.session_id,
        )
        for m in s.masks:
            if m.name == PAINT_MASK:
                ws.mask = mask_to_coverage(m.mask, image.shape[:2])
        ws.clones = list(s.clones)
        ws.methods = {m.kind: m for m in s.methods}
        ws.history = list(s.history)
        ws.sampler = s.sampler_results[-1] if s.sampler_results else None
        ws.extra = {k: v for k, v in s.extra.items() if k not in ("bit_depth", "saved_path")}
        return ws
