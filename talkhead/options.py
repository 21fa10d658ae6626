"""Settings, as frozen dataclasses built once (by the CLI or a caller) and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from talkhead.errors import OptionError

PART_NAMES = ("pose", "expression", "eyes", "mouth")
SIZES = (256, 512)
ENGINES = ("analytic", "codebook", "frond")


def check_timing(fps: float | None, max_seconds: float | None) -> None:
    """Raise OptionError for a frame rate or a length that cannot be used."""
    if fps is not None and not 1 <= fps <= 120:
        raise OptionError(f"--fps {fps}: use a frame rate from 1 to 120")
    if max_seconds is not None and not max_seconds > 0:
        raise OptionError(f"--max-seconds {max_seconds}: use a positive number of seconds")


@dataclass(frozen=True)
class MotionOptions:
    """How `talkhead.measure_motion` works."""

    fps: float | None = None
    max_seconds: float | None = None
    smooth: bool = True

    def __post_init__(self) -> None:
        check_timing(self.fps, self.max_seconds)


def parse_parts(text: str) -> frozenset[str]:
    """'pose,mouth' → frozenset; 'all' → every part."""
    names = {p.strip() for p in text.split(",") if p.strip()}
    if names == {"all"}:
        return frozenset(PART_NAMES)
    unknown = names - set(PART_NAMES)
    if unknown or not names:
        raise OptionError(f"--parts {text!r}: use a comma-separated subset of {', '.join(PART_NAMES)}, or all")
    return frozenset(names)


@dataclass(frozen=True)
class AnimateOptions:
    """How `talkhead.animate` works.

    reference: 'auto' (the driving frame closest to the portrait's pose and
    expression), 'first', or a frame number.
    detail: for a portrait whose face crop is larger than `size`, sample the
    frames from the portrait at up to twice `size` (sharper, slower).
    weights: a weights file for the codebook or frond engine (default: the registered model).
    """

    size: int = 512
    engine: str = "analytic"
    device: str = "auto"
    face: int = 0
    crop_only: bool = False
    reference: str = "auto"
    parts: frozenset[str] = field(default_factory=lambda: frozenset(PART_NAMES))
    expression_scale: float = 1.0
    pose_scale: float = 1.0
    fps: float | None = None
    max_seconds: float | None = None
    smooth: bool = True
    detail: bool = True
    max_output_side: int = 1920
    crf: int = 18
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.weights is not None and self.engine == "analytic":
            raise OptionError("--weights: the analytic engine has no weights; use it with --engine codebook or frond")
        if self.size not in SIZES:
            raise OptionError(f"--size {self.size}: use one of {', '.join(map(str, SIZES))}")
        if self.engine not in ENGINES:
            raise OptionError(f"--engine {self.engine}: use one of {', '.join(ENGINES)}")
        if self.face < 0:
            raise OptionError(f"--face {self.face}: use 0 for the largest face, 1 for the next, ...")
        if self.reference not in ("auto", "first") and not self.reference.isdigit():
            raise OptionError(f"--reference {self.reference!r}: use auto, first, or a frame number")
        if not set(self.parts) <= set(PART_NAMES) or not self.parts:
            raise OptionError(f"--parts: use a subset of {', '.join(PART_NAMES)}")
        for name in ("expression_scale", "pose_scale"):
            if not 0 <= getattr(self, name) <= 5:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)}: use a value from 0 to 5")
        check_timing(self.fps, self.max_seconds)
        if not 0 <= self.crf <= 51:
            raise OptionError(f"--crf {self.crf}: use 0 (lossless) to 51")


POSE_STYLES = ("still", "natural", "lively")
DRIVERS = ("auto", "phonetic", "frond")
# The driver `auto` picks for the analytic and codebook engines: the two measure alike (README, "Lip sync,
# measured"), and the phonetic one also uses a transcript exactly.
DEFAULT_DRIVER = "phonetic"


@dataclass(frozen=True)
class SpeakOptions:
    """How `talkhead.speak` works.

    pose: how much the head moves with the speech (still, natural, lively).
    seed: makes head drift and blinks reproducible.
    lipsync: a lip-sync weights file (default: the shipped model).
    driver: what turns speech into mouth motion: "phonetic" (phones → visemes and the lip-sync
    model), "frond" (FROND's motion estimator) or "auto" (frond with the frond engine, else
    DEFAULT_DRIVER).
    frond: a FROND weights file for the frond driver (default: the frond engine's `weights` with
    that engine, else the registered model).
    """

    size: int = 512
    engine: str = "analytic"
    device: str = "auto"
    face: int = 0
    crop_only: bool = False
    pose: str = "natural"
    expression_scale: float = 1.0
    fps: float = 25.0
    seed: int = 0
    max_seconds: float | None = None
    detail: bool = True
    max_output_side: int = 1920
    crf: int = 18
    lipsync: str | None = None
    weights: str | None = None
    driver: str = "auto"
    frond: str | None = None

    def __post_init__(self) -> None:
        if self.driver not in DRIVERS:
            raise OptionError(f"--driver {self.driver!r}: use one of {', '.join(DRIVERS)}")
        if self.frond is not None and self.driver_name() == "phonetic":
            raise OptionError("--frond-weights: the phonetic driver has none; add --driver frond")
        if self.pose not in POSE_STYLES:
            raise OptionError(f"--pose {self.pose!r}: use one of {', '.join(POSE_STYLES)}")
        if not 0 <= self.seed < 2**32:
            raise OptionError(f"--seed {self.seed}: use a whole number from 0 to {2**32 - 1}")
        self.render_options()  # the shared settings are checked there

    def driver_name(self) -> str:
        """The driver this run uses ("auto" resolved)."""
        if self.driver != "auto":
            return self.driver
        return "frond" if self.engine == "frond" else DEFAULT_DRIVER

    def render_options(self) -> AnimateOptions:
        """The renderer's settings for this run."""
        return AnimateOptions(size=self.size, engine=self.engine, device=self.device, face=self.face,
                              crop_only=self.crop_only, reference="first", expression_scale=self.expression_scale,
                              fps=self.fps, max_seconds=self.max_seconds, detail=self.detail,
                              max_output_side=self.max_output_side, crf=self.crf, weights=self.weights)
