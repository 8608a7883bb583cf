"""The model of one RUDRA step, written for reading: a plain per-bank reference of the batched core.

``reference_step(state, actions, cfg, noise)`` advances every world of a ``NetworkState`` by one
step, one world at a time, with Python loops over banks, counterparty slots and markets and the
balance-sheet arithmetic spelled out. It reads every model parameter from the ``EnvConfig`` and
touches nothing of ``rudra_env`` beyond the state's public fields: it decodes the flat actions
itself, runs its own batch auctions (solving their fixed points by bisection and by plain
iteration) and clears the interbank network with its own fictitious-default algorithm.

It is the specification the fast core (``rudra_env.core.step``) must match: a differential test
(``tests/core/test_reference_step.py``) runs both on fuzzed states and compares every field of
the new state, the step outputs and the events. Optimise the core freely; when the two disagree,
decide here, in plain code, which behaviour is the model.

Markets. Each market has a fundamental price ``F`` (moved only by drift, noise and shocks), an
anchor ``A = F * (1 + k)`` the market price reverts to (``k``: the ``permanent`` impact) and a
market price ``P = A * (1 + d)``.
Every trade goes through one batch auction per market: a net order of ``q`` units (buys - sells)
moves the price along ``P + lambda * q`` (``lambda = impact * price0^2 / depth``), stopping at
the floor ``PRICE_FLOOR * F``; everyone fills at the average price of that path (the VWAP). The
anchor follows a share ``p = permanent_share`` of the move: ``A *= (P_after / P)^p``. Positions
are marked at ``min(P, F)``. Banks that must sell "the same fraction of each position" sell a
fraction found jointly with the auction's fill (``sell_pro_rata``); debtors pay from cash, then
that way (``raise_cash``).

Step order (one world; ``t`` is the state's step counter and the step taken is ``t + 1``):

1. Scenario: shocks active at step ``t + 1`` (market crash on price and fundamental, capital
   hit, deposit run paid through ``raise_cash``, funding freeze) and interventions scheduled for
   it (capital injection, bank removal). A removal runs the whole cascade of step 7 at once, in
   that world.
2. Actions: one per live bank, simultaneous. Masked-out actions execute as HOLD and are flagged
   invalid. INVEST (a fraction of cash) and DIVEST (a fraction of units) of one market meet in
   one auction; LEND moves a fraction of cash to the counterparty; then every BORROW calls back
   a fraction of a loan and each debtor pays all calls on it through ``raise_cash``; a debtor
   that still falls short pays every caller the same fraction and is in liquidity default.
3. Markets reprice: ``F *= exp(clip(drift + sigma * eps - sigma^2 / 2))`` (circuit breaker), the
   displacement ``d`` decays by ``0.5^(1 / half_life)``.
4. Interest on interbank loans through ``raise_cash``; lenders get the share paid; a borrower
   that cannot pay it all is in liquidity default.
5. Profit booking every ``profit_booking_interval`` steps: gains (at the marks) sold through an
   auction, losses booked; basis reset to the value at the new marks.
6. Margin calls with a volatility term that already counts this step's price move; short banks
   sell ``phi = min(1, gap / (v + req))`` of each position, jointly with the fill.
7. Defaults and cascade rounds: who fails by the Rogers–Veraart clearing at the marks; the
   failed banks' units sold in one auction; their loans to survivors called (``raise_cash``);
   the estates cleared among the failed banks on what they realised; recoveries paid; books
   zeroed; re-mark, repeat until no bank fails.
8. Beliefs: Bayes on a noisy distress signal per slot, leak to the prior, contagion push for
   neighbours of fallen banks, dead counterparties at 1; belief cascade detection.
9. Rewards (the utility of ``rudra_env.core.reward``, recomputed here at the marks),
   ``equity_prev``, and ``last_return = log(P_end / P_start)``, ``vol2`` updated with it.

Orderings and choices the core makes where its docstrings leave room (each is stated again where
it happens):

* INVEST and LEND spend a fraction of the cash each bank held when step 2 began; loan calls are
  paid *after* every trade and LEND of the step (a debtor can pay with money lent to it);
* in ``raise_cash`` the sale's proceeds land in the debtor's cash first and it then pays
  ``min(need, max(cash, 0))``: an overdrawn debtor's sale covers its overdraft before its debt;
* an auction's fill with buyers is the solution of ``fill = VWAP(buy_value / fill - sell)``;
* margin requirements are computed once, at the marks before the sale (the joint fixed point
  is in ``phi`` only); the variance they read counts the move since the start of the step;
* in a cascade round the liquidation auction comes before the survivors' forced sales that pay
  the failed banks' calls; who fails was decided on the marks at the start of the round;
* an estate's value is ``alpha * (cash + proceeds + external) + beta * collected``, with
  ``alpha`` applied to the cash even when it is negative (an overdrawn failed bank);
* the rounds of a removal's cascade are not counted in ``cascade_rounds``.

Tolerances mirrored from the core: ``TOL = 1e-9`` (a shortfall or margin gap counts only above
it, scaled by ``max(1, amount)`` where the core scales it) and ``CLEARING_TOL = 1e-10`` (the
clearing's default test). The fixed points here are solved to about 1e-15; the core stops its
own at a relative change of 1e-13.

A removal's cascade runs only in the world that removes a bank
(``test_removal_does_not_leak_into_other_worlds``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rudra_env.config import EnvConfig
from rudra_env.core import NetworkState

__all__ = [
    "ReferenceOutput",
    "World",
    "decode_action",
    "encode_action",
    "reference_step",
    "valid_action",
    "world_of",
]

TOL = 1e-9
CLEARING_TOL = 1e-10
PRICE_FLOOR = 0.01
KIND_NAMES = ("HOLD", "LEND", "BORROW", "INVEST", "DIVEST")
_MAX_ITERATIONS = 10_000
"""Cap on the plain fixed-point iterations (they converge monotonically; a handful is usual)."""


# ----------------------------------------------------------------------------- actions
def decode_action(a: int, cfg: EnvConfig) -> tuple[str, int, float]:
    """(kind, target, size fraction) of a flat action.

    Layout, ``A = 1 + 2KS + 2MS`` (K slots, M markets, S size levels): 0 HOLD; then LEND for
    each slot and size (``1 + k*S + s``); BORROW likewise; INVEST for each market and size;
    DIVEST likewise.
    """
    k_slots, m_markets, levels = cfg.max_counterparties, len(cfg.markets), cfg.size_levels
    s_sizes = len(levels)
    if not 0 <= a < 1 + 2 * k_slots * s_sizes + 2 * m_markets * s_sizes:
        raise ValueError(f"action = {a} is outside the action space")
    if a == 0:
        return "HOLD", 0, 0.0
    rest = a - 1
    for kind, count in (
        ("LEND", k_slots),
        ("BORROW", k_slots),
        ("INVEST", m_markets),
        ("DIVEST", m_markets),
    ):
        if rest < count * s_sizes:
            target, size = divmod(rest, s_sizes)
            return kind, target, float(levels[size])
        rest -= count * s_sizes
    raise AssertionError("unreachable")


def encode_action(kind: str, target: int, size: int, cfg: EnvConfig) -> int:
    """Flat index of (kind, target, size level index); the inverse of ``decode_action``."""
    k_slots, m_markets, s_sizes = cfg.max_counterparties, len(cfg.markets), len(cfg.size_levels)
    if kind == "HOLD":
        return 0
    start = {
        "LEND": 1,
        "BORROW": 1 + k_slots * s_sizes,
        "INVEST": 1 + 2 * k_slots * s_sizes,
        "DIVEST": 1 + 2 * k_slots * s_sizes + m_markets * s_sizes,
    }[kind]
    return start + target * s_sizes + size


def funding_frozen(cfg: EnvConfig, step_no: int) -> bool:
    """A funding_freeze shock covers step ``step_no`` (it acts only through the LEND mask)."""
    return any(
        sh.type == "funding_freeze" and sh.start <= step_no < sh.start + sh.duration
        for sh in cfg.scenario.shocks
    )


# ----------------------------------------------------------------------------- one world
@dataclass
class World:
    """The books of one world as plain arrays (N banks, M markets, K slots)."""

    cash: np.ndarray
    loans: np.ndarray  # loans[i, j]: what bank i lent bank j
    units: np.ndarray
    basis: np.ndarray
    external: np.ndarray
    deposits: np.ndarray
    alive: np.ndarray
    price: np.ndarray  # market prices
    fundamental: np.ndarray  # fundamental prices
    permanent: np.ndarray  # permanent impact: prices revert to fundamental * (1 + permanent)
    price0: np.ndarray
    depth: np.ndarray
    last_return: np.ndarray
    vol2: np.ndarray
    slots: np.ndarray
    belief: np.ndarray
    equity0: np.ndarray
    equity_prev: np.ndarray
    target_leverage: np.ndarray
    risk_factor: np.ndarray
    default_step: np.ndarray
    outside: float
    t: int
    events: list[tuple[str, dict]] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return len(self.cash)

    @property
    def m(self) -> int:
        return len(self.price)

    def slot_bank(self, i: int, k: int) -> int | None:
        """The counterparty in bank i's slot k, or None for a padded slot."""
        j = int(self.slots[i, k])
        return j if j >= 0 else None

    def lent(self, i: int) -> float:
        """Interbank assets of bank i: everything it lent."""
        return float(self.loans[i, :].sum())

    def borrowed(self, i: int) -> float:
        """Interbank liabilities of bank i: everything it borrowed."""
        return float(self.loans[:, i].sum())

    def mark(self, m: int) -> float:
        """The price positions in market m are valued at: the lower of market and fundamental."""
        return min(self.price[m], self.fundamental[m])

    def market_value(self, i: int) -> float:
        """Bank i's positions at the marks."""
        return sum(self.units[i, m] * self.mark(m) for m in range(self.m))

    def assets(self, i: int) -> float:
        return self.cash[i] + self.lent(i) + self.market_value(i) + self.external[i]

    def liabilities(self, i: int) -> float:
        return self.deposits[i] + self.borrowed(i)

    def equity(self, i: int) -> float:
        return self.assets(i) - self.liabilities(i)

    def event(self, type_: str, **data) -> None:
        self.events.append((type_, data))


