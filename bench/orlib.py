"""External validation on OR-Library knapsacks: MKP (mknap1, mknap2, mknapcb1..9) and
multiple-choice MKP (Khan, Hifi) instances turned into Windmaker requests and solved
through the public entry point `optimizer.solve`.

Mapping (packages: docs/reference.md): an MKP item becomes a partner with baseline GMV 0 and one
package whose amounts are the item's consumptions and whose uplift is its profit; each
knapsack constraint becomes a resource whose budget is the capacity; the objective is
`max_gmv`, so the plan's total projected GMV is the knapsack value. An MMKP group becomes a
partner with one package per option, all held to exactly one by a `one_package` rule.

Run `python -m bench.orlib --help`. Data: the OR-Library files (mknap1, mknap2, mknapcb*,
the Khan and Hifi MMKP sets) in `$WINDMAKER_ORLIB_DIR` or `--data-dir`; by default the
copy this project's CI keeps beside the repository (its SOURCES.md describes each format).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.check import check_plan
from models.plan import Plan
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
from optimizer import solve

DATA_ENV = "WINDMAKER_ORLIB_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
MKNAPCB_FILES = tuple(f"mknapcb{k}" for k in range(1, 10))
SETS = ("mknap1", "mknap2", *MKNAPCB_FILES, "mmkp-khan", "mmkp-hifi")
# A value this close (relative) to a reference counts as equal: mknap1 problem 2 has
# fractional profits, and CSV references carry about 6 significant digits at worst.
MATCH_REL_TOL = 1e-9
# Requests up to this many packages also go through the JSON wire format before solving.
ROUND_TRIP_MAX_PACKAGES = 20_000
# A best bound within this (relative) of the value certifies it optimal.
PROOF_REL_TOL = 1e-9

FloatArray = NDArray[np.float64]


class OrlibDataError(Exception):
    """A benchmark file that does not have the documented layout (message names the file)."""


def data_dir() -> Path:
    """Where the benchmark files are: `$WINDMAKER_ORLIB_DIR`, else beside the repository."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared" / "benchmarks" / "orlib"


# ---------------------------------------------------------------------------------------
# Instances


@dataclass(frozen=True)
class MkpInstance:
    """0-1 multidimensional knapsack: max p·x s.t. W x <= b, x binary."""

    id: str  # as in best_known.csv, e.g. "mknapcb1/5.100-00"
    profits: FloatArray  # (n,)
    weights: FloatArray  # (m, n)
    capacities: FloatArray  # (m,)
    stated_optimum: float | None = None  # the optimum written in the data file, if any

    @property
    def n(self) -> int:
        return len(self.profits)

    @property
    def m(self) -> int:
        return len(self.capacities)


@dataclass(frozen=True)
class MmkpInstance:
    """Multiple-choice MKP: exactly one option per group, Σ weights <= capacities."""

    id: str  # e.g. "khan/I01"
    values: FloatArray  # (groups, options)
    weights: FloatArray  # (groups, options, m)
    capacities: FloatArray  # (m,)
    # Khan's files end with the exact solution for I01-I06: 0-based option per group.
    stated_choice: tuple[int, ...] | None = None
    stated_optimum: float | None = None

    @property
    def n(self) -> int:
        return self.values.shape[0]

    @property
    def options(self) -> int:
        return self.values.shape[1]

    @property
    def m(self) -> int:
        return len(self.capacities)


Instance = MkpInstance | MmkpInstance


class _Numbers:
    """Sequential reader of whitespace-separated numbers, with errors naming the file."""

    def __init__(self, text: str, source: str) -> None:
        self.tokens = text.split()
        self.position = 0
        self.source = source

    def take(self, count: int, what: str) -> FloatArray:
        chunk = self.tokens[self.position : self.position + count]
        if len(chunk) < count:
            raise OrlibDataError(
                f"{self.source}: expected {count} numbers for {what}, "
                f"found {len(chunk)} before the end of the data"
            )
        try:
            values = np.array([float(token) for token in chunk], dtype=np.float64)
        except ValueError as error:
            raise OrlibDataError(
                f"{self.source}: {what}: not a number ({error}) near token {self.position + 1}"
            ) from None
        self.position += count
        return values

    def count(self, what: str) -> int:
        value = float(self.take(1, what)[0])
        if value < 0 or value != int(value):
            raise OrlibDataError(f"{self.source}: {what} must be a whole number, got {value:g}")
        return int(value)

    @property
    def left(self) -> int:
        return len(self.tokens) - self.position


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise OrlibDataError(f"cannot read {path}: {error.strerror}") from None


