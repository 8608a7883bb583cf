"""The bank's utility, shared by the environment's rewards and the equilibrium baseline.

``U_i = Revenue_i - rho * Risk_i - lam * Liquidity_i - gamma * Regulatory_i`` with

* Revenue = (E_i - E_i^prev) / E_i^0 — equity gained this step, per unit of initial equity;
* Risk = min(cap, (sum_k loans[i, slot_k] * belief[i, k] + VaR_i) / E_i^0), VaR_i = z *
  sum_m sigma_m * units[i, m] * mark[m] — belief-weighted counterparty exposure plus one-step
  market VaR;
* Liquidity = max(0, floor - cash_i / liabilities_i)  (at most ``floor``);
* Regulatory = clip(leverage_i / target_leverage_i - 1, 0, cap)
  + min(cap, max(0, c_min - E_i / A_i) / c_min).

So one step costs a live bank at most ``c = rho * cap + lam * floor + 2 * gamma * cap``
(``Params.step_cost_cap``). A bank that defaults at step t gets ``-(default_penalty + (T - t) * c)``
instead (T = ``max_steps``): the one-off penalty plus the most the steps it leaves could have
cost, so ending the episode early by defaulting never pays better than surviving it. Banks
already dead get 0.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, slot_exposures

__all__ = ["utility", "utility_terms"]


def utility_terms(
    s: NetworkState, bs: dict[str, np.ndarray], prev_equity: np.ndarray, p: Params
) -> dict[str, np.ndarray]:
    """The four (B, N) terms of U (before coefficients) from a balance sheet ``bs``."""
    e0 = np.maximum(s.equity0, 1e-9)
    equity, assets = bs["equity"], bs["assets"]
    revenue = (equity - prev_equity) / e0
    slot_loans = slot_exposures(s, bs)[0]
    var = p.margin_z * (s.units @ (s.marks() * p.sigma)[..., None])[..., 0]
    exposure = (slot_loans[..., None, :] @ s.belief[..., :, None])[..., 0, 0]
    risk = np.minimum((exposure + var) / e0, p.term_cap)
    liq_ratio = s.cash / np.maximum(bs["liabilities"], 1e-9)
    liquidity = np.maximum(0.0, p.liquidity_floor - liq_ratio)
    leverage = assets / np.maximum(equity, 1e-9)
    cap_ratio = equity / np.maximum(assets, 1e-9)
    regulatory = np.minimum(np.maximum(leverage / s.target_leverage - 1.0, 0.0), p.term_cap)
    if p.min_capital_ratio > 0:
        shortfall = np.maximum(0.0, p.min_capital_ratio - cap_ratio) / p.min_capital_ratio
        regulatory = regulatory + np.minimum(shortfall, p.term_cap)
    return {"revenue": revenue, "risk": risk, "liquidity": liquidity, "regulatory": regulatory}


def utility(
    s: NetworkState,
    bs: dict[str, np.ndarray],
    prev_equity: np.ndarray,
    p: Params,
    defaulted_now: np.ndarray,
) -> np.ndarray:
    """(B, N) utility of each bank for the step that produced state ``s``."""
    terms = utility_terms(s, bs, prev_equity, p)
    u = (
        terms["revenue"]
        - p.rho * terms["risk"]
        - p.lam * terms["liquidity"]
        - p.gamma * terms["regulatory"]
    )
    if np.count_nonzero(s.alive) == s.alive.size and not np.count_nonzero(defaulted_now):
        return u  # the masks below change nothing
    u = np.where(s.alive, u, 0.0)
    left = np.maximum(p.max_steps - s.t - 1, 0)[:, None]  # steps after this one (t not advanced)
    return np.where(defaulted_now, -(p.default_penalty + left * p.step_cost_cap), u)