def world_of(state: NetworkState, b: int) -> World:
    return World(
        cash=state.cash[b].astype(np.float64).copy(),
        loans=state.loans[b].copy(),
        units=state.units[b].copy(),
        basis=state.basis[b].copy(),
        external=state.external[b].copy(),
        deposits=state.deposits[b].copy(),
        alive=state.alive[b].copy(),
        price=state.price[b].copy(),
        fundamental=state.fundamental[b].copy(),
        permanent=state.permanent[b].copy(),
        price0=state.price0[b].copy(),
        depth=state.depth[b].copy(),
        last_return=state.last_return[b].copy(),
        vol2=state.vol2[b].copy(),
        slots=state.slots[b].copy(),
        belief=state.belief[b].copy(),
        equity0=state.equity0[b].copy(),
        equity_prev=state.equity_prev[b].copy(),
        target_leverage=state.target_leverage[b].copy(),
        risk_factor=state.risk_factor[b].copy(),
        default_step=state.default_step[b].copy(),
        outside=float(state.outside[b]),
        t=int(state.t[b]),
    )


# ----------------------------------------------------------------------------- the auction
def impact_per_unit(w: World, cfg: EnvConfig, m: int) -> float:
    """lambda of market m: the price move per unit of net buying."""
    return cfg.markets[m].impact * w.price0[m] ** 2 / w.depth[m]


def path_fill(w: World, cfg: EnvConfig, m: int, q: float) -> tuple[float, float]:
    """(fill, price after) of a net order of ``q`` units (buys - sells) in market m: the price
    walks linearly from ``P`` to ``P + lambda * q`` and everybody fills at the path's average;
    a path that would go below the floor ``PRICE_FLOOR * F`` stops there, and the units beyond
    the floor fill at the floor (a price already at or below the floor is the floor)."""
    price, lam = w.price[m], impact_per_unit(w, cfg, m)
    floor = min(PRICE_FLOOR * w.fundamental[m], price)
    if q == 0:
        return price, price
    after = price + lam * q
    if after >= floor:
        return price + 0.5 * lam * q, after
    units_to_floor = (floor - price) / lam  # negative: the units sold down to the floor
    fill = (units_to_floor * 0.5 * (price + floor) + (q - units_to_floor) * floor) / q
    return fill, floor


