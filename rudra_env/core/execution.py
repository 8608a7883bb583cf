"""Execution of the banks' actions (step 2), and the action masks.

Each live bank submits one flat action (``rudra_env.actions``). The actions are simultaneous and
order-free (no bank is favoured); they execute in two phases:

1. **Trades**, out of what each bank held at the start of the step:
   * INVEST spends ``f * cash_i`` on market m and DIVEST sells ``f * units[i, m]`` (``basis``
     shrinks by the same fraction); all of a market's orders meet in one batch auction and fill
     at one price, the average along the net order's price impact
     (``rudra_env.core.markets.auction``); the net is bought from or sold to the outside;
   * LEND moves ``f * cash_i`` to the counterparty j in the slot: ``cash_i -= x``,
     ``loans[i, j] += x``, ``cash_j += x``.
2. **Loan calls**: BORROW calls back ``f * loans[i, j]``. Each debtor pays all calls on it from
   cash, then by selling the same fraction of each position through the market (a
   ``forced_sale``); if it still falls short, every caller gets the same fraction of its call
   and the debtor is in *liquidity default* (it defaults in the cascade).

``f`` is the action's size level. An action is valid when its kind's rule (``RULES``) holds
(``TOL`` = 1e-9: amounts below it are what rounding leaves after paying out everything):

======  =================================================================================
kind    valid when (besides the bank being alive)
======  =================================================================================
HOLD    always
LEND    cash > TOL, the slot holds a live counterparty, no funding freeze
BORROW  more than TOL is lent to the slot's counterparty, which is alive
INVEST  cash > TOL
DIVEST  units held in the market > TOL
======  =================================================================================

A masked-out action that is submitted anyway executes as HOLD and is flagged ``invalid``. The
same rules give ``action_masks``. Shapes: B worlds, N banks, M markets, K slots; F orders (the
live banks' non-HOLD actions, as compact rows grouped by kind, in bank order within a kind).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rudra_env.actions import BORROW, DIVEST, HOLD, INVEST, KINDS, LEND
from rudra_env.core.arrays import TOL
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import auction, raise_cash
from rudra_env.core.params import Params
from rudra_env.core.scenario import funding_frozen
from rudra_env.core.state import NetworkState

__all__ = ["RULES", "Execution", "Orders", "action_masks", "execute"]


# ------------------------------------------------------------------------------ validity
class Facts(NamedTuple):
    """What the validity rules read, per order (F,) or per (bank, target) block (B, N, T)."""

    cash: np.ndarray
    """The bank's cash."""
    lent: np.ndarray
    """What the bank lent to the slot's counterparty."""
    units: np.ndarray
    """Units the bank holds in the market."""
    counterparty_live: np.ndarray
    """The slot holds a counterparty and it is alive."""
    frozen: np.ndarray | np.bool_
    """A funding freeze is on in the bank's world."""

    def rows(self, rows: slice) -> Facts:
        """The facts of some orders (per-order facts only)."""
        return Facts(*(f if np.ndim(f) == 0 else f[rows] for f in self))


def _always(q: Facts) -> np.bool_:
    return np.True_  # broadcasts wherever a rule's result is used


def _lend_ok(q: Facts) -> np.ndarray:
    return (q.cash > TOL) & q.counterparty_live & ~q.frozen


def _borrow_ok(q: Facts) -> np.ndarray:
    return (q.lent > TOL) & q.counterparty_live


def _invest_ok(q: Facts) -> np.ndarray:
    return q.cash > TOL


def _divest_ok(q: Facts) -> np.ndarray:
    return q.units > TOL


# ------------------------------------------------------------------------------ orders
_CODES = np.array([k.code for k in KINDS])
"""(kinds,) every kind's code, ascending."""


