"""Partners / packages / plan CSV ⇄ domain objects.

Reading is vectorised over rows (pandas parses, numpy checks whole columns), so a
million-row partners file loads in seconds; only the domain objects are built row by row.
Problems are collected, not raised one at a time, and reported by
`RequestValidationError` with one key per cell: ``"partners.csv row 7, column
subsidy_scale"``. Rows are numbered as a spreadsheet shows them: the header is row 1, so
the first data row is row 2. At most `MAX_REPORTED` problems are listed, then a
``"<file>": ["... and N more problems"]`` entry.

Parsing rules: cells are UTF-8 text; an empty cell means "not given" (so "NA" is a
region, not a missing value); partner ids and names are text, stripped of surrounding
spaces. An attribute column is typed as a whole: numbers when every non-empty cell is a
number (whole numbers become ints), true/false when every cell is one, text otherwise.

Modules: `cells` (shared reading and problem reporting), `partners`, `packages` (readers)
and `writers`. Everything other code uses is re-exported here.
"""

from models.csvio.cells import MAX_REPORTED, BoolArray, IntArray, Source
from models.csvio.packages import PACKAGE_COLUMNS, read_packages_csv
from models.csvio.partners import PARTNER_COLUMNS, RESOURCE_SUFFIXES, read_partners_csv
from models.csvio.writers import (
    plan_csv_rows,
    plan_to_csv_text,
    write_packages_csv,
    write_partners_csv,
    write_plan_csv,
)

__all__ = [
    "MAX_REPORTED",
    "PACKAGE_COLUMNS",
    "PARTNER_COLUMNS",
    "RESOURCE_SUFFIXES",
    "BoolArray",
    "IntArray",
    "Source",
    "plan_csv_rows",
    "plan_to_csv_text",
    "read_packages_csv",
    "read_partners_csv",
    "write_packages_csv",
    "write_partners_csv",
    "write_plan_csv",
]
