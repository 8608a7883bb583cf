"""Defaults and the cascade (step 7): find who fails, liquidate, clear the estates, repeat.

Each round, in the worlds where some live bank is insolvent (equity at the marks below
``-TOL * max(1, E0)``) or forced to default (it could not pay a loan call, a deposit run or its
interest; or it is removed):

1. **Who fails.** The Rogers–Veraart / Eisenberg–Noe clearing (``rudra_env.core.clearing``)
   over interbank loans and deposits (pari passu), each bank's outside value being
   ``cash + market value at the marks + external``, finds the banks that fail with them
   through credit contagion. All of them fail this round.
2. **Liquidation.** The failed banks' units are sold in one auction per market (the fire sale:
   prices fall, the survivors' marks with them); their external assets are sold to the outside
   at ``alpha`` of book; their loans to survivors are called in full: survivors pay from cash,
   then by forced sales. A survivor that cannot pay in full fails in the same round (illiquid)
   and is liquidated in turn; what it still owes stays a claim among the failed banks.
3. **Estates cleared on what they realised.** Failed bank j holds ``e_j = alpha * (cash + sale
   proceeds + external) + beta * collected`` and owes ``pbar_j`` = the interbank liabilities it
   still has + deposits. The failed banks pay each other and their other creditors by the
   greatest clearing vector of ``p_j = min(pbar_j, max(0, e_j + beta * sum_k L[k, j] p_k /
   pbar_k))`` over the failed banks k (``clear`` on the failed banks' sub-network). Creditors —
   survivors, depositors, other failed banks — receive ``recovery_j = p_j / pbar_j`` of their
   claims (loss given default ``1 - recovery_j``). What an estate keeps beyond ``p_j``
   (``residual`` >= 0: a bank that failed solvent) goes to its shareholders outside; default
   costs ``(1 - alpha) * (cash + proceeds)`` and ``(1 - beta) * interbank collections`` are paid
   to the outside, and ``(1 - alpha) * external`` is lost in the sale. Nobody outside pays for a
   default: the estate's payments are what it realised, by construction.
4. The failed banks' books are zeroed; survivors are re-marked at the new prices, and the loop
   repeats until no new default (at most ``max_cascade_rounds``). Each round is a ``cascade``
   event; each failed bank a ``default`` event whose ``outside_flow`` is the net cash it sent
   to the outside (costs, depositors, shareholders, less what the outside paid for its units
   and external assets).

Shapes: B worlds, N banks; W affected worlds of a round; F failed banks of a round (compact
rows). A round works on a sub-state of the affected worlds that leaves ``loans`` out: it reads
and updates only the failed banks' rows and columns of the full (B, N, N) ``loans``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rudra_env.core.arrays import TOL, entries, sum_rows, value
from rudra_env.core.clearing import clear
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import auction, raise_cash
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, balance_sheet

__all__ = ["CAUSES", "remove_banks", "resolve_defaults"]

CAUSES = ("illiquid", "removed", "insolvent", "contagion")
"""Default causes: could not pay (a loan call, a deposit run, interest, a failed bank's call),
removed by an intervention, equity below zero at the marks, failed through the clearing."""


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
    bs = balance_sheet(s)
    for rnd in range(1, p.max_cascade_rounds + 1):
        if rnd > 1:
            bs = balance_sheet(s)
        insolvent = bs["equity"] < -TOL * np.maximum(1.0, s.equity0)
        new = (insolvent | forced) & s.alive
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
        # Cause code per bank, an index into CAUSES; named in the events for the failed only.
        cause = np.where(
            forced[w] & sub.alive,
            CAUSES.index(cause_forced),
            np.where(insolvent[w], CAUSES.index("insolvent"), CAUSES.index("contagion")),
        )
        forced[:] = False
        round_ = _Round(worlds=w, number=rnd, cause=cause)
        fell, hit_w = settle(sub, s.loans, p, fell, sub_bs, round_, rec)
        if not whole:
            s.put(w, sub)
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
    """(W, N) cause code per bank, an index into ``CAUSES`` (updated for banks that fail
    during the round's liquidation)."""


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
    bs: dict[str, np.ndarray],
    round_: _Round,
    rec: StepRecord,
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the failed banks ``fell`` (W, N) of sub-state ``s`` (worlds ``round_.worlds`` of
    the full state, whose (B, N, N) ``loans`` this reads and updates; ``s.loans`` is unused).

    Liquidation runs until no debtor fails it: a survivor that cannot pay a failed bank's call
    in full fails in this round too (illiquid), is liquidated in turn, and what it still owes
    stays a claim in the failed banks' clearing. Returns every bank that failed this round and
    the banks linked by a loan, either way, to one of them (for beliefs). A round with F
    failures costs O(F N) reads of the loans, not passes over them.
    """
    w = len(fell)
    fell = fell.copy()
    linked = np.zeros_like(fell)
    proceeds = np.zeros(fell.shape)
    collected = np.zeros(fell.shape)
    newly = fell
    while np.count_nonzero(newly):
        batch = _Failed.gather(newly, loans, round_.worlds)
        linked |= (batch.by_world(batch.lent_to, w) + batch.by_world(batch.lent_by, w)) > 0
        proceeds += _liquidate(s, p, newly)
        got, newly = _call_loans(s, p, loans, batch, s.alive & ~fell, rec, round_.worlds)
        collected += got
        fell |= newly
        round_.cause[newly] = CAUSES.index("illiquid")
    f = fell.astype(np.float64)
    failed = _Failed.gather(fell, loans, round_.worlds)
    estate = _Estate.of(s, p, f, proceeds, collected)
    recovery = _clear_estates(s, loans, round_.worlds, fell, estate, p.clearing_beta)
    share = recovery[failed.sub_world, failed.bank][:, None]
    received = failed.by_world(failed.lent_to * share, w)
    s.cash += received * ~fell
    columns = estate.close(s, f, recovery, received)
    s.outside += columns["outside_flow"].sum(axis=1)
    _close_books(s, loans, failed, fell)
    s.default_step[failed.sub_world, failed.bank] = s.t[failed.sub_world] + 1
    _record(rec, s, failed, round_, {"equity": bs["equity"], "recovery": recovery, **columns})
    return fell, linked


def _liquidate(s: NetworkState, p: Params, fell: np.ndarray) -> np.ndarray:
    """The failed banks sell all their units in one auction per market (the fire sale); the
    (W, N) proceeds go to their cash. The outside's side is booked with the estate."""
    units = s.units * fell[..., None]
    fill = auction(s, p, np.zeros_like(s.price), units.sum(axis=1))
    proceeds = value(units, fill)
    s.cash += proceeds
    s.units -= units
    s.basis *= ~fell[..., None]
    return proceeds


def _call_loans(
    s: NetworkState,
    p: Params,
    loans: np.ndarray,
    creditors: _Failed,
    survive: np.ndarray,
    rec: StepRecord,
    worlds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Survivors repay their loans from the failed ``creditors`` in full, from cash then forced
    sales; a debtor that cannot pays every such creditor the same fraction of what it owes it.
    The paid part leaves ``loans`` (and the interbank totals); the rest stays owed.

    Returns (W, N) what each failed creditor collected, and the survivors that could not pay
    in full."""
    w = len(survive)
    demand = creditors.by_world(creditors.lent_by, w) * survive
    paid = raise_cash(s, p, demand, rec, "resolution", worlds)
    share = np.divide(paid, demand, out=np.zeros_like(paid), where=demand > 0)
    repaid = creditors.lent_by * share[creditors.sub_world]  # (F, N): [q, k] k paid q
    collected = np.zeros_like(demand)
    collected[creditors.sub_world, creditors.bank] = repaid.sum(axis=1)
    loans[creditors.world, creditors.bank, :] -= repaid
    s.cash += collected
    s.ib_liab -= paid
    s.ib_assets -= collected
    short = survive & (demand - paid > TOL * np.maximum(1.0, demand))
    return collected, short


@dataclass(frozen=True)
class _Estate:
    """What each failed bank realised, (W, N) each (zero for the others)."""

    liquid: np.ndarray
    """Cash, sale proceeds included (collections from survivors excluded)."""
    proceeds: np.ndarray
    """Of which the fire sale of its units."""
    external: np.ndarray
    """Book value of its external assets, sold at ``alpha``."""
    collected: np.ndarray
    """Paid in by survivors on its called loans."""
    value: np.ndarray
    """``alpha * (liquid + external) + beta * collected``: what it has for its creditors before
    what other failed banks pay it."""
    alpha: float
    beta: float

    @classmethod
    def of(
        cls, s: NetworkState, p: Params, f: np.ndarray, proceeds: np.ndarray, collected: np.ndarray
    ) -> _Estate:
        liquid = (s.cash - collected) * f
        external = s.external * f
        a, b = p.clearing_alpha, p.clearing_beta
        return cls(
            liquid=liquid,
            proceeds=proceeds * f,
            external=external,
            collected=collected,
            value=a * (liquid + external) + b * collected,
            alpha=a,
            beta=b,
        )

    def close(
        self, s: NetworkState, f: np.ndarray, recovery: np.ndarray, received: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The estates' accounts once the failed banks are paid ``received`` by each other and
        pay ``recovery`` of their debts: the ``default`` event's columns."""
        liab = (s.ib_liab + s.deposits) * f
        from_failed = received * f
        paid = recovery * liab
        residual = (self.value + self.beta * from_failed - paid) * f
        costs_cash = (1.0 - self.alpha) * self.liquid + (1.0 - self.beta) * (
            self.collected + from_failed
        )
        return {
            "creditor_loss": liab - paid,
            "fire_sale_proceeds": self.proceeds,
            "default_costs": costs_cash + (1.0 - self.alpha) * self.external,
            "residual": residual,
            "outside_flow": costs_cash
            + recovery * s.deposits * f
            + residual
            - self.alpha * self.external
            - self.proceeds,
        }


def _clear_estates(
    s: NetworkState,
    loans: np.ndarray,
    worlds: np.ndarray,
    fell: np.ndarray,
    estate: _Estate,
    beta: float,
) -> np.ndarray:
    """(W, N) recovery ``p_j / pbar_j`` of each failed bank (1 elsewhere): the greatest clearing
    vector of the failed banks' sub-network, ``p = min(pbar, max(0, e + beta * Pi^T p))`` with
    every failed bank a payer from the start (``clear`` on liabilities scaled by ``beta``, with
    ``alpha = beta = 1`` there, computes exactly this)."""
    w, n = fell.shape
    counts = fell.sum(axis=1)
    d = int(counts.max())
    order = np.argsort(~fell, axis=1, kind="stable")[:, :d]  # failed banks first, (W, d)
    used = np.arange(d)[None, :] < counts[:, None]
    rows = np.arange(w)[:, None]
    idx = np.where(used, order, 0)
    world = worlds[:, None, None]
    # owes[w, a, c]: what failed bank a owes failed bank c = loans[c, a]
    owes = loans[world, idx[:, None, :], idx[:, :, None]] * (used[:, :, None] & used[:, None, :])
    pbar = np.where(used, (s.ib_liab + s.deposits)[rows, idx], 0.0)
    e = np.where(used, estate.value[rows, idx], 0.0)
    cleared = clear(
        beta * owes,
        e,
        np.maximum(pbar - owes.sum(axis=2), 0.0),
        1.0,
        1.0,
        obligations=pbar,
        full_receipts=beta * owes.sum(axis=1),
    )
    recovery = np.ones((w, n))
    wi, ki = np.nonzero(used)
    recovery[wi, idx[wi, ki]] = cleared.recovery[wi, ki]
    return recovery


def _close_books(s: NetworkState, loans: np.ndarray, failed: _Failed, fell: np.ndarray) -> None:
    """Zero the failed banks' books and their loans both ways, keeping the derived interbank
    arrays in sync; mark them dead."""
    w = len(fell)
    s.ib_assets -= failed.by_world(failed.lent_to, w)  # survivors' claims on failed banks
    s.ib_liab -= failed.by_world(failed.lent_by, w)  # what is still owed to failed banks
    loans[failed.world, failed.bank, :] = 0.0
    loans[failed.world, :, failed.bank] = 0.0
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
    at = {"cause": np.array(CAUSES)[round_.cause.ravel()[failed.flat]]}
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
