"""docs/reference.md stays honest: everything the schemas accept is named there, and its
JSON / CSV examples are accepted by the real parsers."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema

from fixtures import load_partners
from models.csvio import read_packages_csv, read_partners_csv
from models.curves import CurveKind
from models.plan import SolveStatus
from models.request import COMPARISON_OPERATORS, Objective
from models.scenario import ChangesSchema, ForecastSchema, parse_scenarios
from models.schemas import (
    CONSTRAINT_SCHEMAS,
    CURVE_FIELDS,
    PLAN_CSV_COLUMNS,
    AllocationRequestSchema,
    AllocationSchema,
    BoundsSchema,
    ObjectiveReportSchema,
    OptionsSchema,
    PackageSchema,
    PartnerSchema,
    PlanSchema,
    ResourceReportSchema,
    ResourceSchema,
    SolverReportSchema,
    TierReportSchema,
    TierSchema,
    parse_request,
)
from optimizer.engines import known_engines

DOC = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text()
# Inline `code` spans of the prose and tables (fenced examples taken out first).
CODE_SPANS = set(re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOC, flags=re.DOTALL)))


def _json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", DOC, flags=re.DOTALL)


def _csv_blocks() -> list[str]:
    return re.findall(r"```csv\n(.*?)```", DOC, flags=re.DOTALL)


def _wire_names(schema: type[Schema]) -> list[str]:
    return [field.data_key or name for name, field in schema._declared_fields.items()]


def _missing(names: list[str]) -> list[str]:
    return [name for name in names if name not in CODE_SPANS]


SCHEMAS: list[type[Schema]] = [
    AllocationRequestSchema,
    ResourceSchema,
    TierSchema,
    PartnerSchema,
    BoundsSchema,
    PackageSchema,
    OptionsSchema,
    PlanSchema,
    ObjectiveReportSchema,
    TierReportSchema,
    ResourceReportSchema,
    SolverReportSchema,
    AllocationSchema,
    ChangesSchema,
    ForecastSchema,
    *CONSTRAINT_SCHEMAS.values(),
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.__name__)
def test_every_field_is_documented(schema: type[Schema]) -> None:
    assert _missing(_wire_names(schema)) == []


def test_every_choice_is_documented() -> None:
    choices = [
        *CONSTRAINT_SCHEMAS,
        *(str(kind) for kind in CurveKind),
        *(name for names in CURVE_FIELDS.values() for name in names),
        *(str(objective) for objective in Objective),
        *(str(status) for status in SolveStatus),
        *sorted(COMPARISON_OPERATORS),
        *known_engines(),
        *PLAN_CSV_COLUMNS,
    ]
    assert _missing(choices) == []


def _partner(pid: str, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "baseline_gmv": 5.0e8, **extra}


def test_the_request_example_is_accepted() -> None:
    request = parse_request(json.loads(_json_blocks()[0]), resolve_fixture=load_partners)
    assert [r.name for r in request.resources] == ["subsidy", "traffic"]
    assert request.options.plans == 3


def test_the_curve_package_and_constraint_examples_are_accepted() -> None:
    blocks = _json_blocks()
    response = json.loads("{" + next(b for b in blocks if b.startswith('"response"')) + "}")
    packages = json.loads("{" + next(b for b in blocks if b.startswith('"packages"')) + "}")
    constraints = json.loads("{" + next(b for b in blocks if b.startswith('"constraints"')) + "}")
    attributes = {"region": "west", "category": "beauty", "supply_chain": 70}
    data = {
        "resources": [{"name": name, "budget": 1.0e10} for name in ("subsidy", "traffic", "fund")],
        "tiers": [{"name": "gold", "min_gmv": 1.0e9, "target": 1}],
        "partners": [
            _partner("P0042", attributes=attributes, **response),
            _partner("P0001", attributes=attributes, **packages),
        ],
        **constraints,
    }
    request = parse_request(data)
    assert len(request.constraints) == len(CONSTRAINT_SCHEMAS)
    assert {c.type for c in request.constraints} == set(CONSTRAINT_SCHEMAS)


def test_the_changes_example_is_accepted() -> None:
    scenario = json.loads(next(b for b in _json_blocks() if '"changes"' in b))
    base = parse_request(
        {
            "resources": [
                {"name": "subsidy", "budget": 1.0e8},
                {"name": "traffic", "budget": 1.0e10},
            ],
            "tiers": [{"name": "gold", "min_gmv": 1.0e9, "target": 1}],
            "partners": [
                _partner(pid, response={"subsidy": {"curve": "linear", "roi": 2}})
                for pid in ("P0007", "P0042")
            ],
        }
    )
    (parsed,) = parse_scenarios([scenario], base)
    changed = parsed.apply(base)
    assert changed.resources[0].budget == pytest.approx(0.8e8)
    assert [p.id for p in changed.partners] == ["P0042"]


def test_the_csv_examples_are_read() -> None:
    partners_csv, packages_csv, plan_csv = _csv_blocks()
    partners = read_partners_csv(io.StringIO(partners_csv), ["subsidy", "traffic"])
    assert partners[0].attributes == {"region": "east", "supply_chain": 72}
    curve = partners[0].curves["subsidy"]
    header, row = (line.split(",") for line in plan_csv.splitlines()[:2])
    projected = float(row[header.index("projected_gmv")])
    assert projected == round(partners[0].baseline_gmv + float(curve.value(2.4e6)))
    bare = read_partners_csv(io.StringIO("partner_id,baseline_gmv\nP0002,1e8\n"))
    with_packages = read_packages_csv(io.StringIO(packages_csv), bare)
    assert with_packages[0].packages[0].amounts == {"subsidy": 500000.0}