def read_orlib_mkp(path: Path) -> list[MkpInstance]:
    """An OR-Library MKP file (mknap1.txt, mknapcbK.txt): `K`, then per problem
    `n m opt`, n profits, an m×n consumption matrix row by row, m capacities."""
    stem = path.stem
    numbers = _Numbers(_read_text(path), str(path))
    problems = numbers.count("the number of problems")
    instances = []
    for index in range(problems):
        what = f"problem {index + 1}"
        n = numbers.count(f"{what}: n (items)")
        m = numbers.count(f"{what}: m (constraints)")
        optimum = float(numbers.take(1, f"{what}: optimum")[0])
        profits = numbers.take(n, f"{what}: profits")
        weights = numbers.take(n * m, f"{what}: consumption matrix").reshape(m, n)
        capacities = numbers.take(m, f"{what}: capacities")
        # Chu-Beasley names problems m.n-xx (0-based); mknap1 numbers them from 1.
        name = f"{m}.{n}-{index:02d}" if stem.startswith("mknapcb") else str(index + 1)
        instances.append(
            MkpInstance(f"{stem}/{name}", profits, weights, capacities, optimum or None)
        )
    if numbers.left:
        raise OrlibDataError(f"{path}: {numbers.left} numbers left after {problems} problems")
    return instances


_MKNAP2_PROBLEM = re.compile(r"^\s*problem\s+(\S+)\.DAT\s*$", re.MULTILINE | re.IGNORECASE)


def read_mknap2(path: Path) -> list[MkpInstance]:
    """mknap2.txt: commented header, then blocks `problem NAME.DAT` between `+` rulers,
    each `constraints items`, profits, capacities, the matrix row by row, the optimum."""
    text = _read_text(path)
    heads = list(_MKNAP2_PROBLEM.finditer(text))
    if not heads:
        raise OrlibDataError(f"{path}: no 'problem NAME.DAT' lines")
    instances = []
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : following.start() if following else len(text)]
        name = head.group(1)
        numbers = _Numbers(body.replace("+", " "), f"{path} problem {name}")
        m = numbers.count("number of constraints")
        n = numbers.count("number of items")
        profits = numbers.take(n, "profits")
        capacities = numbers.take(m, "capacities")
        weights = numbers.take(m * n, "consumption matrix").reshape(m, n)
        optimum = float(numbers.take(1, "known optimum")[0])
        if numbers.left:
            raise OrlibDataError(f"{numbers.source}: {numbers.left} unexpected numbers at the end")
        instances.append(MkpInstance(f"mknap2/{name}", profits, weights, capacities, optimum))
    return instances


_KHAN_EXACT = re.compile(r"Solutions\s+by\s+Exact\s+Solution", re.IGNORECASE)


def read_khan(path: Path) -> MmkpInstance:
    """A Khan et al. MMKP file: `n l m`, m capacities, then per group its number and l
    lines `value w_1..w_m`; a trailer of reference solutions follows the data."""
    text = _read_text(path)
    data, _, _ = text.partition("Solutions")
    numbers = _Numbers(data, str(path))
    groups = numbers.count("n (groups)")
    options = numbers.count("l (options per group)")
    m = numbers.count("m (resources)")
    capacities = numbers.take(m, "capacities")
    rows = np.empty((groups, options, m + 1))
    for g in range(groups):
        label = numbers.count(f"group {g + 1} header")
        if label != g + 1:
            raise OrlibDataError(f"{path}: group {g + 1} is labelled {label}")
        rows[g] = numbers.take(options * (m + 1), f"group {g + 1} options").reshape(options, m + 1)
    if numbers.left:
        raise OrlibDataError(f"{path}: {numbers.left} unexpected numbers before the trailer")

    choice: tuple[int, ...] | None = None
    optimum: float | None = None
    exact = _KHAN_EXACT.search(text)
    if exact:
        trailer = _Numbers(text[exact.end() :], f"{path} exact-solution trailer")
        choice = tuple(int(k) for k in trailer.take(groups, "option per group"))
        optimum = float(trailer.take(1, "solution value")[0])
    return MmkpInstance(
        f"khan/{path.name}", rows[:, :, 0], rows[:, :, 1:], capacities, choice, optimum
    )


def read_hifi(path: Path) -> MmkpInstance:
    """A Hifi MMKP file: `n-l-m`, the m capacities, then n·l lines `v-w_1-...-w_m`,
    grouped by group; fields are separated by '-' (no negative numbers occur)."""
    numbers = _Numbers(_read_text(path).replace("-", " "), str(path))
    groups = numbers.count("n (groups)")
    options = numbers.count("l (options per group)")
    m = numbers.count("m (resources)")
    capacities = numbers.take(m, "capacities")
    rows = numbers.take(groups * options * (m + 1), "options").reshape(groups, options, m + 1)
    if numbers.left:
        raise OrlibDataError(f"{path}: {numbers.left} unexpected numbers at the end")
    return MmkpInstance(f"hifi/{path.stem}", rows[:, :, 0], rows[:, :, 1:], capacities)


