"""The `python -m bench.orlib` command line."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.orlib.data import DATA_ENV, SETS, OrlibDataError, data_dir
from bench.orlib.parsers import load_set, read_references
from bench.orlib.report import HEADER, RULE, summary, table_row
from bench.orlib.runner import RunResult, run_instance


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
