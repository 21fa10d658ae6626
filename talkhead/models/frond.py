"""FROND (paper B: "Toward Fine-Grained Talking Face Generation", IEEE TIP 2023): its four parts in one model.

    speech ─► MotionEstimator (frond_motion.py) ─► Trajectory in the motion space of
    TwoStreamEncoder (frond_encoder.py) ─► decoded landmark deltas ─► Motion (any engine renders it)

    portrait + target landmarks ─► DenseMotionField (frond_field.py): the whole face's warp fused with
    the encoder's local keypoints ─► ImplicitDecoder (frond_decoder.py) ─► frame at any size

One safetensors file holds all four, with the config of each in its metadata
(`trained` says which stages were trained: "motion", "render").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch.nn as nn

from talkhead.models.frond_decoder import DecoderConfig, ImplicitDecoder
from talkhead.models.frond_encoder import EncoderConfig, TwoStreamEncoder
from talkhead.models.frond_field import DenseMotionField, FieldConfig
from talkhead.models.frond_motion import EstimatorConfig, MotionEstimator
from talkhead.models.serial import check_header, load_state, state_arrays

KIND = "talkhead-frond"
VERSION = 1


@dataclass(frozen=True)
class FrondConfig:
    encoder: EncoderConfig = EncoderConfig()
    estimator: EstimatorConfig = EstimatorConfig()
    field: FieldConfig = FieldConfig()
    decoder: DecoderConfig = DecoderConfig()

    def __post_init__(self) -> None:
        if self.estimator.motion != self.encoder.motion_size or self.field.keypoints != self.encoder.keypoints:
            raise ValueError("the estimator's motion size and the field's keypoints must match the encoder's")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "FrondConfig":
        d = json.loads(text)
        estimator = {**d["estimator"], "dilations": tuple(d["estimator"]["dilations"])}
        return cls(EncoderConfig(**d["encoder"]), EstimatorConfig(**estimator), FieldConfig(**d["field"]),
                   DecoderConfig(**d["decoder"]))


class Frond(nn.Module):
    def __init__(self, config: FrondConfig = FrondConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = TwoStreamEncoder(config.encoder)
        self.estimator = MotionEstimator(config.estimator)
        self.field = DenseMotionField(config.field)
        self.decoder = ImplicitDecoder(config.decoder)


def to_tensors(model: Frond, meta: dict[str, str] | None = None, half: bool = False) -> tuple[dict, dict[str, str]]:
    """(numpy arrays by name, metadata with the config) for a safetensors file; `half` stores float16."""
    return state_arrays(model, half), {"kind": KIND, "version": str(VERSION), "config": model.config.to_json(),
                                       **(meta or {})}


def from_tensors(arrays: dict, meta: dict[str, str]) -> Frond:
    """Rebuild from `to_tensors` output (ValueError/KeyError if it is not a FROND model this code reads)."""
    check_header(meta, KIND, VERSION)
    return load_state(Frond(FrondConfig.from_json(meta["config"])), arrays)
