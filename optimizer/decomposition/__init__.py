"""Windmaker's large-scale engine: Lagrangian decomposition with a certified bound.

Budgets, tier counts and group rows are priced; each partner then solves a tiny problem
on its own (vectorised over all partners); the prices are tuned to minimise the dual,
whose value bounds the best plan; plans built from the prices are exact and checked.

Modules: `problem` (the shared `ProblemArrays` as curve families), `family` (curves, their
concave envelopes and slope inverses), `subproblem` (every partner's answer to prices),
`response` (what partners answer to prices), `menus` (package partners' options),
`menu_prices` (their answers), `menu_plans` (their packages chosen and pinned in plans),
`lagrangian` (value and subgradient of a stage), `dual` (level bundle method), `stages`
(one stage's price search), `repair`, `tickets` and `primal` (exactly feasible plans),
`assignment` (stage 1's tier choices as a small HiGHS MILP over exact per-partner
options, when the prices do not prove the greedy plan), `certificate` (stage 1's bound
beyond the Lagrangian's), `stage_one` (stage 1), `engine` (anytime stage 2, the caller's
improver, sampling, the outcome with both certificates).

Relaxations behind the bound (each only raises it, so the certificate stays valid):
S-shaped (hill) curves are replaced by their concave envelope over each partner's
on-domain, and steps by continuous amounts, in the plain dual; the refined bound
enumerates the ticket resource's grid exactly for partners reaching for a tier. Min
tickets are handled exactly (on/off per resource), as are pins, eligibility, max_share
and bounds. group_budget and group_count rows are priced in the dual and enforced in the
plans (under max_gmv too, where the tiers are only reported). `points` curves are
replaced by their upper concave hull over each partner's range in the dual. Package menus
(with one_package) are priced exactly, option by option. Not handled
(UnsupportedRequest): partners with both curves and a menu.
"""

from optimizer.decomposition.engine import ENGINE, Improver, solve_decomposition, solve_stage_one

__all__ = ["ENGINE", "Improver", "solve_decomposition", "solve_stage_one"]
