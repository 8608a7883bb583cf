"""Tiny hand-built worlds for the hand-computed mechanism tests in ``tests/core/``.

Every helper builds one world (B = 1) of a few banks whose every number is given by the test, on a
config that switches off whatever the test does not look at: no volatility, drift or price
impact, no interest, no margin, profit booking far away, alpha = beta = 1.
A test turns on only the mechanism it pins (``config(interest_rate=0.01)``,
``config(margin={"enabled": True, "z": 0.4})``, ``config(markets=[market(impact=0.5)])``).

The quiet market has price0 10 and depth 100, so with impact ``kappa`` the auction's price
impact per unit is ``lambda = kappa * 10^2 / 100 = kappa``; its half-life is one step (the
transient displacement halves at every repricing) and no impact is permanent.

Only the stable public surface of the core is used: ``EnvConfig.from_dict``, ``NetworkState``,
``Params.from_config``, ``step`` and ``StepNoise``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rudra_env.config import EnvConfig
from rudra_env.core import NetworkState, Params, StepNoise, step

__all__ = [
    "REWARD",
    "default_charge",
    "config",
    "market",
    "params",
    "state",
    "noise",
    "run",
    "events",
    "acts",
]

BASE: dict[str, Any] = {
    "max_steps": 100,
    "size_levels": [0.5, 1.0],
    "profit_booking_interval": 1000,
    "interest_rate": 0.0,
    "topology": {"kind": "complete"},
    "contagion": {"alpha": 1.0, "beta": 1.0},
    "margin": {"enabled": False},
}


REWARD: dict[str, float] = {
    "rho": 0.3,
    "lam": 2.0,
    "gamma": 0.7,
    "default_penalty": 7.0,
    "liquidity_floor": 0.05,
    "min_capital_ratio": 0.04,
    "term_cap": 3.0,
}
"""Reward weights of the hand-computed utility tests (``config(reward=REWARD)``): each term's
weight differs, so a term swapped for another shows."""


def market(name: str = "A", **over: Any) -> dict[str, Any]:
    """A market that does nothing on its own: sigma = drift = impact = 0, a wide breaker; with
    impact, lambda = impact per unit, half-life 1 step (decay 0.5), permanent share 0."""
    out = {
        "name": name,
        "price0": 10.0,
        "impact": 0.0,
        "depth": 100.0,
        "half_life": 1.0,
        "permanent_share": 0.0,
        "max_move": 10.0,
        "volatility": 0.0,
        "drift": 0.0,
    }
    out.update(over)
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config(n: int = 3, k: int | None = None, **over: Any) -> EnvConfig:
    """N banks, K = N - 1 slots by default, one quiet market ``A``; ``over`` merges in deeply."""
    data = _merge(BASE, {"num_banks": n, "max_counterparties": n - 1 if k is None else k})
    data.setdefault("markets", [market()])
    return EnvConfig.from_dict(_merge(data, over))


_CONFIG_OF: dict[int, tuple[Params, EnvConfig]] = {}
"""The config each ``params`` was made from, by ``id`` (the Params is kept alive beside it, so
an id is never reused): ``state`` reads initial prices there."""


def params(cfg: EnvConfig | None = None, **over: Any) -> Params:
    cfg = cfg if cfg is not None else config(**over)
    p = Params.from_config(cfg)
    _CONFIG_OF[id(p)] = (p, cfg)
    return p


def _slots(n: int, k: int) -> np.ndarray:
    """Each bank's other banks in index order, padded with -1 to K (or cut to K)."""
    rows = [[j for j in range(n) if j != i][:k] for i in range(n)]
    return np.array([r + [-1] * (k - len(r)) for r in rows], dtype=np.int64)


