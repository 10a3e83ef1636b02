"""The sweep of fresh family programmes (`bench.family_sweep`): the same programmes for the
same arguments, the flags it raises, and a short sweep end to end."""

from __future__ import annotations

import pytest

from bench.family_sweep import Outcome, draw_specs, flags, main


def test_a_sweep_draws_the_same_programmes_for_the_same_arguments() -> None:
    one = draw_specs(11, 20, [50, 300], [0.5, 0.98], [2, 4], draw=7)
    assert one == draw_specs(11, 20, [50, 300], [0.5, 0.98], [2, 4], draw=7)
    assert [spec.seed for spec in one] == list(range(11, 31))
    assert {spec.size for spec in one} == {50, 300}
    assert one != draw_specs(11, 20, [50, 300], [0.5, 0.98], [2, 4], draw=8)


def _outcome(
    shortfall: float = 1.0,
    gmv: float = 100.0,
    status: str = "optimal",
    seconds: float = 1.0,
    violations: tuple[str, ...] = (),
) -> Outcome:
    return Outcome(seconds, status, shortfall, gmv, violations)


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        (_outcome(), _outcome(), []),
        (_outcome(), None, []),
        (_outcome(violations=("budget subsidy over",)), None, ["INVALID"]),
        (_outcome(status="time_limit", seconds=60.0), None, ["NOT-OPTIMAL", "SLOW"]),
        (_outcome(shortfall=2.0), _outcome(shortfall=1.0), ["SHORT>BASE"]),
        (_outcome(shortfall=0.0, gmv=50.0), _outcome(shortfall=1.0), []),
        (_outcome(gmv=99.8), _outcome(gmv=100.0), ["GMV<BASE"]),
        (_outcome(gmv=99.95), _outcome(gmv=100.0), []),  # within 0.1%
        # A baseline plan that breaks a rule compares with nothing.
        (_outcome(shortfall=2.0), _outcome(violations=("budget over",)), []),
    ],
)
def test_the_flags_a_sweep_raises(
    mine: Outcome, theirs: Outcome | None, expected: list[str]
) -> None:
    assert flags(mine, theirs) == expected


def test_a_short_sweep_against_the_baseline_runs_end_to_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    counts = main(["11", "2", "--sizes", "50", "--limit", "20", "--baseline"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3  # one line a programme, then the counts
    assert printed[0].startswith("seed 11, 50 partners")
    assert printed[1].startswith("seed 12, 50 partners")
    assert "baseline" in printed[0]
    # Exactly valid, and never behind the baseline on these small programmes.
    assert not {"INVALID", "SHORT>BASE", "GMV<BASE"} & set(counts)
    assert sum(counts.values()) == 2
