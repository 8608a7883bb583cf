"""Defaults and the cascade (step 7): clear the network, resolve the failed banks, re-mark, repeat.

Each round, in the worlds where some live bank is insolvent (equity < -TOL * max(1, E0)),
illiquid (cash < -TOL) or forced (an unpaid loan call or deposit run, a removal):

1. **Clearing** (``rudra_env.core.clearing.clear``): Rogers–Veraart / Eisenberg–Noe over
   interbank loans and deposits (pari passu), each bank's external value being
   ``cash + market value + external``; the clearing also finds the banks that fall through
   credit contagion this round. A failed bank j repays the fraction ``recovery_j = p_j / pbar_j``.
2. **Resolution** of each failed bank j (``settle``):
   * its market units are fire-sold: ``price *= max(PRICE_FLOOR, 1 - fire_sale_impact *
     sold / depth)``, proceeds at the new price;
   * its external assets are sold to the outside at ``alpha`` of book;
   * its creditors (banks and depositors) receive ``recovery_j * claim`` in cash
     (loss given default ``1 - recovery_j``);
   * its loans to survivors are called in full: they pay from cash, then forced sales; what
     one cannot pay is written off and it is forced to default next round;
   * the estate: ``costs = (1 - alpha) * max(cash + proceeds, 0) + (1 - beta) * interbank
     collections`` go to the outside (Rogers–Veraart default costs); creditors get
     ``recovery_j * (interbank liabilities + deposits)``; the ``residual`` (estate in minus
     paid out: fire-sale discount against the clearing marks, survivors' shortfalls) is
     returned to, or covered by, the outside; every such amount is in the ``default`` event's
     ``outside_flow``;
   * its books are zeroed, ``alive`` false, ``default_step`` set.
3. Survivors are re-marked at the new prices, and the loop repeats until no new default (at most
   ``max_cascade_rounds``). Each round is a ``cascade`` event; each failed bank a ``default``.

Shapes: B worlds, N banks; W affected worlds of a round; F failed banks of a round (compact
rows). A round works on a sub-state of the affected worlds that leaves ``loans`` out: the
clearing and the settlement read and update only the failed banks' rows and columns of the full
(B, N, N) ``loans``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rudra_env.core.arrays import TOL, entries, over_banks, sum_rows, value
from rudra_env.core.clearing import clear
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import fire_sale_prices, raise_cash
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, balance_sheet

__all__ = ["CAUSES", "remove_banks", "resolve_defaults"]

CAUSES = ("forced", "insolvent", "illiquid", "contagion")
"""Default causes by code; code 0 is named by the caller (``illiquid`` for unpaid calls and
deposit runs, ``removed`` for removals)."""


def resolve_defaults(
    s: NetworkState,
    p: Params,
    forced: np.ndarray,
    rec: StepRecord,
    cause_forced: str = "illiquid",
    worlds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The cascade loop: clear, resolve, fire-sell, re-mark, until no new default.

    ``forced`` (B, N) marks banks that default regardless of equity (liquidity, removal);
    ``worlds`` (B,) bool, if given, limits the cascade to those worlds. Returns (fallen (B, N),
    rounds (B,), live banks linked to a fallen one (B, N), balance sheet of the final state).
    """
    b, n, _ = s.shape
    fallen = np.zeros((b, n), dtype=bool)
    hit = np.zeros((b, n), dtype=bool)
    rounds = np.zeros(b, dtype=np.int64)
    forced = forced.copy()
    causes = np.array((cause_forced, *CAUSES[1:]))
    bs = balance_sheet(s)
    for rnd in range(1, p.max_cascade_rounds + 1):
        if rnd > 1:
            bs = balance_sheet(s)
        insolvent = bs["equity"] < -TOL * np.maximum(1.0, s.equity0)  # causes: read for
        illiquid = s.cash < -TOL  # live banks only
        new = (insolvent | illiquid | forced) & s.alive
        if worlds is not None:
            new &= worlds[:, None]
        if not np.count_nonzero(new):
            break
        w = np.nonzero(new.any(axis=1))[0]
        rounds[w] = rnd
        whole = len(w) == b  # every world is affected: work in place, no sub-state
        sub = s if whole else s.take(w, loans=False)
        sub_bs = bs if whole else {k: v[w] for k, v in bs.items()}
        clearing = clear(
            s.loans.transpose(0, 2, 1),
            sub.cash + sub_bs["market_value"] + sub.external,
            sub.deposits,
            p.clearing_alpha,
            p.clearing_beta,
            obligations=sub.ib_liab + sub.deposits,
            full_receipts=sub.ib_assets,
            rows=w,
        )
        fell = (clearing.defaulted | new[w]) & sub.alive
        recovery = np.where(fell, clearing.recovery, 1.0)
        # Cause code per bank, an index into ``causes``; named in the events for the failed only.
        cause = np.where(
            forced[w] & sub.alive, 0, np.where(insolvent[w], 1, np.where(illiquid[w], 2, 3))
        )
        forced[:] = False
        round_ = _Round(worlds=w, number=rnd, cause=cause, cause_names=causes)
        next_forced, hit_w = settle(sub, s.loans, p, fell, recovery, sub_bs, round_, rec)
        if not whole:
            s.put(w, sub)
        forced[w] = next_forced
        fallen[w] |= fell
        hit[w] |= hit_w
    else:
        bs = balance_sheet(s)
    hit &= s.alive
    return fallen, rounds, hit, bs


