"""The JSON validation boundary: what loads, what it loads into, and how bad input is named."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from models.curves import Curve, CurveKind
from models.plan import (
    Allocation,
    ObjectiveReport,
    Plan,
    ResourceReport,
    SolverReport,
    SolveStatus,
    TierReport,
)
from models.request import (
    AllocationRequest,
    Bounds,
    DomainError,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    Objective,
    OnePackage,
    Options,
    Package,
    Partner,
    Pin,
    Where,
)
from models.schemas import (
    AllocationRequestSchema,
    PlanSchema,
    RequestValidationError,
    parse_request,
    plan_from_dict,
    plan_to_dict,
    plans_to_list,
    request_to_dict,
)
from tests.support.instances import small_requests


def programme() -> dict[str, Any]:
    """A request using every feature, at realistic magnitudes."""
    return {
        "name": "q3 programme",
        "objective": "max_attainment",
        "resources": [
            {"name": "subsidy", "unit": "CNY", "budget": 5e8, "unit_cost": 1.0, "step": 1000},
            {"name": "traffic", "unit": "impressions", "budget": 1e11, "unit_cost": 0.02},
            {"name": "fund", "budget": 1e9},
        ],
        "tiers": [
            {"name": "1B", "min_gmv": 1e9, "target": 100, "weight": 2.0},
            {"name": "100M", "min_gmv": 1e8, "target": 300},
        ],
        "partners": [
            {
                "id": "p1",
                "name": "Jinhua Live",
                "baseline_gmv": 8e8,
                "baseline_gmv_p10": 6e8,
                "baseline_gmv_p90": 9.5e8,
                "attributes": {
                    "region": "east",
                    "category": "beauty",
                    "supply_chain": 72,
                    "verified": True,
                },
                "response": {
                    "subsidy": {"curve": "saturating", "max_uplift": 3e8, "scale": 2e7},
                    "traffic": {"curve": "log", "coef": 1e8, "scale": 1e9},
                    "fund": {
                        "curve": "hill",
                        "max_uplift": 2e8,
                        "shape": 2.0,
                        "half_saturation": 1e7,
                    },
                },
                "bounds": {"fund": {"min": 5e6, "max": 5e7}, "subsidy": {"max": 2.5e7}},
            },
            {
                "id": "p2",
                "baseline_gmv": 9e7,
                "attributes": {"region": "west", "category": "food", "supply_chain": 40},
                "response": {
                    "subsidy": {"curve": "linear", "roi": 3.5},
                    "traffic": {"curve": "points", "x": [0, 1e9, 4e9], "y": [0, 1e7, 1.5e7]},
                },
            },
            {
                "id": "p3",
                "baseline_gmv": 4e8,
                "attributes": {"region": "east", "category": "food", "supply_chain": 65},
                "packages": [
                    {"name": "none", "amounts": {}, "uplift": 0},
                    {"name": "gold", "amounts": {"subsidy": 2e7, "traffic": 1e9}, "uplift": 7e8},
                ],
            },
        ],
        "constraints": [
            {"type": "max_share", "resource": "subsidy", "max_share": 0.05},
            {
                "type": "group_budget",
                "resource": "subsidy",
                "where": {"region": "east"},
                "min_share": 0.1,
                "max_share": 0.5,
            },
            {"type": "group_count", "tier": "1B", "where": {"category": "beauty"}, "min": 1},
            {"type": "eligibility", "resource": "fund", "where": {"supply_chain": {">=": 60}}},
            {"type": "pin", "partner_id": "p1", "resource": "subsidy", "amount": 1e6},
            {"type": "one_package", "where": {}},
        ],
        "options": {"time_limit_s": 30, "mip_gap": 0.01, "plans": 3, "engine": "highs", "seed": 7},
    }


def minimal() -> dict[str, Any]:
    return {
        "resources": [{"name": "subsidy", "budget": 1e8}],
        "partners": [
            {
                "id": "p1",
                "baseline_gmv": 5e7,
                "response": {"subsidy": {"curve": "linear", "roi": 2.0}},
            }
        ],
    }


def problems(data: Any, **kwargs: Any) -> dict[str, list[str]]:
    """The flat {path: messages} of the error `data` raises."""
    with pytest.raises(RequestValidationError) as caught:
        parse_request(data, **kwargs)
    return caught.value.flat()


# --- what valid input loads into -------------------------------------------------------


def test_full_request_loads_into_domain_objects() -> None:
    request = parse_request(programme())

    assert request.name == "q3 programme"
    assert request.objective is Objective.MAX_ATTAINMENT
    assert [r.name for r in request.resources] == ["subsidy", "traffic", "fund"]
    assert request.resource("subsidy").step == 1000.0
    assert request.resource("fund").unit == "CNY"
    assert request.tier("1B").weight == 2.0 and request.tier("100M").weight == 1.0
    p1, p2, p3 = request.partners
    assert p1.curves["subsidy"] == Curve(CurveKind.SATURATING, max_uplift=3e8, scale=2e7)
    assert p1.curves["fund"] == Curve(
        CurveKind.HILL, max_uplift=2e8, shape=2.0, half_saturation=1e7
    )
    assert p1.bounds == {"fund": Bounds(5e6, 5e7), "subsidy": Bounds(0.0, 2.5e7)}
    assert p1.attributes["verified"] is True and p1.attributes["supply_chain"] == 72
    assert p2.curves["traffic"].xs == (0.0, 1e9, 4e9)
    assert p2.curves["traffic"].ys == (0.0, 1e7, 1.5e7)
    assert p3.packages == (
        Package("none", {}, 0.0),
        Package("gold", {"subsidy": 2e7, "traffic": 1e9}, 7e8),
    )
    assert request.constraints == (
        MaxShare("subsidy", 0.05),
        GroupBudget("subsidy", Where({"region": "east"}), 0.1, 0.5),
        GroupCount("1B", 1, Where({"category": "beauty"})),
        Eligibility("fund", Where({"supply_chain": {">=": 60}})),
        Pin("p1", "subsidy", 1e6),
        OnePackage(Where({})),
    )
    assert request.options == Options(
        time_limit_s=30, mip_gap=0.01, plans=3, engine="highs", seed=7
    )


def test_defaults() -> None:
    request = parse_request(minimal())

    assert request.objective is Objective.MAX_ATTAINMENT
    assert request.name == ""
    assert request.tiers == () and request.constraints == ()
    assert request.options == Options()
    resource = request.resources[0]
    assert (resource.unit, resource.unit_cost, resource.step) == ("CNY", 1.0, None)
    partner = request.partners[0]
    assert partner == Partner("p1", 5e7, curves={"subsidy": Curve(CurveKind.LINEAR, roi=2.0)})


def test_defaults_inside_nested_objects() -> None:
    data = minimal()
    data["resources"][0]["budget"] = None
    data["tiers"] = [{"name": "100M", "min_gmv": 1e8, "target": 3}]
    data["partners"][0]["bounds"] = {"subsidy": {"min": 1e6}}
    data["constraints"] = [{"type": "group_budget", "resource": "subsidy", "max_share": 0.4}]
    data["options"] = {"plans": 2}
    data["resources"][0]["budget"] = 1e8
    request = parse_request(data)

    assert request.tiers[0].weight == 1.0
    assert request.partners[0].bounds["subsidy"] == Bounds(1e6, None)
    assert request.constraints == (GroupBudget("subsidy", Where(), 0.0, 0.4),)
    assert request.options == Options(plans=2)


def test_unlimited_budget_and_whole_number_floats() -> None:
    data = minimal()
    data["resources"][0]["budget"] = None
    data["tiers"] = [{"name": "100M", "min_gmv": 1e8, "target": 300.0}]
    request = parse_request(data)
    assert request.resources[0].budget is None
    assert request.tiers[0].target == 300 and isinstance(request.tiers[0].target, int)


@pytest.mark.parametrize("objective", list(Objective))
def test_every_objective_loads_even_without_tiers(objective: Objective) -> None:
    data = minimal()
    data["objective"] = objective.value
    request = parse_request(data)
    assert request.objective is objective and request.tiers == ()


def test_round_trip_of_full_request() -> None:
    request = parse_request(programme())
    dumped = request_to_dict(request)
    assert json.loads(json.dumps(dumped)) == dumped  # plain JSON
    assert parse_request(dumped) == request
    assert dumped["partners"][0]["response"]["fund"] == {
        "curve": "hill",
        "max_uplift": 2e8,
        "shape": 2.0,
        "half_saturation": 1e7,
    }
    assert dumped["partners"][1]["response"]["traffic"] == {
        "curve": "points",
        "x": [0.0, 1e9, 4e9],
        "y": [0.0, 1e7, 1.5e7],
    }
    assert dumped["constraints"][3] == {
        "type": "eligibility",
        "resource": "fund",
        "where": {"supply_chain": {">=": 60}},
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_requests())
def test_round_trip_of_generated_requests(request: AllocationRequest) -> None:
    assert parse_request(json.loads(json.dumps(request_to_dict(request)))) == request


# --- where selectors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "selected"),
    [
        ("east", {"p1", "p3"}),
        ({"==": "west"}, {"p2"}),
        ({"!=": "east"}, {"p2"}),
        ({"in": ["west", "north"]}, {"p2"}),
    ],
)
def test_where_on_text_attribute(condition: Any, selected: set[str]) -> None:
    data = programme()
    data["constraints"] = [
        {"type": "eligibility", "resource": "fund", "where": {"region": condition}}
    ]
    request = parse_request(data)
    rule = request.constraints[0]
    assert isinstance(rule, Eligibility)
    assert {p.id for p in request.partners if rule.where.matches(p)} == selected


@pytest.mark.parametrize(
    ("operator", "value", "selected"),
    [
        ("<", 65, {"p2"}),
        ("<=", 65, {"p2", "p3"}),
        (">", 65, {"p1"}),
        (">=", 65, {"p1", "p3"}),
        ("==", 40, {"p2"}),
        ("!=", 40, {"p1", "p3"}),
        ("in", [40, 72], {"p1", "p2"}),
    ],
)
def test_where_comparison_operators(operator: str, value: Any, selected: set[str]) -> None:
    data = programme()
    data["constraints"] = [
        {
            "type": "group_count",
            "tier": "1B",
            "min": 0,
            "where": {"supply_chain": {operator: value}},
        }
    ]
    request = parse_request(data)
    rule = request.constraints[0]
    assert isinstance(rule, GroupCount)
    assert {p.id for p in request.partners if rule.where.matches(p)} == selected


def test_where_combines_keys_and_selects_on_partner_id() -> None:
    data = programme()
    data["constraints"] = [
        {
            "type": "eligibility",
            "resource": "fund",
            "where": {"region": "east", "supply_chain": {">": 60, "<": 70}},
        },
        {"type": "eligibility", "resource": "traffic", "where": {"id": {"in": ["p2", "p3"]}}},
    ]
    request = parse_request(data)
    first, second = request.constraints
    assert isinstance(first, Eligibility) and isinstance(second, Eligibility)
    assert [p.id for p in request.partners if first.where.matches(p)] == ["p3"]
    assert [p.id for p in request.partners if second.where.matches(p)] == ["p2", "p3"]


# --- bad input: every rule names its field ---------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


def _append(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path.split("."):
            node = node[int(key) if key.isdigit() else key]
        node.append(value)

    return mutate


SUBSIDY = "partners.0.response.subsidy"
POINTS = "partners.1.response.traffic"

BAD_INPUTS: list[tuple[str, Mutation, str, str]] = [
    # (case, mutation of programme(), field path, part of the message)
    ("unknown top-level field", _set("budget", 5), "budget", "Unknown field"),
    (
        "unknown resource field",
        _set("resources.0.colour", "red"),
        "resources.0.colour",
        "Unknown field",
    ),
    ("unknown curve field", _set(f"{SUBSIDY}.speed", 1), f"{SUBSIDY}.speed", "Unknown field"),
    ("unknown options field", _set("options.threads", 4), "options.threads", "Unknown field"),
    (
        "unknown bounds field",
        _set("partners.0.bounds.fund.maximum", 1),
        "partners.0.bounds.fund.maximum",
        "Unknown field",
    ),
    ("resource name missing", _delete("resources.1.name"), "resources.1.name", "Missing data"),
    ("negative budget", _set("resources.0.budget", -1), "resources.0.budget", "must be >= 0"),
    (
        "budget as a string",
        _set("resources.0.budget", "5e8"),
        "resources.0.budget",
        "Not a valid number",
    ),
    (
        "budget as a boolean",
        _set("resources.0.budget", True),
        "resources.0.budget",
        "Not a valid number",
    ),
    ("zero step", _set("resources.0.step", 0), "resources.0.step", "must be > 0"),
    ("negative step", _set("resources.0.step", -1000), "resources.0.step", "must be > 0"),
    (
        "negative unit cost",
        _set("resources.1.unit_cost", -0.02),
        "resources.1.unit_cost",
        "must be >= 0",
    ),
    (
        "duplicate resource",
        _set("resources.2.name", "subsidy"),
        "resources.2.name",
        "duplicate resource name 'subsidy'",
    ),
    (
        "resource named like a plan column",
        _set("resources.2.name", "tier"),
        "resources.2.name",
        "reserved",
    ),
    ("no resources", _set("resources", []), "resources", "needs a resource"),
    ("tier without target", _delete("tiers.1.target"), "tiers.1.target", "Missing data"),
    ("fractional target", _set("tiers.0.target", 2.5), "tiers.0.target", "Not a valid integer"),
    ("negative target", _set("tiers.0.target", -1), "tiers.0.target", "must be >= 0"),
    ("zero min_gmv", _set("tiers.0.min_gmv", 0), "tiers.0.min_gmv", "must be > 0"),
    ("zero weight", _set("tiers.1.weight", 0), "tiers.1.weight", "must be > 0"),
    ("duplicate tier", _set("tiers.1.name", "1B"), "tiers.1.name", "duplicate tier name '1B'"),
    (
        "duplicate partner id",
        _set("partners.2.id", "p1"),
        "partners.2.id",
        "duplicate partner id 'p1'",
    ),
    ("empty partner id", _set("partners.0.id", ""), "partners.0.id", "must not be empty"),
    ("partner id as a number", _set("partners.0.id", 7), "partners.0.id", "Not a valid string"),
    (
        "negative baseline",
        _set("partners.1.baseline_gmv", -5),
        "partners.1.baseline_gmv",
        "must be >= 0",
    ),
    (
        "baseline missing",
        _delete("partners.1.baseline_gmv"),
        "partners.1.baseline_gmv",
        "Missing data",
    ),
    (
        "p10 above baseline",
        _set("partners.0.baseline_gmv_p10", 9e8),
        "partners.0.baseline_gmv_p10",
        "must be <= baseline_gmv",
    ),
    (
        "p90 below baseline",
        _set("partners.0.baseline_gmv_p90", 7e8),
        "partners.0.baseline_gmv_p90",
        "must be >= baseline_gmv",
    ),
    (
        "attribute value a list",
        _set("partners.0.attributes.tags", ["a"]),
        "partners.0.attributes.tags",
        "must be a string, a number or true/false",
    ),
    (
        "attribute named id",
        _set("partners.0.attributes.id", "x"),
        "partners.0.attributes",
        "reserved",
    ),
    ("negative curve scale", _set(f"{SUBSIDY}.scale", -1), f"{SUBSIDY}.scale", "must be > 0"),
    ("zero max_uplift", _set(f"{SUBSIDY}.max_uplift", 0), f"{SUBSIDY}.max_uplift", "must be > 0"),
    (
        "zero hill shape",
        _set("partners.0.response.fund.shape", 0),
        "partners.0.response.fund.shape",
        "must be > 0",
    ),
    (
        "negative roi",
        _set("partners.1.response.subsidy.roi", -2),
        "partners.1.response.subsidy.roi",
        "must be > 0",
    ),
    (
        "unknown curve kind",
        _set(f"{SUBSIDY}.curve", "sigmoid"),
        f"{SUBSIDY}.curve",
        "Must be one of",
    ),
    ("curve kind missing", _delete(f"{SUBSIDY}.curve"), f"{SUBSIDY}.curve", "Missing data"),
    (
        "parameter of another kind",
        _set(f"{SUBSIDY}.coef", 5),
        f"{SUBSIDY}.coef",
        "not a parameter of a saturating curve",
    ),
    (
        "missing curve parameter",
        _delete(f"{SUBSIDY}.scale"),
        f"{SUBSIDY}.scale",
        "required for a saturating curve",
    ),
    (
        "points given to a log curve",
        _set("partners.0.response.traffic.x", [0, 1]),
        "partners.0.response.traffic.x",
        "not a parameter of a log curve",
    ),
    ("points x not from 0", _set(f"{POINTS}.x", [1, 2, 3]), f"{POINTS}.x", "must start at 0"),
    (
        "points x not increasing",
        _set(f"{POINTS}.x", [0, 2e9, 2e9]),
        f"{POINTS}.x",
        "strictly increasing",
    ),
    ("points y decreasing", _set(f"{POINTS}.y", [0, 2e7, 1e7]), f"{POINTS}.y", "non-decreasing"),
    ("points lengths differ", _set(f"{POINTS}.y", [0, 1e7]), f"{POINTS}.y", "as many values as x"),
    ("a single point", _set(f"{POINTS}.x", [0]), f"{POINTS}.x", "at least 2 points"),
    ("points y below 0", _set(f"{POINTS}.y", [-1, 1e7, 1.5e7]), f"{POINTS}.y", ">= 0"),
    ("points y missing", _delete(f"{POINTS}.y"), f"{POINTS}.y", "required for a points curve"),
    (
        "curve for unknown resource",
        _set("partners.0.response.trafic", {"curve": "linear", "roi": 1.0}),
        "partners.0.response.trafic",
        "unknown resource 'trafic'",
    ),
    (
        "bounds for unknown resource",
        _set("partners.0.bounds.cash", {"max": 1}),
        "partners.0.bounds.cash",
        "unknown resource 'cash'",
    ),
    (
        "bounds min above max",
        _set("partners.0.bounds.fund.min", 6e7),
        "partners.0.bounds.fund.min",
        "must be <= max",
    ),
    (
        "negative bound",
        _set("partners.0.bounds.subsidy.max", -1),
        "partners.0.bounds.subsidy.max",
        "must be >= 0",
    ),
    (
        "package of unknown resource",
        _set("partners.2.packages.1.amounts.cash", 5),
        "partners.2.packages.1.amounts.cash",
        "unknown resource 'cash'",
    ),
    (
        "negative package amount",
        _set("partners.2.packages.1.amounts.subsidy", -5),
        "partners.2.packages.1.amounts.subsidy",
        "must be >= 0",
    ),
    (
        "package uplift missing",
        _delete("partners.2.packages.1.uplift"),
        "partners.2.packages.1.uplift",
        "Missing data",
    ),
    (
        "duplicate package",
        _set("partners.2.packages.1.name", "none"),
        "partners.2.packages.1.name",
        "duplicate package name 'none'",
    ),
    (
        "curves and packages",
        _set("partners.2.response", {"subsidy": {"curve": "linear", "roi": 1.0}}),
        "partners.2.packages",
        "not both",
    ),
    (
        "constraint type unknown",
        _set("constraints.0.type", "cap"),
        "constraints.0.type",
        "Must be one of",
    ),
    (
        "constraint type missing",
        _delete("constraints.0.type"),
        "constraints.0.type",
        "Missing data",
    ),
    (
        "constraint not an object",
        _set("constraints.0", "max_share"),
        "constraints.0",
        "must be an object",
    ),
    (
        "unknown constraint field",
        _set("constraints.4.partner", "p1"),
        "constraints.4.partner",
        "Unknown field",
    ),
    (
        "share above 1",
        _set("constraints.0.max_share", 1.5),
        "constraints.0.max_share",
        "between 0 and 1",
    ),
    (
        "negative share",
        _set("constraints.1.min_share", -0.1),
        "constraints.1.min_share",
        "between 0 and 1",
    ),
    (
        "min_share above max_share",
        _set("constraints.1.min_share", 0.6),
        "constraints.1.min_share",
        "must be <= max_share",
    ),
    (
        "constraint on unknown resource",
        _set("constraints.3.resource", "cash"),
        "constraints.3.resource",
        "unknown resource 'cash'",
    ),
    (
        "share of an unlimited resource",
        _set("resources.0.budget", None),
        "constraints.0.resource",
        "has no budget",
    ),
    (
        "constraint on unknown tier",
        _set("constraints.2.tier", "10B"),
        "constraints.2.tier",
        "unknown tier '10B'",
    ),
    ("negative group count", _set("constraints.2.min", -1), "constraints.2.min", "must be >= 0"),
    (
        "pin of unknown partner",
        _set("constraints.4.partner_id", "p9"),
        "constraints.4.partner_id",
        "unknown partner id 'p9'",
    ),
    ("negative pin", _set("constraints.4.amount", -1), "constraints.4.amount", "must be >= 0"),
    (
        "second pin of a pair",
        _append(
            "constraints", {"type": "pin", "partner_id": "p1", "resource": "subsidy", "amount": 2e6}
        ),
        "constraints.6.partner_id",
        "a second pin",
    ),
    (
        "unknown where operator",
        _set("constraints.3.where.supply_chain", {"=>": 60}),
        "constraints.3.where.supply_chain.=>",
        "unknown operator '=>'",
    ),
    (
        "'in' without a list",
        _set("constraints.1.where.region", {"in": "east"}),
        "constraints.1.where.region.in",
        "'in' takes a list",
    ),
    (
        "comparison with a list",
        _set("constraints.1.where.region", {"==": ["east"]}),
        "constraints.1.where.region.==",
        "use 'in' for a list",
    ),
    (
        "empty operator object",
        _set("constraints.1.where.region", {}),
        "constraints.1.where.region",
        "needs at least one operator",
    ),
    (
        "where value an array",
        _set("constraints.1.where.region", ["east"]),
        "constraints.1.where.region",
        "must be a string, a number or true/false",
    ),
    (
        "where on an attribute nobody has",
        _set("constraints.1.where", {"regoin": "east"}),
        "constraints.1.where.regoin",
        "no partner has an attribute 'regoin'",
    ),
    ("unknown objective", _set("objective", "max_profit"), "objective", "Must be one of"),
    ("zero time limit", _set("options.time_limit_s", 0), "options.time_limit_s", "must be > 0"),
    ("mip gap of 1", _set("options.mip_gap", 1), "options.mip_gap", "< 1"),
    ("negative mip gap", _set("options.mip_gap", -0.1), "options.mip_gap", ">= 0"),
    ("zero plans", _set("options.plans", 0), "options.plans", "between 1 and 20"),
    ("too many plans", _set("options.plans", 21), "options.plans", "between 1 and 20"),
    ("engine not a string", _set("options.engine", 3), "options.engine", "Not a valid string"),
    ("seed not an integer", _set("options.seed", "seven"), "options.seed", "Not a valid integer"),
    ("partners missing", _delete("partners"), "partners", "Missing data"),
    ("no partners", _set("partners", []), "partners", "needs a partner"),
    ("partners a string", _set("partners", "all"), "partners", "must be a list of partners"),
    ("partner not an object", _set("partners.1", "p2"), "partners.1", "Invalid input type"),
    ("name not a string", _set("name", 3), "name", "Not a valid string"),
]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_names_the_field(mutate: Mutation, path: str, message: str) -> None:
    data = programme()
    mutate(data)
    found = problems(data)
    assert path in found, f"{path} not among {sorted(found)}"
    assert any(message in text for text in found[path]), found[path]


def test_valid_programme_has_no_problems() -> None:
    # The mutations above are each the only problem; the unmutated request is valid.
    assert isinstance(parse_request(programme()), AllocationRequest)


def test_every_problem_is_reported_at_once() -> None:
    data = programme()
    data["resources"][0]["budget"] = -1
    data["tiers"][1].pop("target")
    data["partners"][0]["response"]["subsidy"]["scale"] = 0
    data["partners"][2]["id"] = "p1"
    data["constraints"][2]["tier"] = "10B"
    data["options"]["plans"] = 50
    found = problems(data)
    assert {
        "resources.0.budget",
        "tiers.1.target",
        "partners.0.response.subsidy.scale",
        "partners.2.id",
        "constraints.2.tier",
        "options.plans",
    } <= set(found)


def test_references_are_checked_even_when_the_referenced_item_is_broken() -> None:
    data = programme()
    data["resources"][0]["budget"] = "lots"  # subsidy is broken but still declared
    found = problems(data)
    assert set(found) == {"resources.0.budget"}


def test_a_section_that_fails_entirely_causes_no_follow_up_errors() -> None:
    data = programme()
    data["resources"] = {"subsidy": 5e8}
    data["tiers"] = "1B"
    assert problems(data) == {"resources": ["Not a valid list."], "tiers": ["Not a valid list."]}


def test_error_messages_are_nested_json_with_string_keys() -> None:
    data = programme()
    data["partners"][0]["response"]["subsidy"]["scale"] = -3
    with pytest.raises(RequestValidationError) as caught:
        parse_request(data)
    error = caught.value
    assert isinstance(error, DomainError)
    assert error.messages == {
        "partners": {"0": {"response": {"subsidy": {"scale": ["must be > 0"]}}}}
    }
    assert json.loads(json.dumps(error.messages, sort_keys=True)) == error.messages
    assert "partners.0.response.subsidy.scale: must be > 0" in str(error)
    assert str(error).startswith("invalid allocation request (1 problem)")


@pytest.mark.parametrize("data", [None, [], "request", 42])
def test_non_object_request(data: Any) -> None:
    found = problems(data)
    assert found == {"": ["Invalid input type."]}


# --- partners from elsewhere -----------------------------------------------------------


def _fixture_partners() -> tuple[Partner, ...]:
    return (
        Partner(
            "f1",
            2e8,
            attributes={"region": "east"},
            curves={
                "subsidy": Curve(CurveKind.LINEAR, roi=2.0),
                "eco": Curve(CurveKind.LINEAR, roi=1.0),
            },
            bounds={"eco": Bounds(0.0, 5.0)},
        ),
        Partner("f2", 5e8, attributes={"region": "west"}),
    )


def _resolver(name: str) -> tuple[Partner, ...]:
    if name != "programme":
        raise KeyError(name)
    return _fixture_partners()


def test_fixture_reference_is_resolved_and_undeclared_curves_dropped() -> None:
    data = minimal()
    data["partners"] = {"fixture": "programme"}
    data["constraints"] = [
        {"type": "pin", "partner_id": "f2", "resource": "subsidy", "amount": 0},
        {"type": "eligibility", "resource": "subsidy", "where": {"region": "east"}},
    ]
    request = parse_request(data, resolve_fixture=_resolver)
    assert [p.id for p in request.partners] == ["f1", "f2"]
    assert set(request.partners[0].curves) == {"subsidy"}  # 'eco' is not in this request
    assert request.partners[0].bounds == {}


def test_unknown_fixture_is_named() -> None:
    data = minimal()
    data["partners"] = {"fixture": "nope"}
    assert problems(data, resolve_fixture=_resolver) == {
        "partners.fixture": ["unknown fixture 'nope'"]
    }


def test_fixture_reference_needs_a_resolver_and_a_name() -> None:
    data = minimal()
    data["partners"] = {"fixture": "programme"}
    assert "partners.fixture" in problems(data)
    data["partners"] = {"fixture": "programme", "seed": 3}
    assert problems(data, resolve_fixture=_resolver) == {"partners.seed": ["Unknown field."]}
    data["partners"] = {}
    assert "partners.fixture" in problems(data, resolve_fixture=_resolver)


def test_references_into_fixture_partners_are_checked() -> None:
    data = minimal()
    data["partners"] = {"fixture": "programme"}
    data["constraints"] = [{"type": "pin", "partner_id": "p1", "resource": "subsidy", "amount": 1}]
    assert problems(data, resolve_fixture=_resolver) == {
        "constraints.0.partner_id": ["unknown partner id 'p1'"]
    }


def test_supplied_partners_replace_the_request_partners() -> None:
    data = minimal()
    del data["partners"]
    request = parse_request(data, partners=_fixture_partners())
    assert [p.id for p in request.partners] == ["f1", "f2"]
    assert "eco" not in request.partners[0].curves


def test_supplied_or_fixture_partners_must_not_be_empty() -> None:
    data = minimal()
    del data["partners"]
    assert problems(data, partners=()) == {"partners": ["needs a partner"]}
    data["partners"] = {"fixture": "empty"}
    assert problems(data, resolve_fixture=lambda name: ()) == {"partners": ["needs a partner"]}


def test_supplied_partners_conflict_with_inline_partners() -> None:
    found = problems(minimal(), partners=_fixture_partners())
    assert list(found) == ["partners"]
    assert "supplied separately" in found["partners"][0]


def test_supplied_partners_are_checked_for_duplicates_and_package_resources() -> None:
    data = minimal()
    del data["partners"]
    partners = (
        Partner("f1", 1e8),
        Partner("f1", 2e8),
        Partner("f3", 3e8, packages=(Package("gold", {"cash": 1.0}, 5.0),)),
    )
    found = problems(data, partners=partners)
    assert found["partners"] == [
        "duplicate partner id 'f1'",
        "partner 'f3': package 'gold': unknown resource 'cash' (known: subsidy)",
    ]


# --- plans -----------------------------------------------------------------------------


def _plan(best_bound: float | None = 3.0) -> Plan:
    return Plan(
        rank=1,
        label="best",
        objective=ObjectiveReport("max_attainment", 2.0, 4.5e8, 3.2e9, 6e8),
        tiers=[TierReport("100M", 1e8, 3, 2, 1), TierReport("1B", 1e9, 1, 1, 0)],
        resources=[
            ResourceReport("subsidy", 5e8, 4.5e8, 0.9),
            ResourceReport("traffic", None, 1e9, None),
        ],
        solver=SolverReport("highs", SolveStatus.OPTIMAL, 0.0, best_bound, 1.25),
        allocations=[
            Allocation("p1", {"subsidy": 4.5e8, "traffic": 0.0}, 8e8, 1.2e9, "1B", 4e8),
            Allocation("p3", {"subsidy": 0.0, "traffic": 1e9}, 9e7, 1.1e8, "100M", 2e7, "gold"),
        ],
        binding_constraints=["budget subsidy"],
    )


def test_plan_to_dict_shape() -> None:
    dumped = plan_to_dict(_plan())
    assert json.loads(json.dumps(dumped)) == dumped
    assert set(dumped) == {
        "rank",
        "label",
        "objective",
        "tiers",
        "resources",
        "solver",
        "allocations",
        "binding_constraints",
        "explanation",
    }
    assert dumped["explanation"] is None  # filled in by service.explain after a solve
    assert dumped["objective"] == {
        "mode": "max_attainment",
        "weighted_shortfall": 2.0,
        "total_cost": 4.5e8,
        "total_projected_gmv": 3.2e9,
        "incremental_gmv": 6e8,
    }
    assert dumped["tiers"][0] == {
        "name": "100M",
        "min_gmv": 1e8,
        "target": 3,
        "achieved": 2,
        "shortfall": 1,
    }
    assert dumped["resources"][1] == {
        "name": "traffic",
        "budget": None,
        "allocated": 1e9,
        "utilization": None,
    }
    assert dumped["solver"] == {
        "engine": "highs",
        "status": "optimal",
        "mip_gap": 0.0,
        "best_bound": 3.0,
        "seconds": 1.25,
        "shortfall_proven": None,
        "shortfall_bound": None,
    }
    assert dumped["allocations"][1] == {
        "partner_id": "p3",
        "amounts": {"subsidy": 0.0, "traffic": 1e9},
        "baseline_gmv": 9e7,
        "projected_gmv": 1.1e8,
        "tier": "100M",
        "incremental_gmv": 2e7,
        "package": "gold",
    }
    assert dumped["allocations"][0]["package"] is None
    assert dumped["binding_constraints"] == ["budget subsidy"]


def test_non_finite_plan_figures_dump_as_null() -> None:
    dumped = plan_to_dict(_plan(best_bound=math.inf))
    assert dumped["solver"]["best_bound"] is None
    assert "Infinity" not in json.dumps(dumped)
    dumped = plan_to_dict(_plan(best_bound=math.nan))
    assert dumped["solver"]["best_bound"] is None


def test_plans_round_trip_and_list() -> None:
    plans = [_plan(), _plan(best_bound=None)]
    listed = plans_to_list(plans)
    assert [plan_from_dict(item) for item in listed] == plans


def test_stored_plan_must_be_well_formed() -> None:
    dumped = plan_to_dict(_plan())
    dumped["solver"]["status"] = "great"
    with pytest.raises(RequestValidationError) as caught:
        plan_from_dict(dumped)
    assert "solver.status" in caught.value.flat()


def test_schemas_for_openapi_documentation() -> None:
    assert set(PlanSchema().fields) == {
        "rank",
        "label",
        "objective",
        "tiers",
        "resources",
        "solver",
        "allocations",
        "binding_constraints",
        "uncertainty",
        "explanation",
    }
    assert {"name", "objective", "resources", "tiers", "partners", "constraints", "options"} == set(
        AllocationRequestSchema().fields
    )


def test_schema_instances_do_not_share_supplied_partners() -> None:
    data = minimal()
    first = parse_request(copy.deepcopy(data))
    del data["partners"]
    second = parse_request(data, partners=_fixture_partners())
    third = parse_request(minimal())
    assert [p.id for p in first.partners] == [p.id for p in third.partners] == ["p1"]
    assert [p.id for p in second.partners] == ["f1", "f2"]
