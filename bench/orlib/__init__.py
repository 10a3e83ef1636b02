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

from bench.orlib.cli import main, parse_selection
from bench.orlib.data import (
    DATA_ENV,
    MKNAPCB_FILES,
    REPO_ROOT,
    SETS,
    FloatArray,
    Instance,
    MkpInstance,
    MmkpInstance,
    OrlibDataError,
    Reference,
    data_dir,
)
from bench.orlib.mapping import mkp_request, mmkp_request, through_json, to_request
from bench.orlib.parsers import (
    load_mkp,
    load_mmkp,
    load_set,
    read_hifi,
    read_khan,
    read_mknap2,
    read_orlib_mkp,
    read_references,
)
from bench.orlib.report import HEADER, RULE, summary, table_row
from bench.orlib.runner import (
    MATCH_REL_TOL,
    PROOF_REL_TOL,
    ROUND_TRIP_MAX_PACKAGES,
    RunResult,
    choice_value,
    plan_choice,
    run_instance,
)

__all__ = [
    "DATA_ENV",
    "HEADER",
    "MATCH_REL_TOL",
    "MKNAPCB_FILES",
    "PROOF_REL_TOL",
    "REPO_ROOT",
    "ROUND_TRIP_MAX_PACKAGES",
    "RULE",
    "SETS",
    "FloatArray",
    "Instance",
    "MkpInstance",
    "MmkpInstance",
    "OrlibDataError",
    "Reference",
    "RunResult",
    "choice_value",
    "data_dir",
    "load_mkp",
    "load_mmkp",
    "load_set",
    "main",
    "mkp_request",
    "mmkp_request",
    "parse_selection",
    "plan_choice",
    "read_hifi",
    "read_khan",
    "read_mknap2",
    "read_orlib_mkp",
    "read_references",
    "run_instance",
    "summary",
    "table_row",
    "through_json",
    "to_request",
]