def remove_banks(
    s: NetworkState, p: Params, remove: np.ndarray, rec: StepRecord
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve (remove) the live banks in the (B, N) mask now, with the full default machinery,
    in the worlds where one is removed (any bank there that is insolvent or illiquid at this
    moment falls with it; other worlds are untouched).

    Returns the (B, N) masks of every bank that fell (the removed ones included) and of the
    banks linked to them (for beliefs).
    """
    remove = remove & s.alive
    wi, bi = np.nonzero(remove)
    rec.add_rows("bank_removed", world=wi, bank=bi)
    fallen, _rounds, hit, _bs = resolve_defaults(
        s, p, remove, rec, cause_forced="removed", worlds=remove.any(axis=1)
    )
    return fallen, hit


@dataclass(frozen=True)
class _Round:
    """One cascade round: the affected worlds and why each bank would fail."""

    worlds: np.ndarray
    """(W,) world ids of the sub-state's rows."""
    number: int
    """Round number, from 1."""
    cause: np.ndarray
    """(W, N) cause code per bank, an index into ``cause_names``."""
    cause_names: np.ndarray
    """Names of the cause codes."""


@dataclass(frozen=True)
class _Failed:
    """The failed banks of a round as compact rows, with their rows and columns of ``loans``."""

    flat: np.ndarray
    """(F,) flat (sub-world, bank) index."""
    sub_world: np.ndarray
    """(F,) row in the sub-state."""
    world: np.ndarray
    """(F,) world in the full state (its ``loans``)."""
    bank: np.ndarray
    """(F,) bank index."""
    lent_to: np.ndarray
    """(F, N) ``[q, i]``: what bank i lent failed bank q."""
    lent_by: np.ndarray
    """(F, N) ``[q, k]``: what failed bank q lent bank k."""

    @classmethod
    def gather(cls, fell: np.ndarray, loans: np.ndarray, worlds: np.ndarray) -> _Failed:
        flat, fw, fb = entries(fell)
        gw = worlds[fw]
        return cls(flat, fw, gw, fb, loans[gw, :, fb], loans[gw, fb, :])

    def by_world(self, rows: np.ndarray, n_worlds: int) -> np.ndarray:
        """(W, N) sums of (F, N) rows over the failed banks of each sub-world."""
        return sum_rows(rows, self.sub_world, n_worlds)


def settle(
    s: NetworkState,
    loans: np.ndarray,
    p: Params,
    fell: np.ndarray,
    recovery: np.ndarray,
    bs: dict[str, np.ndarray],
    round_: _Round,
    rec: StepRecord,
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the failed banks ``fell`` (W, N) of sub-state ``s`` (worlds ``round_.worlds`` of
    the full state, whose (B, N, N) ``loans`` this reads and updates; ``s.loans`` is unused).

    Returns next round's forced defaults (survivors that could not pay a failed bank's called
    loans) and the banks linked by a loan, either way, to a failed bank (for beliefs). A round
    with F failures costs O(F N) reads of the loans, not passes over them.
    """
    w = len(fell)
    f = fell.astype(np.float64)
    survive = s.alive & ~fell
    liab = s.ib_liab.copy()  # before any zeroing
    failed = _Failed.gather(fell, loans, round_.worlds)
    lent_to_failed = failed.by_world(failed.lent_to, w)  # each bank's claims on failed banks
    owed_to_failed = failed.by_world(failed.lent_by, w)  # each bank's debts to failed banks
    hit = (lent_to_failed + owed_to_failed) > 0
    proceeds = _fire_sell(s, p, f)
    received = _pay_creditors(s, failed, recovery, survive)
    collected, short = _call_loans(s, failed, owed_to_failed, survive, rec, round_.worlds)
    estate = _estate(s, p, f, recovery, liab, proceeds, received, collected)
    s.outside += estate["outside_flow"].sum(axis=1)
    _close_books(s, loans, failed, fell, lent_to_failed, owed_to_failed)
    s.default_step[failed.sub_world, failed.bank] = s.t[failed.sub_world] + 1
    _record(rec, s, failed, round_, {"equity": bs["equity"], "recovery": recovery, **estate})
    return short, hit


def _fire_sell(s: NetworkState, p: Params, f: np.ndarray) -> np.ndarray:
    """The failed banks' (``f`` = 1) units are fire-sold: prices fall, then the (B, N) proceeds
    are valued at the new prices (the units leave their books when they are zeroed)."""
    sold_units = s.units * f[..., None]
    fire_sale_prices(s, over_banks(f, s.units) * s.price, p.fire_sale_impact)
    return value(sold_units, s.price)


def _pay_creditors(
    s: NetworkState, failed: _Failed, recovery: np.ndarray, survive: np.ndarray
) -> np.ndarray:
    """(W, N) what each bank receives from failed debtors, ``sum_q recovery_q * claim``; the
    survivors are paid in cash now (failed creditors' receipts enter their estates)."""
    share = recovery[failed.sub_world, failed.bank][:, None]
    received = failed.by_world(failed.lent_to * share, len(recovery))
    s.cash += received * survive
    return received


def _call_loans(
    s: NetworkState,
    failed: _Failed,
    owed_to_failed: np.ndarray,
    survive: np.ndarray,
    rec: StepRecord,
    worlds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Survivors repay their loans from failed banks in full, from cash then forced sales.

    Returns (W, N) what each failed bank collected (each debtor pays every failed creditor the
    same fraction of what it owes it) and the survivors that could not pay in full."""
    demand = owed_to_failed * survive
    paid = raise_cash(s, demand, None, rec, "resolution", worlds)
    phi = np.divide(paid, demand, out=np.ones_like(paid), where=demand > 0)
    collected = np.zeros_like(demand)
    collected[failed.sub_world, failed.bank] = (
        failed.lent_by * (phi * survive)[failed.sub_world]
    ).sum(axis=1)
    short = survive & (demand - paid > TOL * np.maximum(1.0, demand))
    return collected, short


def _estate(
    s: NetworkState,
    p: Params,
    f: np.ndarray,
    recovery: np.ndarray,
    liab: np.ndarray,
    proceeds: np.ndarray,
    received: np.ndarray,
    collected: np.ndarray,
) -> dict[str, np.ndarray]:
    """The failed banks' estates, (W, N) each (zero for the others): what comes in (cash and
    sale proceeds, external assets at alpha, interbank collections), the default costs, what is
    paid out (``recovery * (interbank liabilities + deposits)``), the residual and the net flow
    to the outside."""
    liquid = (s.cash + proceeds) * f
    external = p.clearing_alpha * s.external * f
    interbank_in = collected + received * f
    costs = (1.0 - p.clearing_alpha) * np.maximum(liquid, 0.0) + (
        1.0 - p.clearing_beta
    ) * interbank_in
    estate_in = liquid + external + interbank_in - costs
    rf = recovery * f
    estate_out = rf * (liab + s.deposits)
    residual = (estate_in - estate_out) * f
    to_depositors = rf * s.deposits
    return {
        "creditor_loss": (1.0 - recovery) * f * (liab + s.deposits),
        "fire_sale_proceeds": proceeds,
        "default_costs": costs,
        "residual": residual,
        "outside_flow": costs + to_depositors + residual - proceeds - external,
    }


def _close_books(
    s: NetworkState,
    loans: np.ndarray,
    failed: _Failed,
    fell: np.ndarray,
    lent_to_failed: np.ndarray,
    owed_to_failed: np.ndarray,
) -> None:
    """Zero the failed banks' books and their loans both ways, keeping the derived interbank
    arrays in sync; mark them dead."""
    loans[failed.world, failed.bank, :] = 0.0
    loans[failed.world, :, failed.bank] = 0.0
    s.ib_assets -= lent_to_failed
    s.ib_liab -= owed_to_failed
    s.ib_assets[fell] = 0.0
    s.ib_liab[fell] = 0.0
    if len(fell) == len(loans):  # the whole state: its cached slot index
        cp_flat = s.slot_index.bank
    else:
        cp_flat = np.arange(len(fell))[:, None, None] * fell.shape[1] + np.maximum(s.slots, 0)
    touched = fell.ravel().take(cp_flat) | fell[..., None]
    s.slot_lent[touched] = 0.0
    s.slot_borrowed[touched] = 0.0
    keep = ~fell
    for arr in (s.cash, s.external, s.deposits):
        arr *= keep
    s.units *= keep[..., None]
    s.basis *= keep[..., None]
    s.alive &= keep


def _record(
    rec: StepRecord,
    s: NetworkState,
    failed: _Failed,
    round_: _Round,
    columns: dict[str, np.ndarray],
) -> None:
    """One ``default`` event per failed bank (its (W, N) ``columns``), one ``cascade`` per world."""
    at = {"cause": round_.cause_names[round_.cause.ravel()[failed.flat]]}
    for name in (
        "equity",
        "recovery",
        "creditor_loss",
        "fire_sale_proceeds",
        "default_costs",
        "residual",
        "outside_flow",
    ):
        at[name] = columns[name].ravel()[failed.flat]
    n = len(failed.world)
    rec.add_rows(
        "default", world=failed.world, bank=failed.bank, round=np.full(n, round_.number), **at
    )
    uw = np.unique(failed.sub_world)  # the cascade's banks are this round's `default` rows
    rec.add_rows(
        "cascade",
        world=round_.worlds[uw],
        round=np.full(len(uw), round_.number),
        prices=s.price[uw],
    )