def load_mkp(name: str, root: Path | None = None) -> list[MkpInstance]:
    """Every instance of an MKP set (mknap1, mknap2, mknapcb1..9), in file order."""
    root = root or data_dir()
    if name in ("mknap1", *MKNAPCB_FILES):
        return read_orlib_mkp(root / f"{name}.txt")
    if name == "mknap2":
        return read_mknap2(root / "mknap2.txt")
    raise OrlibDataError(f"unknown MKP set {name!r}; known: mknap1, mknap2, mknapcb1..9")


def load_mmkp(name: str, root: Path | None = None) -> list[MmkpInstance]:
    """Every instance of an MMKP set (mmkp-khan, mmkp-hifi), in numbering order."""
    root = root or data_dir()
    if name == "mmkp-khan":
        return [read_khan(root / "mmkp" / "khan" / f"I{k:02d}") for k in range(1, 14)]
    if name == "mmkp-hifi":
        return [read_hifi(root / "mmkp" / "hifi" / f"INST{k:02d}.txt") for k in range(1, 21)]
    raise OrlibDataError(f"unknown MMKP set {name!r}; known: mmkp-khan, mmkp-hifi")


def load_set(name: str, root: Path | None = None) -> list[Instance]:
    """Every instance of a set named in `SETS`, in file order."""
    if name not in SETS:
        raise OrlibDataError(f"unknown set {name!r}; known: {', '.join(SETS)}")
    if name.startswith("mmkp"):
        return list(load_mmkp(name, root))
    return list(load_mkp(name, root))


@dataclass(frozen=True)
class Reference:
    best_known: float
    is_optimal: bool
    upper_bound: float | None


def read_references(root: Path | None = None) -> dict[str, Reference]:
    """best_known.csv joined with bounds.csv, by instance id."""
    root = root or data_dir()
    bounds: dict[str, float] = {}
    for row in _csv_rows(root / "bounds.csv", ("instance_id", "upper_bound")):
        bounds[row["instance_id"]] = _csv_float(row, "upper_bound", root / "bounds.csv")
    references = {}
    path = root / "best_known.csv"
    for row in _csv_rows(path, ("instance_id", "best_known", "is_optimal")):
        flag = row["is_optimal"].strip().lower()
        if flag not in ("true", "false"):
            raise OrlibDataError(f"{path}: {row['instance_id']}: is_optimal must be true/false")
        references[row["instance_id"]] = Reference(
            _csv_float(row, "best_known", path), flag == "true", bounds.get(row["instance_id"])
        )
    return references