def state(
    p: Params,
    *,
    cash: Sequence[float],
    loans: Sequence[Sequence[float]] | None = None,
    units: Sequence[Sequence[float]] | None = None,
    external: Sequence[float] | None = None,
    deposits: Sequence[float] | None = None,
    price: Sequence[float] | None = None,
    basis: Sequence[Sequence[float]] | None = None,
    slots: Sequence[Sequence[int]] | None = None,
    belief: Sequence[Sequence[float]] | None = None,
    alive: Sequence[bool] | None = None,
    vol2: Sequence[float] | None = None,
    last_return: Sequence[float] | None = None,
    equity0: Sequence[float] | None = None,
    equity_prev: Sequence[float] | None = None,
    target_leverage: Sequence[float] | float = 10.0,
    risk_factor: Sequence[float] | float = 0.5,
    t: int = 0,
) -> NetworkState:
    """One world (B = 1) with the given per-bank books. ``basis`` defaults to cost = value now,
    ``equity0`` and ``equity_prev`` to the equity of the sheet, beliefs to the prior."""
    made, cfg = _CONFIG_OF[id(p)]
    assert made is p, "state() needs Params made by tiny.params()"
    n, m, k = cfg.num_banks, p.M, p.K
    f = np.float64
    price0 = np.array([mk.price0 for mk in cfg.markets], dtype=f)
    px = price0.copy() if price is None else np.array(price, dtype=f)
    un = np.zeros((n, m)) if units is None else np.array(units, dtype=f)
    sl = _slots(n, k) if slots is None else np.array(slots, dtype=np.int64)
    if belief is None:
        bel = np.where(sl >= 0, cfg.beliefs.prior, 0.0)
    else:
        bel = np.array(belief, dtype=f)
    s = NetworkState(
        cash=np.array([cash], dtype=f),
        loans=np.zeros((1, n, n)) if loans is None else np.array([loans], dtype=f),
        units=un[None].copy(),
        basis=(un * px if basis is None else np.array(basis, dtype=f))[None].copy(),
        external=np.zeros((1, n)) if external is None else np.array([external], dtype=f),
        deposits=np.zeros((1, n)) if deposits is None else np.array([deposits], dtype=f),
        alive=np.ones((1, n), dtype=bool) if alive is None else np.array([alive], dtype=bool),
        price=px[None].copy(),
        price0=price0[None].copy(),
        depth=np.array([[mk.depth for mk in cfg.markets]], dtype=f),
        last_return=np.zeros((1, m)) if last_return is None else np.array([last_return], f),
        vol2=(p.sigma**2)[None].copy() if vol2 is None else np.array([vol2], dtype=f),
        slots=sl[None].copy(),
        belief=bel[None].copy(),
        equity0=np.zeros((1, n)),
        equity_prev=np.zeros((1, n)),
        target_leverage=np.broadcast_to(np.asarray(target_leverage, f), (1, n)).copy(),
        risk_factor=np.broadcast_to(np.asarray(risk_factor, f), (1, n)).copy(),
        default_step=np.where(
            np.ones((1, n), dtype=bool) if alive is None else np.array([alive]), -1, 0
        ).astype(np.int64),
        outside=np.zeros(1),
        t=np.array([t], dtype=np.int64),
    )
    eq = s.equity()
    s.equity0 = eq.copy() if equity0 is None else np.array([equity0], dtype=f)
    s.equity_prev = eq.copy() if equity_prev is None else np.array([equity_prev], dtype=f)
    return s


def noise(p: Params, eps: Sequence[float] | float = 0.0, u: float = 0.5) -> StepNoise:
    """Market shocks ``eps`` (one per market, or one for all) and one signal uniform ``u``."""
    m, n, k = p.M, p.N, p.K
    return StepNoise(
        market=np.broadcast_to(np.asarray(eps, dtype=np.float64), (1, m)).copy(),
        signal=np.full((1, n, k), u, dtype=np.float32),
    )


def acts(p: Params, **by_bank: int) -> np.ndarray:
    """(1, N) actions: HOLD except ``b<i>=action``."""
    a = np.zeros((1, p.N), dtype=np.int64)
    for key, value in by_bank.items():
        a[0, int(key[1:])] = value
    return a


def run(
    s: NetworkState,
    p: Params,
    actions: np.ndarray | None = None,
    eps: Sequence[float] | float = 0.0,
    u: float = 0.5,
):
    """One step (on a copy) with the given actions (HOLD for all by default) and noise."""
    a = np.zeros((1, p.N), dtype=np.int64) if actions is None else actions
    return step(s, a, p, noise=noise(p, eps, u))


def events(out, kind: str, world: int = 0) -> list[dict[str, Any]]:
    """The data of this step's events of one type in one world."""
    return [e.data for e in out.record.events(world) if e.type == kind]


def default_charge(p: Params, step_no: int) -> float:
    """The reward of a bank that defaults in step ``step_no``: the penalty plus the most the
    steps left after it could cost (``Params.step_cost_cap`` each)."""
    return -(p.default_penalty + max(p.max_steps - step_no, 0) * p.step_cost_cap)