@dataclass(slots=True)
class Orders:
    """The live banks' non-HOLD actions of one step as compact rows, grouped by kind (in code
    order) and in bank order within a kind, so that each kind's orders are one slice
    (``of_kind``). Indices are flat into the state's C-contiguous arrays, so
    ``arr.ravel()[index]`` gathers a view's entries."""

    bank: np.ndarray
    """(F,) flat (world, bank)."""
    action: np.ndarray
    """(F,) flat action."""
    kind: np.ndarray
    """(F,) kind code (ascending)."""
    fraction: np.ndarray
    """(F,) size level as a fraction."""
    slot: np.ndarray
    """(F,) flat (world, bank, slot) of the targeted slot (slot 0 for market kinds)."""
    counterparty: np.ndarray
    """(F,) flat (world, bank) of the slot's counterparty."""
    position: np.ndarray
    """(F,) flat (world, bank, market) of the targeted market (market 0 for slot kinds)."""
    world_market: np.ndarray
    """(F,) flat (world, market)."""
    market: np.ndarray
    """(F,) market index (0 for slot kinds)."""
    of_kind: tuple[slice, ...]
    """The rows of each kind, by code."""
    bank_order: np.ndarray
    """(F,) each row's place among the orders in bank order (``in_bank_order`` puts it there)."""

    @classmethod
    def gather(cls, s: NetworkState, p: Params, actions: np.ndarray) -> Orders:
        b, n, m = s.shape
        tab = p.action_table
        flat = actions.ravel()
        submitted = (s.alive.ravel() & (flat != HOLD)).nonzero()[0]  # in bank order
        by_kind = tab.kind[flat[submitted]].argsort(kind="stable")
        bank = submitted[by_kind]
        act = flat[bank]
        kind = tab.kind[act]
        starts = kind.searchsorted(_CODES).tolist()
        slot = bank * p.K + tab.slot[act]
        market = tab.market[act]
        return cls(
            bank=bank,
            action=act,
            kind=kind,
            fraction=tab.fraction[act],
            slot=slot,
            counterparty=s.slot_index.bank.ravel()[slot],
            position=bank * m + market,
            world_market=(bank // n) * m + market,
            market=market,
            of_kind=tuple(map(slice, starts, [*starts[1:], len(kind)])),
            bank_order=by_kind,
        )

    def in_bank_order(self, x: np.ndarray) -> np.ndarray:
        """``x`` (F,), one value per row, rearranged into bank order."""
        out = np.empty_like(x)
        out[self.bank_order] = x
        return out

    def facts(self, s: NetworkState, p: Params) -> Facts:
        """What the validity rules read, per order."""
        si = s.slot_index
        frozen: np.ndarray | np.bool_ = np.False_
        if p.funding_freezes:
            frozen = funding_frozen(s, p)[self.bank // s.shape[1]]
        return Facts(
            cash=s.cash.ravel()[self.bank],
            lent=s.slot_lent.ravel()[self.slot],
            units=s.units.ravel()[self.position],
            counterparty_live=si.valid.ravel()[self.slot] & s.alive.ravel()[self.counterparty],
            frozen=frozen,
        )


@dataclass(slots=True)
class Execution:
    """What step 2 produced and what its executors share."""

    orders: Orders
    """The valid orders."""
    facts: Facts
    """Their facts at the start of the step (cash, loans and units before any trade)."""
    amount: np.ndarray
    """(F,) currency amount of each order (filled by the executors)."""
    outside_flow: np.ndarray
    """(F,) cash each order moved out of the banking system (INVEST +, DIVEST -)."""
    illiquid: np.ndarray
    """(B, N) debtors that could not pay the loans called from them."""
    invalid: np.ndarray
    """(B, N) submitted actions that were masked out (executed as HOLD)."""
    executed: np.ndarray
    """(B, N) the action each bank executed (HOLD where invalid)."""


# ------------------------------------------------------------------------------ executors
def _trade_markets(s: NetworkState, p: Params, ex: Execution, rows: slice, rec) -> None:
    """INVEST and DIVEST orders (``rows``: the INVEST rows, then the DIVEST rows): one auction
    per market; buyers spend ``f * cash``, sellers deliver ``f * units``, all at the auction's
    fill price."""
    o = ex.orders
    buy, sell = o.of_kind[INVEST], o.of_kind[DIVEST]
    spend = o.fraction[buy] * ex.facts.cash[buy]
    units_sold = o.fraction[sell] * ex.facts.units[sell]
    fill = auction(
        s,
        p,
        _per_world_market(s, o.world_market[buy], spend),
        _per_world_market(s, o.world_market[sell], units_sold),
    ).ravel()
    got = units_sold * fill[o.world_market[sell]]
    s.units.ravel()[o.position[sell]] -= units_sold
    s.basis.ravel()[o.position[sell]] *= 1.0 - o.fraction[sell]
    s.cash.ravel()[o.bank[sell]] += got
    s.cash.ravel()[o.bank[buy]] -= spend
    s.units.ravel()[o.position[buy]] += spend / fill[o.world_market[buy]]
    s.basis.ravel()[o.position[buy]] += spend
    ex.amount[buy], ex.amount[sell] = spend, got
    ex.outside_flow[buy], ex.outside_flow[sell] = spend, -got


def _lend(s: NetworkState, p: Params, ex: Execution, rows: slice, rec) -> None:
    o = ex.orders
    amount = o.fraction[rows] * ex.facts.cash[rows]
    s.cash.ravel()[o.bank[rows]] -= amount
    into = _per_bank(s, o.counterparty[rows], amount)
    s.cash += into
    s.ib_liab += into
    ex.amount[rows] = amount  # the loan itself moves after the calls (``LOAN_SIGN``)


def _call(s: NetworkState, p: Params, ex: Execution, rows: slice, rec) -> None:
    o = ex.orders
    due = o.fraction[rows] * ex.facts.lent[rows]
    debtor = o.counterparty[rows]
    demand = _per_bank(s, debtor, due)
    paid = raise_cash(s, p, demand, rec, "loan_call")
    if paid is demand:  # everybody paid in full from cash
        amount, repaid = due, demand  # the same sum of the same dues
    else:
        share = np.divide(paid, demand, out=np.ones_like(paid), where=demand > 0)
        amount = due * share.ravel()[debtor]
        repaid = _per_bank(s, debtor, amount)
        ex.illiquid |= demand - paid > TOL * np.maximum(1.0, demand)
    s.cash.ravel()[o.bank[rows]] += amount
    s.ib_liab -= repaid
    ex.amount[rows] = amount  # the loan itself moves after the calls (``LOAN_SIGN``)


def _per_bank(s: NetworkState, flat_bank: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """(B, N) sums of ``amount`` by flat (world, bank), added in row order."""
    b, n, _ = s.shape
    return np.bincount(flat_bank, weights=amount, minlength=b * n).reshape(b, n)


def _per_world_market(s: NetworkState, flat: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """(B, M) sums of ``amount`` by flat (world, market), added in row order."""
    b, _, m = s.shape
    return np.bincount(flat, weights=amount, minlength=b * m).reshape(b, m)


def _move_loans(s: NetworkState, bank: np.ndarray, slot: np.ndarray, delta: np.ndarray) -> None:
    """loans[lender, slot counterparty] += delta (one entry per lender) with ``ib_assets``,
    ``slot_lent`` and ``slot_borrowed`` kept in sync (the caller updates ``ib_liab``).

    ``bank`` is the lender's flat (world, bank) index and ``slot`` the flat (world, bank, slot)
    index of its slot. Lenders are distinct, so every scatter below hits distinct entries.
    """
    si = s.slot_index
    s.loans.ravel()[si.out.ravel()[slot]] += delta
    s.ib_assets.ravel()[bank] += delta
    s.slot_lent.ravel()[slot] += delta
    mirror = si.mirror.ravel()[slot]
    seen = mirror >= 0
    s.slot_borrowed.ravel()[mirror[seen]] += delta[seen]


Executor = Callable[[NetworkState, Params, Execution, slice, StepRecord], None]


class Rule(NamedTuple):
    """The core's half of an action kind: when it is valid, and how it executes."""

    valid: Callable[[Facts], np.ndarray | np.bool_]
    execute: Executor | None


RULES: dict[int, Rule] = {
    HOLD: Rule(_always, None),
    LEND: Rule(_lend_ok, _lend),
    BORROW: Rule(_borrow_ok, _call),
    INVEST: Rule(_invest_ok, _trade_markets),
    DIVEST: Rule(_divest_ok, _trade_markets),
}
"""Validity rule and executor of every kind in ``rudra_env.actions.KINDS`` (kinds that share an
executor run together: INVEST and DIVEST meet in one auction)."""

PHASES: tuple[Executor, ...] = (_trade_markets, _lend, _call)
"""Executors in execution order: trades with the market and loans out of the start-of-step
holdings, then loan calls out of what the debtors hold after them."""

if set(RULES) != {k.code for k in KINDS} or {r.execute for r in RULES.values()} - {None} != set(
    PHASES
):
    raise ImportError("every action kind needs a rule in RULES whose executor is in PHASES")

_PHASE_KINDS = tuple(
    [k.code for k in KINDS if RULES[k.code].execute is executor] for executor in PHASES
)
"""The kind codes each phase's executor runs: consecutive codes, so that a phase's orders
(grouped by kind) are one slice."""

if any(codes != list(range(codes[0], codes[-1] + 1)) for codes in _PHASE_KINDS):
    raise ImportError("the kinds that share an executor need consecutive codes")

LOAN_SIGN = np.zeros(len(KINDS))
"""(kinds,) how an order moves the loan in its slot: ``loans[bank, slot] += sign * amount``
(+1 for LEND, -1 for BORROW, which repays; 0 for the market kinds). Loans move once, after
every executor has run (no executor reads them)."""
LOAN_SIGN[[LEND, BORROW]] = (1.0, -1.0)

_ON_SLOT = np.array([k.target == "slot" for k in KINDS])
"""(kinds,) the kind targets a counterparty slot (else a market or nothing)."""


# ------------------------------------------------------------------------------ step 2
def execute(
    s: NetworkState,
    p: Params,
    actions: np.ndarray,
    rec: StepRecord,
    masks: np.ndarray | None = None,
) -> Execution:
    """Step 2: validate the orders (by the rules, or from this state's ``action_masks`` when
    given: the same rules, already evaluated), then run the executors phase by phase."""
    b, n, _ = s.shape
    orders = Orders.gather(s, p, actions)
    facts = orders.facts(s, p)
    if masks is None:
        ok = np.empty(len(orders.kind), dtype=bool)
        for code, rows in enumerate(orders.of_kind):  # each kind's rule on its own orders
            ok[rows] = RULES[code].valid(facts.rows(rows))
    else:
        ok = masks.reshape(-1)[orders.bank * p.layout.n + orders.action] != 0
    invalid = np.zeros((b, n), dtype=bool)
    if np.count_nonzero(ok) < len(ok):  # masked-out orders execute as HOLD
        invalid.ravel()[orders.bank[~ok]] = True
        orders = Orders.gather(s, p, np.where(invalid, HOLD, actions))
        facts = orders.facts(s, p)
    executed = np.zeros((b, n), dtype=np.int64)
    executed.ravel()[orders.bank] = orders.action
    ex = Execution(
        orders=orders,
        facts=facts,
        amount=np.zeros(len(orders.bank)),
        outside_flow=np.zeros(len(orders.bank)),
        illiquid=np.zeros((b, n), dtype=bool),
        invalid=invalid,
        executed=executed,
    )
    for executor, codes in zip(PHASES, _PHASE_KINDS, strict=True):
        rows = slice(orders.of_kind[codes[0]].start, orders.of_kind[codes[-1]].stop)
        if rows.start < rows.stop:
            executor(s, p, ex, rows, rec)
    sign = LOAN_SIGN[orders.kind]
    moves = sign.nonzero()[0]
    if len(moves):
        _move_loans(s, orders.bank[moves], orders.slot[moves], sign[moves] * ex.amount[moves])
    world, bank = np.divmod(orders.in_bank_order(orders.bank), n)
    outside_flow = orders.in_bank_order(ex.outside_flow)
    s.outside += np.bincount(world, weights=outside_flow, minlength=b)  # added in bank order
    _record_transactions(s, ex, world, bank, outside_flow, rec)
    return ex


def _record_transactions(
    s: NetworkState,
    ex: Execution,
    world: np.ndarray,
    bank: np.ndarray,
    outside_flow: np.ndarray,
    rec: StepRecord,
) -> None:
    """One ``transaction`` row per executed order, in bank order (``world``, ``bank`` and
    ``outside_flow`` are already in it)."""
    o = ex.orders
    rec.add_rows(
        "transaction",
        world=world,
        bank=bank,
        kind=o.in_bank_order(o.kind),
        target=o.in_bank_order(np.where(_ON_SLOT[o.kind], s.slots.ravel()[o.slot], o.market)),
        size=o.in_bank_order(o.fraction),
        amount=o.in_bank_order(ex.amount),
        outside_flow=outside_flow,
    )


# ------------------------------------------------------------------------------ masks
def action_masks(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, N, A) int8: 1 where the action is valid now (HOLD for every live bank; nothing for
    the dead). The rules are ``RULES``, as in execution; ``bs`` is accepted for symmetry with
    ``observe`` and unused."""
    si = s.slot_index
    alive = s.alive
    frozen: np.ndarray | np.bool_ = np.False_
    if p.funding_freezes:
        frozen = funding_frozen(s, p)[:, None, None]
    facts = Facts(
        cash=s.cash[..., None],
        lent=s.slot_lent,
        units=s.units,
        counterparty_live=si.valid & alive.ravel()[si.bank],
        frozen=frozen,
    )
    starts, spread = _blocks(p.layout)
    blocks = np.empty((*alive.shape, starts[-1]), dtype=bool)  # one column per (kind, target)
    for k in KINDS:
        blocks[..., starts[k.code] : starts[k.code + 1]] = RULES[k.code].valid(facts)
    if np.count_nonzero(alive) < alive.size:
        blocks[~alive] = False  # the dead have no valid action
    return blocks[..., spread].view(np.int8)


@functools.cache
def _blocks(layout) -> tuple[list[int], np.ndarray]:
    """First block column of each kind (one column per target; a final end), and the block
    column behind each flat action (each column repeated over the S size levels, HOLD once)."""
    starts, cols = [0], []
    for k in KINDS:
        t = layout.targets(k.code)
        reps = 1 if k.target == "none" else layout.S
        cols.append(np.repeat(np.arange(starts[-1], starts[-1] + t), reps))
        starts.append(starts[-1] + t)
    return starts, np.concatenate(cols)
