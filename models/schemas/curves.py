"""Response-curve rules and schema. The rules (`curve_parameter_errors`, `points_errors`) are
vectorised so that `models.csvio` checks whole CSV columns with the same functions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from marshmallow import ValidationError, fields, post_load, pre_dump, validates_schema

from models.curves import CURVE_PARAMETERS, Curve, CurveKind, FloatArray
from models.schemas.base import BaseSchema, BoolArray, Real

# JSON names of each kind's parameters (the dataclass stores points as xs / ys).
CURVE_FIELDS: dict[CurveKind, tuple[str, ...]] = {
    kind: tuple({"xs": "x", "ys": "y"}.get(name, name) for name in names)
    for kind, names in CURVE_PARAMETERS.items()
}
NUMERIC_CURVE_PARAMETERS: tuple[str, ...] = tuple(
    sorted(
        {
            name
            for kind, names in CURVE_PARAMETERS.items()
            if kind is not CurveKind.POINTS
            for name in names
        }
    )
)


def curve_parameter_errors(
    kind: CurveKind, values: Mapping[str, FloatArray], size: int
) -> Iterator[tuple[str, BoolArray, str]]:
    """Which of `size` rows break the rules of a `kind` curve, as (parameter, row mask,
    message).

    `values` maps numeric parameter names to arrays of `size` values, NaN where a row does
    not give the parameter; parameters absent from `values` count as not given. Every
    parameter the kind takes is required and must be finite and > 0; parameters of other
    kinds must not be given. (`points` is checked by `points_errors`.)
    """
    wanted = CURVE_FIELDS[kind]
    for name in NUMERIC_CURVE_PARAMETERS:
        column = values.get(name)
        given = ~np.isnan(column) if column is not None else np.zeros(size, dtype=bool)
        if name not in wanted:
            yield name, given, f"not a parameter of a {kind} curve (it takes {', '.join(wanted)})"
            continue
        yield name, ~given, f"required for a {kind} curve"
        if column is not None:
            yield name, given & np.isinf(column), "must be finite"
            yield name, given & ~(column > 0), "must be > 0"


def points_errors(xs: Sequence[float], ys: Sequence[float]) -> dict[str, list[str]]:
    """Problems of a `points` curve, keyed "x" / "y" (empty when the curve is valid)."""
    errors: dict[str, list[str]] = {}

    def fail(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        fail("x", "must be finite numbers")
    if not np.all(np.isfinite(y)):
        fail("y", "must be finite numbers")
    if errors:
        return errors
    if len(x) != len(y):
        fail("y", f"must have as many values as x ({len(y)} != {len(x)})")
    if len(x) < 2:
        fail("x", "needs at least 2 points")
    if len(x) and x[0] != 0:
        fail("x", "must start at 0")
    if np.any(np.diff(x) <= 0):
        fail("x", "must be strictly increasing")
    if len(y) and y[0] < 0:
        fail("y", "must start at a value >= 0")
    if np.any(np.diff(y) < 0):
        fail("y", "must be non-decreasing")
    return errors


def curve_to_dict(curve: Curve) -> dict[str, Any]:
    """A curve in the JSON shape: ``{"curve": kind, <its parameters>}``."""
    out: dict[str, Any] = {"curve": str(curve.kind)}
    if curve.kind is CurveKind.POINTS:
        out["x"], out["y"] = list(curve.xs), list(curve.ys)
    else:
        out.update({name: getattr(curve, name) for name in CURVE_PARAMETERS[curve.kind]})
    return out


class CurveSchema(BaseSchema):
    curve = fields.Enum(CurveKind, by_value=True, required=True)
    max_uplift = Real()
    scale = Real()
    coef = Real()
    roi = Real()
    shape = Real()
    half_saturation = Real()
    x = fields.List(Real())
    y = fields.List(Real())

    @validates_schema
    def _check_parameters(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind: CurveKind = data["curve"]
        errors: dict[str, list[str]] = {}
        values = {
            name: np.array([data[name]], dtype=np.float64)
            for name in NUMERIC_CURVE_PARAMETERS
            if name in data
        }
        for name, rows, message in curve_parameter_errors(kind, values, 1):
            if rows[0]:
                errors.setdefault(name, []).append(message)
        if kind is CurveKind.POINTS:
            missing = [key for key in ("x", "y") if key not in data]
            for key in missing:
                errors[key] = ["required for a points curve"]
            if not missing:
                for key, messages in points_errors(data["x"], data["y"]).items():
                    errors.setdefault(key, []).extend(messages)
        else:
            for key in ("x", "y"):
                if key in data:
                    errors[key] = [
                        f"not a parameter of a {kind} curve (it takes "
                        f"{', '.join(CURVE_FIELDS[kind])})"
                    ]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Curve:
        kind = data.pop("curve")
        if kind is CurveKind.POINTS:
            return Curve(kind, xs=tuple(data["x"]), ys=tuple(data["y"]))
        return Curve(kind, **data)

    @pre_dump
    def _fields(self, curve: Curve, **kwargs: Any) -> dict[str, Any]:
        return {**curve_to_dict(curve), "curve": curve.kind}