def auction(w: World, cfg: EnvConfig, buy_value: np.ndarray, sell_units: np.ndarray) -> np.ndarray:
    """One batch auction per market: buyers spend ``buy_value[m]`` currency in all, sellers
    deliver ``sell_units[m]`` units in all, and everybody fills at one price. Moves the market
    price to the end of the path and the anchor by ``(P_after / P)^permanent_share``.
    Returns the fill price per market; the caller moves units and cash."""
    fills = np.zeros(w.m)
    for m in range(w.m):
        buy, sell = buy_value[m], sell_units[m]
        if buy > 0 and sell > 0:
            w.stats["auction_two_sided"] += 1
        if buy > 0:
            # The buyers get buy / fill units, so the fill solves fill = VWAP(buy / fill - sell).
            # The right side falls as the fill rises: bisect fill - VWAP(buy / fill - sell).
            def excess(x: float, m=m, buy=buy, sell=sell) -> float:
                return x - path_fill(w, cfg, m, buy / x - sell)[0]

            lo = path_fill(w, cfg, m, -sell)[0]  # the fill if the buyers bought nothing
            hi = max(lo, 1e-300) * 2.0
            while excess(hi) < 0:
                hi *= 2.0
            while True:
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                if excess(mid) < 0:
                    lo = mid
                else:
                    hi = mid
            fill = hi
            _, after = path_fill(w, cfg, m, buy / fill - sell)
        else:
            fill, after = path_fill(w, cfg, m, -sell)
        if after == PRICE_FLOOR * w.fundamental[m] and (buy > 0 or sell > 0):
            w.stats["price_floor"] += 1
        moved = after - w.price[m]
        if cfg.markets[m].permanent_share > 0 and moved != 0:
            w.stats["anchor_moved"] += 1
        anchor = (1.0 + w.permanent[m]) * (after / w.price[m]) ** cfg.markets[m].permanent_share
        w.permanent[m] = anchor - 1.0
        w.price[m] = after
        fills[m] = fill
    return fills


def sell_pro_rata(
    w: World, cfg: EnvConfig, sellers: list[int], fraction: Callable[[int, float], float]
) -> dict[int, float]:
    """The ``sellers`` each sell the same fraction ``phi_i`` of every position in one auction,
    ``phi_i = fraction(i, v_i)`` clipped to [0, 1], ``v_i`` the value of bank i's whole
    portfolio at the auction's fill prices. The fill depends on what everybody sells, so the
    fractions are found by iterating from the fractions at the current prices: sell, fill,
    re-value, repeat (the fractions only rise). Proceeds go to the sellers' cash, paid by the
    outside. Returns the proceeds per seller."""

    def fractions_at(prices: list[float]) -> dict[int, float]:
        out = {}
        for i in sellers:
            v = sum(w.units[i, m] * prices[m] for m in range(w.m))
            out[i] = min(1.0, max(0.0, fraction(i, v)))
        return out

    def sold_units(phi: dict[int, float]) -> np.ndarray:
        return np.array([sum(phi[i] * w.units[i, m] for i in sellers) for m in range(w.m)])

    phi = fractions_at([w.price[m] for m in range(w.m)])
    for _ in range(_MAX_ITERATIONS):
        sold = sold_units(phi)
        fills = [path_fill(w, cfg, m, -sold[m])[0] for m in range(w.m)]
        new = fractions_at(fills)
        converged = all(abs(new[i] - phi[i]) <= 1e-15 for i in sellers)
        phi = new
        if converged:
            break
    else:
        raise AssertionError(f"the pro-rata sale did not converge: {phi}")
    fills = auction(w, cfg, np.zeros(w.m), sold_units(phi))
    proceeds = {}
    for i in sellers:
        proceeds[i] = phi[i] * sum(w.units[i, m] * fills[m] for m in range(w.m))
        for m in range(w.m):
            w.units[i, m] -= w.units[i, m] * phi[i]
            w.basis[i, m] -= w.basis[i, m] * phi[i]
        w.cash[i] += proceeds[i]
        w.outside -= proceeds[i]
    return proceeds


def raise_cash(w: World, cfg: EnvConfig, need: np.ndarray, reason: str) -> np.ndarray:
    """Each bank pays ``need[i]``: from its cash, and what its cash does not cover by selling
    the same fraction of each position (``sell_pro_rata``; a ``forced_sale`` when something is
    sold). Returns what each paid; the cash leaves the payer (the caller says where it goes).

    As the core does, the sale's proceeds land in the bank's cash first and the bank then pays
    ``min(need, max(cash, 0))``: an overdrawn bank's sale covers its overdraft before its debt.
    """
    short = {}
    for i in range(w.n):
        from_cash = min(need[i], max(w.cash[i], 0.0))
        if need[i] - from_cash > 0:
            short[i] = need[i] - from_cash
    if short:

        def to_sell(i: int, v: float) -> float:
            return short[i] / v if v > short[i] else 1.0

        proceeds = sell_pro_rata(w, cfg, list(short), to_sell)
        for i, got in proceeds.items():
            if got > 0:
                w.event("forced_sale", bank=i, reason=reason, sold=got)
                w.stats[f"forced_sale:{reason}"] += 1
    paid = np.zeros(w.n)
    for i in range(w.n):
        paid[i] = min(need[i], max(w.cash[i], 0.0))
        w.cash[i] -= paid[i]
    return paid


