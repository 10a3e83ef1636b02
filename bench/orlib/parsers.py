"""Parsers for the OR-Library MKP / MMKP files and the reference CSVs (errors name the file)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bench.orlib.data import (
    MKNAPCB_FILES,
    SETS,
    FloatArray,
    Instance,
    MkpInstance,
    MmkpInstance,
    OrlibDataError,
    Reference,
    data_dir,
)


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
