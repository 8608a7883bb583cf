"""Scheduled shocks and interventions (step 1), and the controls a person applies between steps.

A shock is active on steps ``start <= t < start + duration`` (t = the step being taken, from 1)
in worlds where some bank is alive. Its ``magnitude`` (total fraction lost) is compounded evenly
over the duration: each active step takes ``per_step = 1 - (1 - magnitude)^(1 / duration)``.

================  =============================================================================
shock             effect on its targets (banks, or markets for a crash; none listed = all)
================  =============================================================================
market_crash      market and fundamental price ``*= 1 - per_step`` (``loss`` = value lost)
bank_capital_hit  ``external *= 1 - per_step`` (``loss`` = external assets written down)
deposit_run       depositors withdraw ``per_step * deposits``, paid from cash, then by forced
                  sales (``forced_sale`` reason ``deposit_run``); a bank that cannot pay all
                  defaults (illiquid) in the cascade
funding_freeze    no new interbank lending: LEND is masked out (``funding_frozen``)
================  =============================================================================

Each active shock is a ``shock`` event. Interventions on their step: ``capital_injection``
(``add_capital``: cash, hence equity, from the outside to a live bank, a ``capital_added`` event)
and ``remove_bank`` (resolved through the default machinery before anyone acts). Shocks apply
before interventions. Shapes: (B, N) per bank, (B, M) per market, (B,) per world.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rudra_env.config import Shock
from rudra_env.core.arrays import TOL, value
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import raise_cash
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["add_capital", "apply_scenario", "funding_frozen"]


def apply_scenario(s: NetworkState, p: Params, rec: StepRecord) -> tuple[np.ndarray, np.ndarray]:
    """Shocks, then interventions, scheduled for step t + 1.

    Returns (B, N) masks: banks to remove now, banks that could not pay a deposit run."""
    b, n, _ = s.shape
    t = s.t + 1
    short = np.zeros((b, n), dtype=bool)
    for sh in p.shocks:
        active = (t >= sh.start) & (t < sh.start + sh.duration) & s.alive.any(axis=1)
        if not active.any():
            continue
        per_step = 1.0 - (1.0 - sh.magnitude) ** (1.0 / sh.duration)
        loss, outside = _SHOCKS[sh.type](s, p, sh, active, per_step, rec, short)
        wi = np.nonzero(active)[0]
        rec.add_rows(
            "shock",
            world=wi,
            kind=np.full(len(wi), sh.type),
            loss=loss[wi],
            outside_flow=outside[wi],
        )
    removed = np.zeros((b, n), dtype=bool)
    for iv in p.interventions:
        now = t == iv.step
        if not now.any():
            continue
        if iv.type == "capital_injection":
            add_capital(s, iv.bank, iv.amount, now, rec)
        else:
            removed[now, iv.bank] = True
    return removed, short


# Each shock: (state, params, shock, active worlds (B,), per-step fraction, record,
# deposit-run shortfall mask to update) -> (loss (B,), outside flow (B,)).
_Shock = Callable[..., tuple[np.ndarray, np.ndarray]]


def _market_crash(s, p, sh: Shock, active, per_step, rec, short):
    hit = np.array([name in sh.targets or not sh.targets for name in p.market_names])
    factor = np.where(hit, 1.0 - per_step, 1.0)
    before = value(s.units, s.marks()).sum(axis=1)
    s.price[active] *= factor
    s.fundamental[active] *= factor
    return before - value(s.units, s.marks()).sum(axis=1), np.zeros(len(active))


def _target_banks(s: NetworkState, sh: Shock, active: np.ndarray) -> np.ndarray:
    """(B, N) live target banks of a bank shock in the active worlds."""
    banks = np.zeros(s.shape[1], dtype=bool)
    banks[list(sh.targets) if sh.targets else slice(None)] = True
    return active[:, None] & banks[None, :] & s.alive


def _bank_capital_hit(s, p, sh: Shock, active, per_step, rec, short):
    cut = s.external * per_step * _target_banks(s, sh, active)
    s.external -= cut
    return cut.sum(axis=1), np.zeros(len(active))


def _deposit_run(s, p, sh: Shock, active, per_step, rec, short):
    hit = _target_banks(s, sh, active)
    demand = s.deposits * per_step * hit
    paid = raise_cash(s, p, demand, rec, "deposit_run")
    s.deposits -= paid
    s.outside += paid.sum(axis=1)
    short |= hit & (demand - paid > TOL * np.maximum(1.0, demand))
    return np.zeros(len(active)), paid.sum(axis=1)


def _funding_freeze(s, p, sh: Shock, active, per_step, rec, short):
    # Acts through the LEND mask (``funding_frozen``); nothing moves.
    return np.zeros(len(active)), np.zeros(len(active))


_SHOCKS: dict[str, _Shock] = {
    "market_crash": _market_crash,
    "bank_capital_hit": _bank_capital_hit,
    "deposit_run": _deposit_run,
    "funding_freeze": _funding_freeze,
}


def funding_frozen(s: NetworkState, p: Params) -> np.ndarray:
    """(B,) bool: a funding_freeze shock is active at the step now being taken (t + 1)."""
    out = np.zeros(len(s.t), dtype=bool)
    t = s.t + 1
    for sh in p.funding_freezes:
        out |= (t >= sh.start) & (t < sh.start + sh.duration)
    return out


def add_capital(
    s: NetworkState,
    bank: int,
    amount: float,
    worlds: np.ndarray | None = None,
    rec: StepRecord | None = None,
) -> None:
    """Central-bank capital injection: ``amount`` of cash (and equity) to a live bank."""
    w = np.ones(s.shape[0], dtype=bool) if worlds is None else worlds
    w = w & s.alive[:, bank]
    s.cash[w, bank] += amount
    s.outside[w] -= amount
    if rec is not None:
        wi = np.nonzero(w)[0]
        rec.add_rows(
            "capital_added",
            world=wi,
            bank=np.full(len(wi), bank),
            amount=np.full(len(wi), float(amount)),
            outside_flow=np.full(len(wi), -float(amount)),
        )