# ----------------------------------------------------------------------------- 1. scenario
def apply_scenario(w: World, cfg: EnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """Shocks and interventions of step ``t + 1``, in config order.

    Returns (banks to remove now, banks that could not pay a deposit run: liquidity default).
    """
    step_no = w.t + 1
    run_short = np.zeros(w.n, dtype=bool)
    remove = np.zeros(w.n, dtype=bool)
    for sh in cfg.scenario.shocks:
        if not (sh.start <= step_no < sh.start + sh.duration and w.alive.any()):
            continue
        # The magnitude compounds over the duration: (1 - per_step)^duration = 1 - magnitude.
        per_step = 1.0 - (1.0 - sh.magnitude) ** (1.0 / sh.duration)
        targets = [b for b in range(w.n) if not sh.targets or b in sh.targets]
        loss = outside_flow = 0.0
        if sh.type == "market_crash":  # both prices fall: the crash is news, not order flow
            before = sum(w.market_value(i) for i in range(w.n))
            for m, mk in enumerate(cfg.markets):
                if not sh.targets or mk.name in sh.targets:
                    w.price[m] *= 1.0 - per_step
                    w.fundamental[m] *= 1.0 - per_step
            loss = before - sum(w.market_value(i) for i in range(w.n))
        elif sh.type == "bank_capital_hit":
            for i in targets:
                if w.alive[i]:
                    cut = w.external[i] * per_step
                    w.external[i] -= cut
                    loss += cut
        elif sh.type == "deposit_run":
            demand = np.zeros(w.n)
            for i in targets:
                if w.alive[i]:
                    demand[i] = w.deposits[i] * per_step
            paid = raise_cash(w, cfg, demand, "deposit_run")
            for i in range(w.n):
                w.deposits[i] -= paid[i]
                w.outside += paid[i]
                outside_flow += paid[i]
                if demand[i] - paid[i] > TOL * max(1.0, demand[i]):
                    run_short[i] = True
        # funding_freeze acts through the LEND mask only.
        w.event("shock", kind=sh.type, loss=loss, outside_flow=outside_flow)
    for iv in cfg.scenario.interventions:
        if iv.step != step_no:
            continue
        if iv.type == "capital_injection":
            if w.alive[iv.bank]:
                w.cash[iv.bank] += iv.amount
                w.outside -= iv.amount
                w.event("capital_added", bank=iv.bank, amount=float(iv.amount))
        elif w.alive[iv.bank]:  # remove_bank
            remove[iv.bank] = True
    return remove, run_short


# ----------------------------------------------------------------------------- 2. actions
def valid_action(w: World, i: int, a: int, cfg: EnvConfig) -> bool:
    """The action mask: what bank i may do. HOLD always; LEND needs cash, a live counterparty in
    the slot and no funding freeze; BORROW a loan to a live counterparty in the slot; INVEST
    cash; DIVEST units of the market ("some" = more than TOL)."""
    kind, target, _ = decode_action(a, cfg)
    if kind == "HOLD":
        return True
    if kind in ("LEND", "BORROW"):
        j = w.slot_bank(i, target)
        if j is None or not w.alive[j]:
            return False
        if kind == "LEND":
            return w.cash[i] > TOL and not funding_frozen(cfg, w.t + 1)
        return w.loans[i, j] > TOL
    if kind == "INVEST":
        return w.cash[i] > TOL
    return w.units[i, target] > TOL  # DIVEST


def execute_actions(
    w: World, cfg: EnvConfig, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2. Returns (executed action per bank, invalid mask, liquidity-default mask).

    Validity is judged on the books before anything executes.
    """
    n = w.n
    executed = np.zeros(n, dtype=np.int64)
    invalid = np.zeros(n, dtype=bool)
    plan: list[tuple[int, str, int, float]] = []  # (bank, kind, target, fraction)
    for i in range(n):
        a = int(actions[i])
        if not w.alive[i] or a == 0:
            continue  # the dead do nothing (their actions are ignored, not invalid)
        if not valid_action(w, i, a, cfg):
            invalid[i] = True
            w.stats["invalid"] += 1
            continue
        executed[i] = a
        plan.append((i, *decode_action(a, cfg)))
    cash_before = w.cash.copy()  # INVEST and LEND spend a fraction of this
    units_before = w.units.copy()  # DIVEST sells a fraction of this
    # INVEST and DIVEST: every order of a market meets in one auction at one fill price.
    buy_value, sell_units = np.zeros(w.m), np.zeros(w.m)
    for i, kind, m, fr in plan:
        if kind == "INVEST":
            buy_value[m] += fr * cash_before[i]
        elif kind == "DIVEST":
            sell_units[m] += fr * units_before[i, m]
    fills = auction(w, cfg, buy_value, sell_units)
    for i, kind, m, fr in plan:
        if kind == "INVEST":
            spend = fr * cash_before[i]
            w.cash[i] -= spend
            w.units[i, m] += spend / fills[m]
            w.basis[i, m] += spend
            w.outside += spend
            w.event("transaction", bank=i, kind=kind, amount=spend)
        elif kind == "DIVEST":
            sold = fr * units_before[i, m]
            got = sold * fills[m]
            w.units[i, m] -= sold
            w.basis[i, m] *= 1.0 - fr
            w.cash[i] += got
            w.outside -= got
            w.event("transaction", bank=i, kind=kind, amount=got)
    # LEND: a fraction of the bank's cash to the slot's counterparty.
    for i, kind, k, fr in plan:
        if kind == "LEND":
            j = w.slot_bank(i, k)
            amount = fr * cash_before[i]
            w.cash[i] -= amount
            w.cash[j] += amount
            w.loans[i, j] += amount
            w.event("transaction", bank=i, kind=kind, amount=amount)
    # BORROW: every caller demands a fraction of its loan; each debtor pays the sum of the calls
    # on it (after every trade and LEND of the step) through raise_cash.
    illiquid = np.zeros(n, dtype=bool)
    calls = []  # (caller, debtor, amount called)
    for i, kind, k, fr in plan:
        if kind == "BORROW":
            j = w.slot_bank(i, k)
            calls.append((i, j, fr * w.loans[i, j]))
    if calls:
        demand = np.zeros(n)
        for _, j, due in calls:
            demand[j] += due
        paid = raise_cash(w, cfg, demand, "loan_call")
        for j in range(n):
            if demand[j] - paid[j] > TOL * max(1.0, demand[j]):
                illiquid[j] = True  # every caller of j gets the same fraction
        for i, j, due in calls:
            share = paid[j] / demand[j] if demand[j] > 0 else 1.0
            w.cash[i] += due * share
            w.loans[i, j] -= due * share
            w.event("transaction", bank=i, kind="BORROW", amount=due * share)
    return executed, invalid, illiquid


# ----------------------------------------------------------------------------- 3.-6.
def reprice(w: World, cfg: EnvConfig, eps: np.ndarray) -> None:
    """Step 3: ``g = clip(drift + sigma * eps - sigma^2 / 2, +-max_move)`` (circuit breaker);
    ``F *= exp(g)``; the displacement ``d = P / F - 1`` left by trading decays by
    ``0.5^(1 / half_life)``; ``P = F * (1 + d)``."""
    for m, mk in enumerate(cfg.markets):
        sigma = mk.volatility
        g = mk.drift + sigma * eps[m] - 0.5 * sigma**2
        if abs(g) > mk.max_move:
            w.stats["circuit_breaker"] += 1
        g = min(max(g, -mk.max_move), mk.max_move)
        anchor = w.fundamental[m] * (1.0 + w.permanent[m])
        displacement = w.price[m] / anchor - 1.0
        w.fundamental[m] *= math.exp(g)
        anchor = w.fundamental[m] * (1.0 + w.permanent[m])
        w.price[m] = anchor * (1.0 + displacement * 0.5 ** (1.0 / mk.half_life))


def step_variance(w: World, cfg: EnvConfig, price_start: np.ndarray) -> np.ndarray:
    """The EWMA of squared log returns with this step's return so far (start of step to now):
    ``ewma * vol2 + (1 - ewma) * log(P / P_start)^2``."""
    lam = cfg.margin.ewma
    out = np.zeros(w.m)
    for m in range(w.m):
        r = math.log(w.price[m] / price_start[m])
        out[m] = lam * w.vol2[m] + (1.0 - lam) * r * r
    return out


def pay_interest(w: World, cfg: EnvConfig) -> np.ndarray:
    """Step 4: borrower i owes ``rate * sum_j loans[j, i]`` and pays it through raise_cash;
    lender j gets ``rate * loans[j, i] * paid_i / due_i``. Returns the borrowers that could not
    pay it all (liquidity default)."""
    short = np.zeros(w.n, dtype=bool)
    rate = cfg.interest_rate
    if rate <= 0:
        return short
    due = np.array([rate * w.borrowed(i) for i in range(w.n)])
    share = np.ones(w.n)
    paid = raise_cash(w, cfg, due, "interest")
    for i in range(w.n):
        if due[i] > 0:
            share[i] = paid[i] / due[i]
        if due[i] - paid[i] > TOL * max(1.0, due[i]):
            short[i] = True
            w.stats["interest_short"] += 1
    for j in range(w.n):
        w.cash[j] += rate * sum(w.loans[j, i] * share[i] for i in range(w.n))
    return short


def book_profits(w: World, cfg: EnvConfig) -> None:
    """Step 5 (due steps only): per position of a live bank, ``pnl = units * mark - basis``; a
    gain is realised by selling ``gain / mark`` units in one auction per market (at the fill,
    a little below the mark), a loss is booked without a trade; then ``basis = units * mark``
    at the marks after the sales."""
    marks = [w.mark(m) for m in range(w.m)]
    pnl = np.zeros((w.n, w.m))
    sold = np.zeros((w.n, w.m))
    for i in range(w.n):
        if not w.alive[i]:
            continue
        for m in range(w.m):
            pnl[i, m] = w.units[i, m] * marks[m] - w.basis[i, m]
            if marks[m] > 0:
                sold[i, m] = max(pnl[i, m], 0.0) / marks[m]
    fills = auction(w, cfg, np.zeros(w.m), sold.sum(axis=0))
    for i in range(w.n):
        if not w.alive[i]:
            continue
        realised = sum(sold[i, m] * fills[m] for m in range(w.m))
        for m in range(w.m):
            w.units[i, m] -= sold[i, m]
        w.cash[i] += realised
        w.outside -= realised
        for m in range(w.m):
            w.basis[i, m] = w.units[i, m] * w.mark(m)
        if sum(abs(x) for x in pnl[i]) > 0:
            w.event("profit_booking", bank=i, pnl=pnl[i].sum(), realised=realised)
            w.stats["profit_booking"] += 1


def margin_calls(w: World, cfg: EnvConfig, vol2: np.ndarray) -> None:
    """Step 6: requirement ``req_i = sum_m units * mark * z * sigma_m * (1 + vol_sensitivity *
    vol_t)``, ``vol_t = max(0, sqrt(vol2) / sigma - 1)`` with ``vol2`` counting this step's move
    so far. A live bank with ``gap = req - max(cash, 0) > TOL`` sells the fraction
    ``phi = min(1, gap / (v + req))`` of each position, ``v`` its portfolio at the fill, jointly
    with the other callees (``req`` stays at the marks before the sale)."""
    mc = cfg.margin
    if not mc.enabled:
        return
    rate = np.zeros(w.m)
    for m, mk in enumerate(cfg.markets):
        sigma = mk.volatility
        vol_t = max(0.0, math.sqrt(vol2[m]) / max(sigma, 1e-12) - 1.0)
        rate[m] = mc.z * sigma * (1.0 + mc.vol_sensitivity * vol_t)
    req = np.zeros(w.n)
    gap = np.zeros(w.n)
    callees = []
    for i in range(w.n):
        req[i] = sum(w.units[i, m] * (w.mark(m) * rate[m]) for m in range(w.m))
        gap[i] = req[i] - max(w.cash[i], 0.0)
        if w.alive[i] and gap[i] > TOL:
            callees.append(i)
    if not callees:
        return

    def to_sell(i: int, v: float) -> float:
        return gap[i] / (v + req[i]) if v + req[i] > 0 else 1.0

    proceeds = sell_pro_rata(w, cfg, callees, to_sell)
    for i in callees:
        if proceeds[i] > 0:
            w.event("margin_call", bank=i, requirement=req[i], shortfall=gap[i], sold=proceeds[i])
            w.stats["margin_call"] += 1


# ----------------------------------------------------------------------------- 7. clearing
def clearing_vector(
    owes: np.ndarray, e: np.ndarray, pbar: np.ndarray, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greatest clearing vector (Eisenberg–Noe with Rogers–Veraart default costs) by fictitious
    default. Returns (in default, payments ``p``).

    Bank i owes ``owes[i, j]`` to bank j and ``pbar_i`` in all (other creditors pari passu),
    holds ``e_i`` outside the network and receives ``x_i = sum_j owes[j, i] * p_j / pbar_j``. A
    solvent bank pays ``pbar_i``; a defaulter pays ``max(0, e~_i + beta * x_i)`` with
    ``e~_i = alpha * e_i`` if ``e_i >= 0`` (else ``e_i``). Fictitious default: start with
    nobody in default; a bank defaults when ``pbar_i - e_i - x_i > CLEARING_TOL * max(1,
    pbar_i)``; solve the defaulters' payments exactly; repeat until no new default.
    """
    n = len(e)
    e_cost = np.array([alpha * e[i] if e[i] >= 0 else e[i] for i in range(n)])

    def receipts(p: np.ndarray) -> np.ndarray:
        share = np.array([p[j] / pbar[j] if pbar[j] > 0 else 0.0 for j in range(n)])
        return np.array([float(owes[:, i] @ share) for i in range(n)])

    def defaulters_pay(defaulted: np.ndarray) -> np.ndarray:
        """Payments with this default set: solvent banks pay pbar; defaulters solve
        ``p_i = max(0, e~_i + beta * x_i)``. Start with every defaulter paying 0; those whose
        value is positive join the paying set, whose linear system is solved exactly; repeat."""
        paying = np.zeros(n, dtype=bool)
        payments = np.where(defaulted, 0.0, pbar)
        for _ in range(n):
            x = receipts(payments)
            joins = [i for i in range(n) if defaulted[i] and not paying[i]]
            joins = [i for i in joins if e_cost[i] + beta * x[i] > 0]
            if not joins:
                break
            paying[joins] = True
            # p_a = e~_a + beta * (what a gets from banks paying a fixed amount)
            #           + beta * sum_{c paying} owes[c, a] / pbar_c * p_c
            fixed = np.where(defaulted, 0.0, pbar)
            x_fixed = receipts(fixed)
            group = [i for i in range(n) if paying[i]]
            system = np.eye(len(group))
            rhs = np.zeros(len(group))
            for r, a in enumerate(group):
                rhs[r] = e_cost[a] + beta * x_fixed[a]
                for c_col, c in enumerate(group):
                    system[r, c_col] -= beta * owes[c, a] / pbar[c]
            try:
                solved = np.linalg.solve(system, rhs)
            except np.linalg.LinAlgError:  # a closed cycle with beta = 1: any solution will do
                solved = np.linalg.pinv(system) @ rhs
            payments = fixed.copy()
            payments[group] = solved
        return np.clip(payments, 0.0, pbar)

    defaulted = np.zeros(n, dtype=bool)
    payments = pbar.copy()
    for _ in range(n):
        x = receipts(payments)
        new = [
            i
            for i in range(n)
            if pbar[i] > 0
            and not defaulted[i]
            and pbar[i] - e[i] - x[i] > CLEARING_TOL * max(1.0, pbar[i])
        ]
        if not new:
            break
        defaulted[new] = True
        payments = defaulters_pay(defaulted)
    return defaulted, payments


def who_fails(w: World, cfg: EnvConfig) -> np.ndarray:
    """The banks in default at the greatest clearing vector of the whole network: interbank
    debts and deposits pari passu, ``e_i = cash + positions at the marks + external``, with the
    config's Rogers–Veraart alpha and beta."""
    n = w.n
    owes = w.loans.T.copy()  # owes[i, j] = loans[j, i]: what i borrowed from j
    pbar = np.array([w.borrowed(i) + w.deposits[i] for i in range(n)])
    e = np.array([w.cash[i] + w.market_value(i) + w.external[i] for i in range(n)])
    defaulted, _ = clearing_vector(owes, e, pbar, cfg.contagion.alpha, cfg.contagion.beta)
    return defaulted


# ----------------------------------------------------------------------------- 7. cascade
def resolve_defaults(
    w: World, cfg: EnvConfig, forced: np.ndarray, cause_forced: str
) -> tuple[np.ndarray, int, np.ndarray]:
    """Cascade rounds until no live bank fails. A round starts when a live bank's equity at the
    marks is below ``-TOL * max(1, equity0)`` or it is ``forced`` (round 1: liquidity defaults
    or removals; later rounds: survivors that could not pay a failed bank's call); then those
    banks fail together with every bank the clearing puts in default. At most ``max_rounds``.

    Returns (banks that fell, rounds with a failure, banks linked by a loan to a fallen bank
    and still alive).
    """
    n = w.n
    fallen = np.zeros(n, dtype=bool)
    linked = np.zeros(n, dtype=bool)
    rounds = 0
    forced = forced.copy()
    marks_before = None  # the marks when the previous round started, if it liquidated units
    for rnd in range(1, cfg.contagion.max_rounds + 1):
        equity = [w.equity(i) for i in range(n)]
        insolvent = [equity[i] < -TOL * max(1.0, w.equity0[i]) for i in range(n)]
        new = [bool(w.alive[i] and (insolvent[i] or forced[i])) for i in range(n)]
        if not any(new):
            break
        rounds = rnd
        if marks_before is not None:
            _count_failures_by_marks(w, insolvent, new, forced, marks_before)
        marks_before = None
        in_default = who_fails(w, cfg)
        fell = np.array([bool(w.alive[i] and (in_default[i] or new[i])) for i in range(n)])
        causes = {}
        for q in np.flatnonzero(fell):
            if forced[q]:  # after round 1 only survivors short on a failed bank's call
                causes[q] = cause_forced if rnd == 1 else "illiquid"
            elif insolvent[q]:
                causes[q] = "insolvent"
            else:
                causes[q] = "contagion"
        if any(w.units[q, m] > 0 for q in np.flatnonzero(fell) for m in range(w.m)):
            marks_before = [w.mark(m) for m in range(w.m)]  # this round liquidates units
        fell, linked_now = settle(w, cfg, fell, equity, rnd, causes)
        forced = np.zeros(n, dtype=bool)
        w.event("cascade", round=rnd, prices=w.price.copy())
        fallen |= fell
        linked |= linked_now
    return fallen, rounds, linked & w.alive


def _count_failures_by_marks(
    w: World, insolvent: list[bool], new: list[bool], forced: np.ndarray, marks_before: list[float]
) -> None:
    """Coverage: a survivor pushed into insolvency by the marks falling during the last round,
    whose liquidation sold units (at the previous round's marks, with its books as they are
    now, it would be solvent)."""
    for i in range(w.n):
        if not (new[i] and insolvent[i] and not forced[i]):
            continue
        at_old_marks = w.equity(i) + sum(
            w.units[i, m] * (marks_before[m] - w.mark(m)) for m in range(w.m)
        )
        if at_old_marks >= -TOL * max(1.0, w.equity0[i]):
            w.stats["insolvent_by_marks"] += 1


def settle(
    w: World,
    cfg: EnvConfig,
    fell: np.ndarray,
    equity: list[float],
    rnd: int,
    causes: dict[int, str],
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the failed banks of one cascade round. Returns (every bank that failed in it,
    banks linked by a loan either way to one of them)."""
    alpha, beta = cfg.contagion.alpha, cfg.contagion.beta
    n = w.n
    failed = [int(q) for q in range(n) if fell[q]]
    linked = np.zeros(n, dtype=bool)
    proceeds = dict.fromkeys(failed, 0.0)
    collected = dict.fromkeys(failed, 0.0)
    newly = list(failed)
    while newly:
        for i in range(n):
            if any(w.loans[i, q] > 0 or w.loans[q, i] > 0 for q in newly):
                linked[i] = True
        # 1. Liquidation: the newly failed banks' units are sold in one auction per market
        #    (the fire sale: prices fall, and the survivors' marks with them).
        sell_units = np.array([sum(w.units[q, m] for q in newly) for m in range(w.m)])
        fills = auction(w, cfg, np.zeros(w.m), sell_units)
        for q in newly:
            got = sum(w.units[q, m] * fills[m] for m in range(w.m))
            proceeds[q] += got
            w.cash[q] += got
            w.units[q, :] = 0.0
            w.basis[q, :] = 0.0
        # 2. Their loans to survivors are called in full: survivors pay through raise_cash;
        #    each pays every failed creditor the same fraction; the paid part leaves the loan,
        #    the rest stays owed, and a survivor that falls short fails now (illiquid).
        survivor = [bool(w.alive[i] and i not in failed) for i in range(n)]
        demand = np.array(
            [sum(w.loans[q, k] for q in newly) if survivor[k] else 0.0 for k in range(n)]
        )
        paid = raise_cash(w, cfg, demand, "resolution")
        share = [paid[k] / demand[k] if demand[k] > 0 else 0.0 for k in range(n)]
        for q in newly:
            for k in range(n):
                if survivor[k] and w.loans[q, k] > 0:
                    repaid = w.loans[q, k] * share[k]
                    collected[q] += repaid
                    w.cash[q] += repaid
                    w.loans[q, k] -= repaid
        newly = [
            k for k in range(n) if survivor[k] and demand[k] - paid[k] > TOL * max(1.0, demand[k])
        ]
        for k in newly:
            failed.append(k)
            causes[k] = "illiquid"
            proceeds[k] = collected[k] = 0.0
    failed.sort()
    # 3. The estates: what each failed bank realised, before what other failed banks pay it.
    #    The core applies alpha to the whole cash, also when it is negative.
    liquid = {q: w.cash[q] - collected[q] for q in failed}  # cash, sale proceeds included
    value = {q: alpha * (liquid[q] + w.external[q]) + beta * collected[q] for q in failed}
    debts = {q: w.borrowed(q) + w.deposits[q] for q in failed}
    # Cleared among the failed banks: p_a = min(pbar_a, max(0, value_a + beta * sum_c
    # loans[a, c] p_c / pbar_c)), i.e. the clearing on beta-scaled liabilities, alpha = beta = 1.
    f = len(failed)
    owes = np.zeros((f, f))
    for a_row, a in enumerate(failed):
        for c_col, c in enumerate(failed):
            owes[a_row, c_col] = beta * w.loans[c, a]
    _, payments = clearing_vector(
        owes,
        np.array([value[q] for q in failed]),
        np.array([debts[q] for q in failed]),
        1.0,
        1.0,
    )
    recovery = np.ones(n)
    for row, q in enumerate(failed):
        if debts[q] > 0:
            recovery[q] = payments[row] / debts[q]
    # 4. Every creditor of a failed bank is paid recovery * claim; survivors get it in cash,
    #    failed creditors count it in their estate; depositors get it from outside the system.
    received = [sum(w.loans[i, q] * recovery[q] for q in failed) for i in range(n)]
    for i in range(n):
        if w.alive[i] and i not in failed:
            w.cash[i] += received[i]
    # 5. The estates' accounts: what is left beyond the payments goes to the shareholders
    #    outside; the default costs go outside; the outside paid for units and external assets.
    for q in failed:
        from_failed = received[q]
        paid_out = recovery[q] * debts[q]
        residual = value[q] + beta * from_failed - paid_out
        costs_cash = (1.0 - alpha) * liquid[q] + (1.0 - beta) * (collected[q] + from_failed)
        outside_flow = (
            costs_cash
            + recovery[q] * w.deposits[q]
            + residual
            - alpha * w.external[q]
            - proceeds[q]
        )
        w.outside += outside_flow
        if residual > TOL:
            w.stats["residual_positive"] += 1
        w.event(
            "default",
            bank=q,
            round=rnd,
            cause=causes[q],
            equity=equity[q],
            recovery=recovery[q],
            creditor_loss=debts[q] - paid_out,
            fire_sale_proceeds=proceeds[q],
            default_costs=costs_cash + (1.0 - alpha) * w.external[q],
            residual=residual,
            outside_flow=outside_flow,
        )
    # 6. Zero the failed banks' books.
    for q in failed:
        w.loans[q, :] = 0.0
        w.loans[:, q] = 0.0
        w.cash[q] = 0.0
        w.external[q] = 0.0
        w.deposits[q] = 0.0
        w.units[q, :] = 0.0
        w.basis[q, :] = 0.0
        w.alive[q] = False
        w.default_step[q] = w.t + 1
    w.stats["defaults"] += len(failed)
    return np.array([i in failed for i in range(n)]), linked


# ----------------------------------------------------------------------------- 8. beliefs
def update_beliefs(w: World, cfg: EnvConfig, linked: np.ndarray, u: np.ndarray) -> bool:
    """Bernoulli posterior per slot on 'the counterparty is distressed' (dead, or equity /
    assets at the marks below the threshold). The signal says 'distressed' when ``u < q`` for a
    distressed counterparty and when ``u >= q`` for a healthy one, q the reliability. Returns
    whether a belief cascade happened (a share of live banks whose mean belief moved by more
    than ``cascade_shift`` of at least ``cascade_fraction``)."""
    bc = cfg.beliefs
    n, k_slots = w.belief.shape
    distressed = []
    for j in range(n):
        assets = w.assets(j)
        ratio = w.equity(j) / assets if assets > 0 else 0.0
        distressed.append(not w.alive[j] or ratio < bc.distress_threshold)
    q = bc.signal_reliability
    qc = min(q, 1.0 - 1e-9)  # a perfect signal would give an infinite likelihood ratio
    # The uniforms are float32; the core compares them with q in float32.
    q32 = np.float32(q)
    count = [max(1, sum(1 for k in range(k_slots) if w.slots[i, k] >= 0)) for i in range(n)]
    old_mean = [sum(w.belief[i, :]) / count[i] for i in range(n)]
    for i in range(n):
        for k in range(k_slots):
            j = w.slot_bank(i, k)
            if j is None:
                w.belief[i, k] = 0.0
                continue
            says_distress = (np.float32(u[i, k]) < q32) == distressed[j]
            lr = qc / (1.0 - qc) if says_distress else (1.0 - qc) / qc
            prior = w.belief[i, k]
            post = prior * lr
            post = post / (1.0 + post - prior)  # Bayes in odds form
            post = post * (1.0 - bc.leak) + bc.leak * bc.prior
            if linked[j]:  # j lent to or borrowed from a bank that fell this step
                post = post + bc.contagion_weight * (1.0 - post)
            if not w.alive[j]:
                post = 1.0
            w.belief[i, k] = post
    new_mean = [sum(w.belief[i, :]) / count[i] for i in range(n)]
    shifted = sum(
        1 for i in range(n) if w.alive[i] and abs(new_mean[i] - old_mean[i]) > bc.cascade_shift
    )
    share = shifted / max(1, int(w.alive.sum()))
    return share >= bc.cascade_fraction


# ----------------------------------------------------------------------------- 9. rewards
def utility(w: World, cfg: EnvConfig, i: int) -> float:
    """``U = Revenue - rho * Risk - lam * Liquidity - gamma * Regulatory`` of a live bank, with
    positions (equity and VaR) at the marks."""
    rc = cfg.reward
    e0 = max(w.equity0[i], 1e-9)
    equity, assets, liab = w.equity(i), w.assets(i), w.liabilities(i)
    revenue = (equity - w.equity_prev[i]) / e0
    exposure = sum(
        w.loans[i, j] * w.belief[i, k]
        for k in range(w.slots.shape[1])
        if (j := w.slot_bank(i, k)) is not None
    )
    var = cfg.margin.z * sum(
        w.units[i, m] * (w.mark(m) * mk.volatility) for m, mk in enumerate(cfg.markets)
    )
    cap = rc.term_cap
    risk = min(cap, (exposure + var) / e0)
    liquidity = max(0.0, rc.liquidity_floor - w.cash[i] / max(liab, 1e-9))
    leverage = assets / max(equity, 1e-9)
    regulatory = min(max(leverage / w.target_leverage[i] - 1.0, 0.0), cap)
    if rc.min_capital_ratio > 0:
        capital_ratio = equity / max(assets, 1e-9)
        shortfall = max(0.0, rc.min_capital_ratio - capital_ratio) / rc.min_capital_ratio
        regulatory += min(cap, shortfall)
    return revenue - rc.rho * risk - rc.lam * liquidity - rc.gamma * regulatory


def default_charge(cfg: EnvConfig, step_no: int) -> float:
    """The reward of a bank that defaults at ``step_no``: the penalty plus, for every step left
    after it, the most one step's utility terms can cost (``rho * cap + lam * floor + 2 * gamma
    * cap``)."""
    rc = cfg.reward
    worst_step = rc.rho * rc.term_cap + rc.lam * rc.liquidity_floor + 2 * rc.gamma * rc.term_cap
    return -(rc.default_penalty + max(cfg.max_steps - step_no, 0) * worst_step)


# ----------------------------------------------------------------------------- the step
@dataclass
class WorldResult:
    rewards: np.ndarray
    defaulted: np.ndarray
    invalid: np.ndarray
    executed: np.ndarray
    cascade_rounds: int
    belief_cascade: bool


def step_world(
    w: World, cfg: EnvConfig, actions: np.ndarray, eps: np.ndarray, u: np.ndarray
) -> WorldResult:
    """One step of one world, mutating ``w``: steps 1-9 of the module docstring."""
    step_no = w.t + 1
    w.event("step_start")
    alive_before = w.alive.copy()
    price_start = w.price.copy()  # the step's return runs from here to the end of the step
    # 1. Scenario; removals are resolved before anyone acts.
    fallen_removed = np.zeros(w.n, dtype=bool)
    linked_removed = np.zeros(w.n, dtype=bool)
    run_short = np.zeros(w.n, dtype=bool)
    if cfg.scenario.shocks or cfg.scenario.interventions:
        remove, run_short = apply_scenario(w, cfg)
        if remove.any():
            for i in np.flatnonzero(remove):
                w.event("bank_removed", bank=int(i))
            fallen_removed, _, linked_removed = resolve_defaults(w, cfg, remove, "removed")
    # 2. Actions.
    executed, invalid, illiquid = execute_actions(w, cfg, actions)
    illiquid |= run_short
    # 3. Markets.
    reprice(w, cfg, eps)
    # 4. Interest.
    illiquid |= pay_interest(w, cfg)
    # 5. Profit booking.
    if step_no % cfg.profit_booking_interval == 0:
        book_profits(w, cfg)
    # 6. Margin, on the variance that counts the step's move so far.
    margin_calls(w, cfg, step_variance(w, cfg, price_start))
    # 7. Defaults and cascade (the rounds of a removal are not counted).
    fallen, rounds, linked = resolve_defaults(w, cfg, illiquid, "illiquid")
    fallen |= fallen_removed
    linked = (linked | linked_removed) & w.alive
    # The step's return and variance see the whole move: shocks, trades, sales, repricing.
    w.vol2 = step_variance(w, cfg, price_start)
    w.last_return = np.array([math.log(w.price[m] / price_start[m]) for m in range(w.m)])
    for m in range(w.m):
        if w.price[m] > w.fundamental[m]:
            w.stats["marked_at_fundamental"] += 1
    # 8. Beliefs.
    cascade = update_beliefs(w, cfg, linked, u)
    if cascade:
        w.event("belief_cascade")
    # 9. Rewards on the books after the cascade.
    defaulted_now = alive_before & ~w.alive
    rewards = np.zeros(w.n)
    for i in range(w.n):
        if defaulted_now[i]:
            rewards[i] = default_charge(cfg, step_no)
        elif w.alive[i]:
            rewards[i] = utility(w, cfg, i)
    for i in range(w.n):
        w.equity_prev[i] = w.equity(i) if w.alive[i] else 0.0
    w.t = step_no
    w.event("step_end")
    return WorldResult(
        rewards=rewards,
        defaulted=defaulted_now | fallen,
        invalid=invalid,
        executed=executed,
        cascade_rounds=rounds,
        belief_cascade=cascade,
    )


@dataclass
class ReferenceOutput:
    """What ``reference_step`` returns besides the new state (arrays over B worlds, N banks)."""

    rewards: np.ndarray
    defaulted: np.ndarray
    invalid: np.ndarray
    executed: np.ndarray
    cascade_rounds: np.ndarray
    belief_cascade: np.ndarray
    events: list[list[tuple[str, dict]]]
    """Per world, (type, data) of each event in the order it happened."""
    stats: list[Counter]
    """Per world, counts of the regimes the step went through (for coverage checks)."""


_STATE_FIELDS = (
    "cash loans units basis external deposits alive price fundamental permanent price0 depth "
    "last_return "
    "vol2 slots belief equity0 equity_prev target_leverage risk_factor default_step"
).split()


def reference_step(
    state: NetworkState, actions: np.ndarray, cfg: EnvConfig, noise
) -> tuple[NetworkState, ReferenceOutput]:
    """Advance every world of ``state`` by one step, one world at a time (``state`` is not
    modified). ``actions`` (B, N) flat action indices; ``noise`` a ``StepNoise`` (``market``
    (B, M) normals, ``signal`` (B, N, K) float32 uniforms)."""
    b_worlds = state.cash.shape[0]
    assert state.slots.shape[2] == cfg.max_counterparties, "slots do not match the config"
    worlds, results = [], []
    for b in range(b_worlds):
        w = world_of(state, b)
        results.append(step_world(w, cfg, np.asarray(actions[b]), noise.market[b], noise.signal[b]))
        worlds.append(w)
    fields = {
        name: np.stack([getattr(w, name) for w in worlds]).astype(getattr(state, name).dtype)
        for name in _STATE_FIELDS
    }
    fields["outside"] = np.array([w.outside for w in worlds])
    fields["t"] = np.array([w.t for w in worlds], dtype=state.t.dtype)
    # The derived interbank arrays, from the loans.
    loans, slots = fields["loans"], fields["slots"]
    b_, n, k_slots = slots.shape
    slot_lent = np.zeros((b_, n, k_slots))
    slot_borrowed = np.zeros((b_, n, k_slots))
    for b in range(b_):
        for i in range(n):
            for k in range(k_slots):
                j = slots[b, i, k]
                if j >= 0:
                    slot_lent[b, i, k] = loans[b, i, j]
                    slot_borrowed[b, i, k] = loans[b, j, i]
    new_state = NetworkState(
        **fields,
        ib_assets=loans.sum(axis=2),
        ib_liab=loans.sum(axis=1),
        slot_lent=slot_lent,
        slot_borrowed=slot_borrowed,
    )
    out = ReferenceOutput(
        rewards=np.stack([r.rewards for r in results]),
        defaulted=np.stack([r.defaulted for r in results]),
        invalid=np.stack([r.invalid for r in results]),
        executed=np.stack([r.executed for r in results]),
        cascade_rounds=np.array([r.cascade_rounds for r in results], dtype=np.int64),
        belief_cascade=np.array([r.belief_cascade for r in results]),
        events=[w.events for w in worlds],
        stats=[w.stats for w in worlds],
    )
    return new_state, out
