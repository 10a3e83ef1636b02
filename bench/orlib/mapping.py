"""Instances as Windmaker requests (the mapping the package docstring describes)."""

from __future__ import annotations

from bench.orlib.data import FloatArray, Instance, MkpInstance, MmkpInstance
from models.request import (
    AllocationRequest,
    Objective,
    OnePackage,
    Options,
    Package,
    Partner,
    Resource,
)
from models.schemas import parse_request, request_to_dict


def _resources(capacities: FloatArray) -> tuple[Resource, ...]:
    return tuple(
        Resource(name=f"c{i + 1}", unit="units", budget=float(capacity))
        for i, capacity in enumerate(capacities)
    )


def mkp_request(instance: MkpInstance, options: Options) -> AllocationRequest:
    """Item j -> partner `item{j}` (1-based) with one package `take`."""
    names = [f"c{i + 1}" for i in range(instance.m)]
    partners = tuple(
        Partner(
            id=f"item{j + 1}",
            baseline_gmv=0.0,
            packages=(
                Package(
                    "take",
                    {name: float(w) for name, w in zip(names, instance.weights[:, j], strict=True)},
                    float(instance.profits[j]),
                ),
            ),
        )
        for j in range(instance.n)
    )
    return AllocationRequest(
        resources=_resources(instance.capacities),
        tiers=(),
        partners=partners,
        name=instance.id,
        objective=Objective.MAX_GMV,
        options=options,
    )


def mmkp_request(instance: MmkpInstance, options: Options) -> AllocationRequest:
    """Group g -> partner `group{g}` (1-based) with packages `option{k}` (0-based, as in
    Khan's solution vectors); one `one_package` rule over everyone forces exactly one."""
    names = [f"c{i + 1}" for i in range(instance.m)]
    partners = tuple(
        Partner(
            id=f"group{g + 1}",
            baseline_gmv=0.0,
            packages=tuple(
                Package(
                    f"option{k}",
                    {name: float(w) for name, w in zip(names, instance.weights[g, k], strict=True)},
                    float(instance.values[g, k]),
                )
                for k in range(instance.options)
            ),
        )
        for g in range(instance.n)
    )
    return AllocationRequest(
        resources=_resources(instance.capacities),
        tiers=(),
        partners=partners,
        name=instance.id,
        objective=Objective.MAX_GMV,
        constraints=(OnePackage(),),
        options=options,
    )


def to_request(instance: Instance, options: Options) -> AllocationRequest:
    if isinstance(instance, MkpInstance):
        return mkp_request(instance, options)
    return mmkp_request(instance, options)


def through_json(request: AllocationRequest) -> AllocationRequest:
    """The request as a client would send it: dumped to the wire format and validated back.
    Raises if the round trip changes anything (the mapping must survive the schema)."""
    parsed = parse_request(request_to_dict(request))
    if parsed != request:
        raise AssertionError(f"{request.name}: the JSON round trip changed the request")
    return parsed