def _csv_rows(path: Path, required: Sequence[str]) -> Iterator[dict[str, str]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise OrlibDataError(f"{path}: missing column(s) {', '.join(missing)}")
        yield from reader


def _csv_float(row: dict[str, str], column: str, path: Path) -> float:
    try:
        return float(row[column])
    except ValueError:
        raise OrlibDataError(
            f"{path}: {row.get('instance_id')}: column {column} is not a number: {row[column]!r}"
        ) from None


# ---------------------------------------------------------------------------------------
# Requests


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


# ---------------------------------------------------------------------------------------
# Independent evaluation of a plan against the instance data (not the request)


def plan_choice(instance: Instance, plan: Plan) -> list[int]:
    """Per item (MKP: 1 taken, 0 not) or group (MMKP: option index, -1 none), from the
    plan's allocations."""
    chosen = {a.partner_id: a.package for a in plan.allocations if a.package is not None}
    if isinstance(instance, MkpInstance):
        return [int(chosen.get(f"item{j + 1}") == "take") for j in range(instance.n)]
    return [
        int(package.removeprefix("option")) if package is not None else -1
        for package in (chosen.get(f"group{g + 1}") for g in range(instance.n))
    ]


def choice_value(instance: Instance, choice: Sequence[int]) -> tuple[float, list[str]]:
    """The knapsack value of a choice (as `plan_choice` returns it), computed from the
    instance data alone, and what is wrong with it (capacity overruns, groups without
    exactly one option)."""
    problems: list[str] = []
    used = np.zeros(instance.m)
    value = 0.0
    if isinstance(instance, MkpInstance):
        taken = np.asarray(choice, dtype=bool)
        value = float(instance.profits[taken].sum())
        used = instance.weights[:, taken].sum(axis=1)
    else:
        for g, k in enumerate(choice):
            if not 0 <= k < instance.options:
                problems.append(f"group{g + 1} has no option")
                continue
            value += float(instance.values[g, k])
            used += instance.weights[g, k]
    for i in np.nonzero(used > instance.capacities + 1e-9)[0]:
        problems.append(f"c{i + 1} uses {used[i]:g} > capacity {instance.capacities[i]:g}")
    return value, problems


# ---------------------------------------------------------------------------------------
# Running


@dataclass
class RunResult:
    instance: str
    n: int
    m: int
    engine: str
    best_known: float | None
    known_optimal: bool
    upper_bound: float | None
    ours: float | None = None
    status: str = "error"
    mip_gap: float | None = None
    best_bound: float | None = None
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def gap(self) -> float | None:
        """(best known − ours) / best known: negative when we beat the reference."""
        if self.ours is None or not self.best_known:
            return None
        return (self.best_known - self.ours) / abs(self.best_known)

    @property
    def matched(self) -> bool:
        """Reached the best-known value (or beat it), with a plan that checks clean."""
        gap = self.gap
        return gap is not None and gap <= MATCH_REL_TOL and not self.violations

    @property
    def proven(self) -> bool:
        """The optimizer itself reports the plan optimal (status `optimal`)."""
        return self.status == "optimal"

    @property
    def certified(self) -> bool:
        """The reported best bound equals our value (up to float noise), whatever the status."""
        if self.ours is None or self.best_bound is None:
            return False
        return self.best_bound - self.ours <= PROOF_REL_TOL * max(1.0, abs(self.ours))


def run_instance(
    instance: Instance,
    *,
    engine: str = "highs",
    time_limit_s: float = 60.0,
    mip_gap: float = 0.0,
    references: dict[str, Reference] | None = None,
    round_trip: bool | None = None,
) -> RunResult:
    """Solve one instance through `optimizer.solve` and check the result three ways:
    `models.check.check_plan`, the plan's own GMV against the instance value recomputed
    from its package choices, and that value against the references."""
    reference = (references or {}).get(instance.id)
    best_known = reference.best_known if reference else None
    # The data file's own optimum is exact; best_known.csv prints some with 6 digits.
    if instance.stated_optimum is not None:
        best_known = instance.stated_optimum
    result = RunResult(
        instance=instance.id,
        n=instance.n,
        m=instance.m,
        engine=engine,
        best_known=best_known,
        known_optimal=reference.is_optimal if reference else instance.stated_optimum is not None,
        upper_bound=reference.upper_bound if reference else None,
    )
    options = Options(time_limit_s=time_limit_s, mip_gap=mip_gap, plans=1, engine=engine)
    request = to_request(instance, options)
    packages = sum(len(p.packages) for p in request.partners)
    if round_trip if round_trip is not None else packages <= ROUND_TRIP_MAX_PACKAGES:
        request = through_json(request)
    started = time.perf_counter()
    try:
        plans = solve(request)
    except Exception as error:  # a benchmark row reports the failure and the run goes on
        result.seconds = time.perf_counter() - started
        result.error = f"{type(error).__name__}: {error}"
        return result
    result.seconds = time.perf_counter() - started
    plan = plans[0]
    if plan.solver.engine != engine:  # `auto` names what it picked
        result.engine = f"{engine}→{plan.solver.engine}"
    result.status = str(plan.solver.status)
    result.mip_gap = plan.solver.mip_gap
    result.best_bound = plan.solver.best_bound
    result.violations = check_plan(request, plan)
    if plan.solver.status in ("optimal", "feasible", "time_limit"):
        value, problems = choice_value(instance, plan_choice(instance, plan))
        result.ours = value
        result.violations += problems
        if not math.isclose(value, plan.objective.total_projected_gmv, rel_tol=1e-9, abs_tol=1e-9):
            result.violations.append(
                f"plan reports GMV {plan.objective.total_projected_gmv:g}, choices are worth "
                f"{value:g}"
            )
    return result


# ---------------------------------------------------------------------------------------
# Reporting

HEADER = (
    "| instance | n | m | best known | ours | gap to best known | proven optimal? "
    "| engine | seconds | check |"
)
RULE = "|---|---:|---:|---:|---:|---:|---|---|---:|---|"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value == round(value) else f"{value:.2f}"


def table_row(result: RunResult) -> str:
    gap = "—" if result.gap is None else f"{100 * result.gap:+.3f}%"
    known = _number(result.best_known) + (" (opt)" if result.known_optimal else "")
    if result.error:
        proven, check = "error", result.error.replace("|", "/")[:120]
    else:
        if result.proven:
            proven = "yes"
        elif result.certified:
            # Happens when the solver's bound exceeds the value by float noise only.
            proven = f"bound = value, but status {result.status}"
        else:
            proven = f"no ({result.status}" + (
                f", gap {100 * result.mip_gap:.3f}%)" if result.mip_gap is not None else ")"
            )
        check = "ok" if not result.violations else "; ".join(result.violations)[:120]
    return (
        f"| {result.instance} | {result.n} | {result.m} | {known} | {_number(result.ours)} "
        f"| {gap} | {proven} | {result.engine} | {result.seconds:.2f} | {check} |"
    )


def summary(results: Sequence[RunResult]) -> list[str]:
    lines = []
    for engine in sorted({r.engine for r in results}):
        rows = [r for r in results if r.engine == engine]
        seconds = [r.seconds for r in rows]
        lines.append(
            f"- {engine}: {len(rows)} instances; matched or beat best known "
            f"{sum(r.matched for r in rows)}; reported optimal {sum(r.proven for r in rows)}; "
            f"bound = value {sum(r.certified for r in rows)}; "
            f"check failures {sum(bool(r.violations) for r in rows)}; errors "
            f"{sum(r.error is not None for r in rows)}; seconds median "
            f"{statistics.median(seconds):.2f}, max {max(seconds):.2f}, total {sum(seconds):.1f}"
        )
    return lines


def parse_selection(text: str) -> list[int]:
    """'0-2,10' -> [0, 1, 2, 10] (0-based positions in the set's file order)."""
    picked: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise argparse.ArgumentTypeError(
                f"--instances: {part!r} is not an index or a range like 0-4"
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise argparse.ArgumentTypeError(f"--instances: range {part!r} runs backwards")
        picked.extend(range(low, high + 1))
    return picked


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.orlib",
        description="Solve OR-Library MKP / MMKP instances with Windmaker and compare with "
        "the best known values.",
        epilog="Exit status: 0 when every plan checks clean, 1 when a plan fails a check or "
        "a solve raises, 2 on bad arguments or unreadable data.",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        choices=SETS,
        help="instance set (repeatable; default mknap1)",
    )
    parser.add_argument(
        "--instances",
        type=parse_selection,
        default=None,
        help="0-based positions within each set, e.g. 0-4,20 (default: all)",
    )
    parser.add_argument(
        "--engine",
        dest="engines",
        action="append",
        help="engine: highs, cpsat, cbc, auto, ... (repeatable; default highs)",
    )
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve")
    parser.add_argument(
        "--mip-gap",
        type=float,
        default=0.0,
        help="relative gap the optimizer may stop at (0: prove optimality)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="append the table, as a Markdown section, to this file",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"benchmark folder (default ${DATA_ENV} or the CI copy beside the repository)",
    )
    args = parser.parse_args(argv)
    if args.time_limit <= 0:
        parser.error("--time-limit must be positive")
    if not 0 <= args.mip_gap < 1:
        parser.error("--mip-gap must be >= 0 and < 1")
    return args


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = _arguments(argv)
    root: Path = args.data_dir or data_dir()
    if not root.is_dir():
        out(f"error: benchmark data not found at {root} (set {DATA_ENV} or --data-dir)")
        return 2
    try:
        references = read_references(root)
        chosen = [(name, load_set(name, root)) for name in (args.sets or ["mknap1"])]
    except (OrlibDataError, OSError) as error:
        out(f"error: {error}")
        return 2

    results: list[RunResult] = []
    out(HEADER)
    out(RULE)
    for _, instances in chosen:
        picked = instances
        if args.instances is not None:
            picked = [instances[k] for k in args.instances if k < len(instances)]
        for instance in picked:
            for engine in args.engines or ["highs"]:
                result = run_instance(
                    instance,
                    engine=engine,
                    time_limit_s=args.time_limit,
                    mip_gap=args.mip_gap,
                    references=references,
                )
                results.append(result)
                out(table_row(result))
                sys.stdout.flush()
    lines = summary(results) if results else ["- no instances selected"]
    out("")
    for line in lines:
        out(line)

    if args.out:
        command = "python -m bench.orlib " + shlex.join(sys.argv[1:] if argv is None else argv)
        section = [
            "",
            f"### `{command}`",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; "
            f"time limit {args.time_limit:g} s, mip_gap {args.mip_gap:g}.",
            "",
            HEADER,
            RULE,
            *(table_row(r) for r in results),
            "",
            *lines,
            "",
        ]
        with open(args.out, "a") as handle:
            handle.write("\n".join(section))
    failed = any(r.violations or r.error for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
