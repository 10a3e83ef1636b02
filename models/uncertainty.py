"""Forecast uncertainty (docs/uncertainty.md): how likely each tier target really is.

Pure numpy/scipy. A partner's realised GMV is `projected · exp(σ·Z)` with Z standard
normal, so it reaches a tier with probability `Φ(ln(projected / min_gmv) / σ)`.

Counting partners per tier:

* ρ = 0 — the count is Poisson-binomial and computed exactly. Partners whose probability
  is within `TRUNCATE` of 0 or 1 are counted in bulk (as 0 or 1); the rest are multiplied
  together as polynomials `(1 − p) + p·x` in a balanced product tree with batched FFTs,
  which takes O(m log² m) for m undecided partners. Error bound: replacing a partner's
  Bernoulli by its rounded value changes the count with probability min(p, 1 − p), so every
  reported probability moves by at most the sum of those (≤ n · TRUNCATE = 1e-6 for a
  million partners), plus FFT rounding of order 1e-13 per tree level; `truncation_error`
  reports the first term.
* ρ > 0 — `Z_i = √ρ·G_group(i) + √(1−ρ)·E_i`; the count is sampled with `draws` seeded draws
  (same truncation, same bound), and `p_target` comes with its binomial standard error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy import special

FloatArray = NDArray[np.float64]

Z90 = 1.2815515655446004  # Φ⁻¹(0.9): p10 and p90 are 2·Z90 standard deviations apart
TRUNCATE = 1e-12  # probabilities this close to 0 or 1 are counted as certain
DEFAULT_DRAWS = 20_000
MIN_DRAWS, MAX_DRAWS = 1_000, 1_000_000
DEFAULT_REPORT_CONFIDENCE = 0.9  # confidence reported when the request sets none
MC_CHUNK_CELLS = 4_000_000  # partners × draws sampled at once (≈ 32 MB of normals)
DIRECT_PRODUCT = 64  # below this many undecided partners, a plain convolution loop


def sigma(
    baseline: Sequence[float] | FloatArray,
    p10: Sequence[float | None],
    p90: Sequence[float | None],
    default_sigma: float = 0.0,
) -> FloatArray:
    """σ per partner: ln(p90/p10) / (2·Φ⁻¹(0.9)), or `default_sigma` without a band."""
    n = len(baseline)
    low = np.array([math.nan if v is None else v for v in p10], dtype=np.float64)
    high = np.array([math.nan if v is None else v for v in p90], dtype=np.float64)
    out = np.full(n, float(default_sigma), dtype=np.float64)
    band = np.isfinite(low) & np.isfinite(high)
    out[band] = np.log(high[band] / low[band]) / (2.0 * Z90)
    return out


def reach_probability(gmv: FloatArray, sigmas: FloatArray, min_gmv: float) -> FloatArray:
    """P(realised GMV ≥ min_gmv) per partner; 1 or 0 where σ = 0 (exactly the §1 test)."""
    gmv = np.asarray(gmv, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    sure = (gmv >= min_gmv).astype(np.float64)
    spread = sigmas > 0
    if not np.any(spread):
        return sure
    with np.errstate(divide="ignore", over="ignore"):
        margin = np.log(gmv[spread] / min_gmv) / sigmas[spread]
    out = sure
    out[spread] = special.ndtr(margin)
    return out


def reach_matrix(gmv: FloatArray, sigmas: FloatArray, thresholds: Sequence[float]) -> FloatArray:
    """(n, T) reach probabilities, one column per threshold."""
    return np.column_stack([reach_probability(gmv, sigmas, t) for t in thresholds])


def _split(p: FloatArray) -> tuple[int, FloatArray, float]:
    """(partners counted as certain, the undecided probabilities, the truncation bound)."""
    low = p <= TRUNCATE
    high = p >= 1.0 - TRUNCATE
    middle = ~(low | high)
    error = float(p[low].sum() + (1.0 - p[high]).sum())
    return int(np.count_nonzero(high)), p[middle], error


def _product_tree(p: FloatArray) -> FloatArray:
    """Coefficients of Π (1 − p_i + p_i·x): the pmf of the sum of Bernoulli(p_i)."""
    if p.size == 0:
        return np.ones(1)
    if p.size <= DIRECT_PRODUCT:
        pmf = np.ones(1)
        for q in p:
            pmf = np.convolve(pmf, [1.0 - q, q])
        return pmf
    polys = np.column_stack([1.0 - p, p])
    while polys.shape[0] > 1:
        if polys.shape[0] % 2:  # pair the odd one out with the constant polynomial 1
            identity = np.zeros((1, polys.shape[1]))
            identity[0, 0] = 1.0
            polys = np.vstack([polys, identity])
        left, right = polys[0::2], polys[1::2]
        degree = polys.shape[1] - 1
        if degree < DIRECT_PRODUCT // 4:  # tiny polynomials: schoolbook beats many tiny FFTs
            product = np.zeros((left.shape[0], 2 * degree + 1))
            for k in range(degree + 1):
                product[:, k : k + degree + 1] += left[:, k : k + 1] * right
        else:
            n_fft = sp_fft.next_fast_len(2 * degree + 1, real=True)
            spectra = sp_fft.rfft(left, n=n_fft, axis=1) * sp_fft.rfft(right, n=n_fft, axis=1)
            product = sp_fft.irfft(spectra, n=n_fft, axis=1)[:, : 2 * degree + 1]
        polys = np.clip(product, 0.0, None)
    pmf = polys[0, : p.size + 1]
    return pmf / pmf.sum()


def poisson_binomial_pmf(p: FloatArray) -> tuple[int, FloatArray, float]:
    """The count's distribution: (offset, pmf, error bound) with P(count = offset + j) = pmf[j].

    `error` bounds how far any probability derived from it may be from the exact one
    (truncation of near-certain partners; see the module docstring).
    """
    offset, middle, error = _split(np.asarray(p, dtype=np.float64))
    return offset, _product_tree(middle), error


def survival(offset: int, pmf: FloatArray, n: int) -> FloatArray:
    """S[k] = P(count ≥ k) for k = 0 … n + 1 (S[0] = 1, S[n + 1] = 0)."""
    tail = np.cumsum(pmf[::-1])[::-1]
    out = np.zeros(n + 2)
    out[: offset + 1] = 1.0
    out[offset : offset + tail.size] = np.minimum(tail, 1.0)
    out[offset] = 1.0
    return out


def achieved_at(surv: FloatArray, confidence: float) -> int:
    """The largest k with P(count ≥ k) ≥ confidence."""
    return int(np.nonzero(surv >= confidence)[0][-1])


@dataclass(frozen=True)
class TierOutlook:
    name: str
    target: int
    expected_achieved: float
    p_target: float
    achieved_at_confidence: int
    std_error: float  # 0 for the exact method
    truncation_error: float  # bound on the error from counting near-certain partners


@dataclass(frozen=True)
class Outlook:
    confidence: float
    correlation: float
    method: str  # "exact" | "monte_carlo"
    draws: int | None
    tiers: tuple[TierOutlook, ...]


@dataclass(frozen=True)
class TierSpec:
    name: str
    min_gmv: float
    target: int


def outlook(
    gmv: FloatArray,
    sigmas: FloatArray,
    tiers: Sequence[TierSpec],
    *,
    confidence: float = DEFAULT_REPORT_CONFIDENCE,
    correlation: float = 0.0,
    groups: NDArray[np.intp] | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> Outlook:
    """Every tier's figures for partners with projected `gmv` and spreads `sigmas`.

    `groups[i]` is partner i's shock group (0 … g−1) when correlated; None means one group.
    """
    gmv = np.asarray(gmv, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    probs = reach_matrix(gmv, sigmas, [tier.min_gmv for tier in tiers])
    if correlation == 0.0:
        reports = [_exact_tier(tier, probs[:, t], confidence) for t, tier in enumerate(tiers)]
        return Outlook(confidence, correlation, "exact", None, tuple(reports))
    counts = sample_counts(gmv, sigmas, tiers, probs, correlation, groups, draws, seed)
    reports = [
        _sampled_tier(tier, probs[:, t], counts[:, t], confidence) for t, tier in enumerate(tiers)
    ]
    return Outlook(confidence, correlation, "monte_carlo", draws, tuple(reports))


def _exact_tier(tier: TierSpec, p: FloatArray, confidence: float) -> TierOutlook:
    offset, pmf, error = poisson_binomial_pmf(p)
    surv = survival(offset, pmf, p.size)
    target = min(max(tier.target, 0), p.size + 1)
    return TierOutlook(
        name=tier.name,
        target=tier.target,
        expected_achieved=float(np.sum(p)),  # pairwise: ~1e-16 · log n relative
        p_target=float(surv[target]),
        achieved_at_confidence=achieved_at(surv, confidence),
        std_error=0.0,
        truncation_error=error,
    )


def _sampled_tier(
    tier: TierSpec, p: FloatArray, counts: NDArray[np.int64], confidence: float
) -> TierOutlook:
    draws = counts.size
    p_target = float(np.count_nonzero(counts >= tier.target)) / draws
    ordered = np.sort(counts)[::-1]
    # P̂(count ≥ k) ≥ α ⇔ at least ⌈α·draws⌉ draws reach k.
    needed = math.ceil(confidence * draws - 1e-9)
    _, _, error = _split(p)
    return TierOutlook(
        name=tier.name,
        target=tier.target,
        expected_achieved=float(np.sum(p)),  # pairwise: ~1e-16 · log n relative
        p_target=p_target,
        achieved_at_confidence=int(ordered[needed - 1]),
        std_error=math.sqrt(p_target * (1.0 - p_target) / draws),
        truncation_error=error,
    )


def sample_counts(
    gmv: FloatArray,
    sigmas: FloatArray,
    tiers: Sequence[TierSpec],
    probs: FloatArray,
    correlation: float,
    groups: NDArray[np.intp] | None,
    draws: int,
    seed: int,
) -> NDArray[np.int64]:
    """(draws, T) sampled tier counts under correlated shocks, seeded by `seed`.

    Only partners undecided for some tier are sampled; the rest add a fixed count.
    """
    n = gmv.size
    if groups is None:
        groups = np.zeros(n, dtype=np.intp)
    sure = probs >= 1.0 - TRUNCATE
    undecided = np.any((probs > TRUNCATE) & ~sure, axis=1)
    base = np.count_nonzero(sure & ~undecided[:, None], axis=0)
    index = np.nonzero(undecided)[0]
    # Z ≥ −ln(gmv / min) / σ reaches the tier: one threshold per undecided partner and tier.
    with np.errstate(divide="ignore"):
        need = -np.log(gmv[index, None] / np.asarray([t.min_gmv for t in tiers])[None, :])
        need = (need / sigmas[index, None]).astype(np.float32)
    member = groups[index]
    n_groups = int(groups.max()) + 1 if n else 1
    rng = np.random.default_rng(np.random.SeedSequence([seed, 6]))
    counts = np.empty((draws, len(tiers)), dtype=np.int64)
    chunk = max(1, MC_CHUNK_CELLS // max(index.size, 1))
    shared, own = math.sqrt(correlation), math.sqrt(1.0 - correlation)
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        # float32 halves the cost; its 6e-8 resolution of Z is far below the draws' noise.
        g = rng.standard_normal((size, n_groups), dtype=np.float32)
        z = rng.standard_normal((size, index.size), dtype=np.float32)
        z *= np.float32(own)
        z += np.float32(shared) * g[:, member]
        for t in range(len(tiers)):
            counts[start : start + size, t] = base[t] + np.count_nonzero(
                z >= need[None, :, t], axis=1
            )
    return counts
