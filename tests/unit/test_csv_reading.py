"""CSV files as planners save them: encodings, delimiters, the column cap, and attributes
that `where` compares by order (which must be numbers)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from models.csvio import CsvFormat, read_packages_table, read_partners_table
from models.csvio.text import detect_delimiter
from models.schemas import RequestValidationError, parse_request
from service.solving import parse_upload

ROWS = [
    ["partner_id", "name", "baseline_gmv", "region", "supply_chain", "fund_curve", "fund_roi"],
    ["p1", "东方直播", "50000000", "华东", "60", "linear", "2"],
    ["p2", "西部优选", "60000000", "华西", "40.5", "linear", "1.5"],
]


def text(rows: list[list[str]] = ROWS, delimiter: str = ",") -> str:
    return "".join(delimiter.join(row) + "\r\n" for row in rows)


def request(*constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resources": [{"name": "fund", "budget": 1e7}],
        "tiers": [{"name": "big", "min_gmv": 1e8, "target": 1}],
        "constraints": list(constraints),
        **extra,
    }


def eligibility(where: dict[str, Any]) -> dict[str, Any]:
    return {"type": "eligibility", "resource": "fund", "where": where}


def errors_of(data: dict[str, Any], csv_bytes: bytes | None = None) -> dict[str, list[str]]:
    with pytest.raises(RequestValidationError) as caught:
        parse_upload(data, partners_csv=io.BytesIO(csv_bytes) if csv_bytes is not None else None)
    return caught.value.flat()


# --- encodings and delimiters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "encoding"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8 with BOM"),
        ("gbk", "GB18030"),
        ("gb18030", "GB18030"),
    ],
)
@pytest.mark.parametrize(("delimiter", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_files_as_spreadsheets_save_them(
    tmp_path: Path, codec: str, encoding: str, delimiter: str, name: str
) -> None:
    path = tmp_path / "partners.csv"
    path.write_bytes(text(delimiter=delimiter).encode(codec))
    partners, detected = read_partners_table(path)
    assert detected == CsvFormat("partners.csv", encoding, delimiter, rows=2)
    assert detected.to_dict() == {"encoding": encoding, "delimiter": name, "rows": 2}
    assert [p.name for p in partners] == ["东方直播", "西部优选"]
    assert partners[0].attributes == {"region": "华东", "supply_chain": 60.0}
    assert partners[1].curves["fund"].roi == 1.5


def test_the_summary_line() -> None:
    detected = CsvFormat("partners.csv", "GB18030", ";", rows=300)
    assert detected.summary() == "partners.csv: GB18030, semicolon-separated, 300 rows"
    assert (
        CsvFormat("p.csv", "UTF-8", "\t", rows=1).summary() == "p.csv: UTF-8, tab-separated, 1 row"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("partner_id;baseline_gmv;a,b", ";"),  # the most frequent wins
        ('partner_id;"a,b,c";baseline_gmv', ";"),  # quoted commas are not delimiters
        ("partner_id\tbaseline_gmv", "\t"),
        ("partner_id", ","),  # one column: nothing to detect
        ("a,b;c", ","),  # a tie: comma
    ],
)
def test_delimiter_detection(header: str, expected: str) -> None:
    assert detect_delimiter(header) == expected


def test_semicolons_inside_a_comma_file_stay_in_their_cell() -> None:
    data = b"partner_id,baseline_gmv,fund_curve,fund_points\np1,5e7,points,0:0;100:200;300:250\n"
    partners, detected = read_partners_table(io.BytesIO(data))
    assert detected.delimiter == ","
    assert partners[0].curves["fund"].ys == (0.0, 200.0, 250.0)


def test_a_packages_file_is_detected_on_its_own() -> None:
    partners, _ = read_partners_table(
        io.BytesIO(text([ROWS[0][:3], ["p1", "A", "5e7"]]).encode("utf-8"))
    )
    packages = "partner_id\tpackage\tfund\tuplift\r\np1\t入门\t100\t5000\r\n".encode("gbk")
    attached, detected = read_packages_table(io.BytesIO(packages), partners)
    assert (detected.encoding, detected.delimiter, detected.rows) == ("GB18030", "\t", 1)
    assert attached[0].packages[0].name == "入门"


def test_undecodable_bytes_name_the_file_with_a_hint() -> None:
    data = "partner_id,baseline_gmv\np1,1\np2,2\ncafé,3\n".encode("latin-1")
    found = errors_of(request(), data)
    (message,) = found["partners.csv"]
    assert "byte 0xe9 on line 4" in message
    assert "save it as UTF-8" in message and "GB18030" in message


def test_a_detected_but_unsplittable_file_still_names_its_columns() -> None:
    # A semicolon file whose header has no semicolons is read as one column.
    found = errors_of(request(), b"partner_id baseline_gmv\np1 1\n")
    assert "partners.csv column partner_id" in found


# --- the column cap ----------------------------------------------------------------------


def test_a_too_wide_header_is_refused_before_any_row_is_parsed() -> None:
    header = ",".join(["partner_id", "baseline_gmv", *(f"a{i}" for i in range(1000))])
    broken_rows = '"unterminated\n' * 3  # never reached: the header decides
    with pytest.raises(RequestValidationError) as caught:
        read_partners_table(io.BytesIO(f"{header}\n{broken_rows}".encode()))
    assert caught.value.flat() == {
        "partners.csv": ["has 1,002 columns; at most 1,000 are read (WINDMAKER_MAX_CSV_COLUMNS)"]
    }


def test_the_column_cap_is_a_parameter() -> None:
    data = text().encode()
    with pytest.raises(RequestValidationError, match="has 7 columns; at most 6"):
        read_partners_table(io.BytesIO(data), max_columns=6)
    assert read_partners_table(io.BytesIO(data), max_columns=7)[1].rows == 2
    assert "has 7 columns" in str(errors_of_upload(data, max_csv_columns=5))


def errors_of_upload(data: bytes, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(RequestValidationError) as caught:
        parse_upload(request(), partners_csv=io.BytesIO(data), **kwargs)
    return caught.value.flat()


# --- attributes compared by order must be numbers ----------------------------------------


def with_supply_chain(*values: str) -> bytes:
    rows = [ROWS[0]] + [
        [f"p{i}", "X", "5e7", "east", value, "linear", "1"] for i, value in enumerate(values)
    ]
    return text(rows).encode()


@pytest.mark.parametrize(
    "constraint",
    [
        eligibility({"supply_chain": {">=": 50}}),
        {
            "type": "group_budget",
            "resource": "fund",
            "where": {"supply_chain": {"<": 50}},
            "max_share": 0.5,
        },
        {"type": "group_count", "tier": "big", "where": {"supply_chain": {">": 1}}, "min": 0},
        {"type": "one_package", "where": {"supply_chain": {"<=": 99}}},
    ],
    ids=["eligibility", "group_budget", "group_count", "one_package"],
)
def test_a_non_numeric_cell_in_an_ordered_attribute_names_row_and_column(
    constraint: dict[str, Any],
) -> None:
    found = errors_of(request(constraint), with_supply_chain("60", "49%", "n/a", "", "70"))
    assert set(found) == {
        "partners.csv row 3, column supply_chain",
        "partners.csv row 4, column supply_chain",
    }
    (message,) = found["partners.csv row 3, column supply_chain"]
    assert message.startswith("not a number: '49%' (constraints.0.where compares it with")
    assert "'n/a'" in found["partners.csv row 4, column supply_chain"][0]


def test_an_ordered_attribute_reads_as_numbers_with_gaps() -> None:
    upload = parse_upload(
        request(eligibility({"supply_chain": {">=": 50}})),
        partners_csv=io.BytesIO(with_supply_chain("60", "", "49.5")),
    )
    values = [p.attributes.get("supply_chain") for p in upload.request.partners]
    assert values == [60, None, 49.5]


def test_equality_alone_keeps_the_column_as_text() -> None:
    upload = parse_upload(
        request(eligibility({"supply_chain": "49%"})),
        partners_csv=io.BytesIO(with_supply_chain("60", "49%")),
    )
    assert [p.attributes["supply_chain"] for p in upload.request.partners] == ["60", "49%"]


def test_an_inline_partner_with_a_text_value_is_named() -> None:
    partners = [
        {"id": "a", "baseline_gmv": 1, "attributes": {"supply_chain": 60}},
        {"id": "b", "baseline_gmv": 1, "attributes": {"supply_chain": "49%"}},
        {"id": "c", "baseline_gmv": 1, "attributes": {"supply_chain": True}},
        {"id": "d", "baseline_gmv": 1, "attributes": {"region": "east"}},
    ]
    found = errors_of(request(eligibility({"supply_chain": {">": 50}}), partners=partners))
    assert set(found) == {
        "partners.1.attributes.supply_chain",
        "partners.2.attributes.supply_chain",
    }
    assert "must be a number, not '49%'" in found["partners.1.attributes.supply_chain"][0]


def test_supplied_partners_are_checked_too() -> None:
    partners, _ = read_partners_table(io.BytesIO(with_supply_chain("60", "49%")))
    with pytest.raises(RequestValidationError) as caught:
        parse_request(request(eligibility({"supply_chain": {">": 50}})), partners=partners)
    # Read without the rule, the column is text as a whole: every value is named.
    first, second = caught.value.flat()["partners"]
    assert first.startswith("partner 'p0': supply_chain must be a number, not '60'")
    assert second.startswith("partner 'p1': supply_chain must be a number, not '49%'")


@pytest.mark.parametrize("operand", ["50", True])
def test_an_ordering_operator_takes_a_number(operand: Any) -> None:
    found = errors_of(
        request(
            eligibility({"supply_chain": {">=": operand}}),
            partners=[{"id": "a", "baseline_gmv": 1}],
        )
    )
    assert found["constraints.0.where.supply_chain.>="] == [
        f"'>=' compares numbers; got {operand!r}"
    ]


def test_ids_may_still_be_compared_as_text() -> None:
    parsed = parse_upload(
        request(
            eligibility({"id": {">=": "p1"}}),
            partners=[
                {"id": "p1", "baseline_gmv": 1, "response": {"fund": {"curve": "linear", "roi": 1}}}
            ],
        )
    )
    assert parsed.request.eligible(parsed.request.partners[0], "fund")
