"""The model of one RUDRA step, written for reading: a plain per-bank reference of the batched core.

``reference_step(state, actions, cfg, noise)`` advances every world of a ``NetworkState`` by one
step, one world at a time, with Python loops over banks, counterparty slots and markets and the
balance-sheet arithmetic spelled out. It reads every model parameter from the ``EnvConfig`` and
touches nothing of ``rudra_env`` beyond the state's public fields: it decodes the flat actions
itself and clears the interbank network with its own fictitious-default algorithm.

It is the specification the fast core (``rudra_env.core.step``) must match: a differential test
(``tests/core/test_reference_step.py``) runs both on fuzzed states and compares every field of
the new state, the step outputs and the events. Optimise the core freely; when the two disagree,
decide here, in plain code, which behaviour is the model.

Step order (one world; ``t`` is the state's step counter and the step taken is ``t + 1``):

1. Scenario: shocks active at step ``t + 1`` (market crash, capital hit, deposit run, funding
   freeze) and interventions scheduled for it (capital injection, bank removal). A removal runs
   the whole cascade of step 7 at once, in that world.
2. Actions: one per live bank, simultaneous. Masked-out actions execute as HOLD and are flagged
   invalid. DIVEST sells; LEND and INVEST spend a fraction of the bank's cash; then every
   BORROW calls back a fraction of a loan and each debtor pays all calls on it from cash, then
   by selling units pro rata at the current price; a debtor that still falls short pays every
   caller the same fraction and is in liquidity default.
3. Markets reprice on the step's net order flow, with a circuit breaker on the log return.
4. Interest on interbank loans; overdrawn banks sell units (fire-sale price impact).
5. Profit booking every ``profit_booking_interval`` steps: gains sold at the market price,
   losses booked; basis reset to market value.
6. Margin calls with a volatility term; short banks sell units (fire-sale price impact).
7. Defaults and cascade rounds: clear the network (Eisenberg–Noe with Rogers–Veraart costs),
   resolve the failed banks (fire sale, external assets at alpha, recoveries to creditors and
   depositors, loans to survivors called, default costs and residual to the outside, books
   zeroed), re-mark, repeat until no bank fails.
8. Beliefs: Bayes on a noisy distress signal per slot, leak to the prior, contagion push for
   neighbours of fallen banks, dead counterparties at 1; belief cascade detection.
9. Rewards (the utility of ``rudra_env.core.reward``, recomputed here) and ``equity_prev``.

Orderings the core must keep (each is stated again where it happens):

* loan calls are paid from cash *after* every LEND and INVEST of the step (a debtor can pay
  with money lent to it this step); callers are paid after all debtors have paid;
* forced sales for loan calls and deposit runs join the step's order flow (repricing, step 3);
  overdraft and margin sales move prices like fire sales, right away; sales to pay a failed
  bank's called loans and the gains sold at a booking move no price at all;
* ``last_return`` and ``vol2`` see only the repricing of step 3 (not a market_crash shock, fire
  sales or margin sales);
* a failed bank's units are fire-sold and the price falls *before* the proceeds are valued;
  the clearing of that round used the marks before the fire sale (the difference is the
  estate's residual, settled with the outside, so proceeds and default costs cancel out of
  ``outside`` and show only in the core's event data);
* overdrafts are covered only when interest is charged (``interest_rate > 0``);
* the rounds of a removal's cascade are not counted in ``cascade_rounds``.

Tolerances mirrored from the core: ``TOL = 1e-9`` (a shortfall, overdraft or margin gap counts
only above it, scaled by ``max(1, amount)`` where the core scales it), ``CLEARING_TOL = 1e-10``
(the clearing's default test) and ``PRICE_FLOOR = 0.01`` (one fire sale or margin round cuts a
price to at most 1% of itself). The core gates overdraft cover and margin calls on "some live
bank short by more than TOL" over the whole batch; here over the world (the two differ only by
amounts below TOL).

A removal's cascade runs only in the world that removes a bank
(``test_removal_does_not_leak_into_other_worlds``).
"""

from __future__ import annotations

from collections import Counter
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
    price: np.ndarray
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

    def market_value(self, i: int) -> float:
        return sum(self.units[i, m] * self.price[m] for m in range(self.m))

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


# ----------------------------------------------------------------------------- selling units
def sell_pro_rata(w: World, i: int, sell: float, sold_units: np.ndarray) -> None:
    """Bank i sells ``sell`` of its market value, the same fraction of every position, at the
    current price to the outside (the caller decides where the money goes and whether prices
    react). Adds the units sold per market to ``sold_units``.

    A bank asked for all of its market value (``sell >= value``) sells everything.
    """
    value = w.market_value(i)
    frac = sell / value if sell < value else 1.0
    for m in range(w.m):
        sold_units[m] += frac * w.units[i, m]
        w.units[i, m] -= w.units[i, m] * frac
        w.basis[i, m] -= w.basis[i, m] * frac
    w.outside -= sell


def raise_cash(
    w: World, need: np.ndarray, reason: str, flow: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each bank pays ``need[i]``: from its cash (if positive), the rest by selling units pro
    rata at the current price (a ``forced_sale`` when something is sold). The sale proceeds go
    straight to whoever is paid, never through the bank's cash.

    Returns (paid per bank, value sold per market at the current price). Sales are subtracted
    from ``flow`` (the step's order flow) when it is given; prices are not touched here.
    """
    paid = np.zeros(w.n)
    sold_units = np.zeros(w.m)
    for i in range(w.n):
        from_cash = min(need[i], max(w.cash[i], 0.0))
        rest = need[i] - from_cash
        sell = 0.0
        if rest > 0:
            sell = min(rest, w.market_value(i))
            sell_pro_rata(w, i, sell, sold_units)
            if sell > 0:
                w.event("forced_sale", bank=i, reason=reason)
                w.stats[f"forced_sale:{reason}"] += 1
        w.cash[i] -= from_cash
        paid[i] = from_cash + sell
    sold_value = sold_units * w.price
    if flow is not None:
        flow -= sold_value
    return paid, sold_value


def fire_sale_prices(w: World, cfg: EnvConfig, sold_value: np.ndarray) -> None:
    """``price *= max(PRICE_FLOOR, 1 - fire_sale_impact * sold / depth)`` per market."""
    for m in range(w.m):
        factor = 1.0 - cfg.contagion.fire_sale_impact * sold_value[m] / w.depth[m]
        if factor < PRICE_FLOOR:
            w.stats["price_floor"] += 1
        w.price[m] *= max(PRICE_FLOOR, factor)


# ----------------------------------------------------------------------------- 1. scenario
def apply_scenario(w: World, cfg: EnvConfig, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        if sh.type == "market_crash":
            for m, mk in enumerate(cfg.markets):
                if not sh.targets or mk.name in sh.targets:
                    w.price[m] *= 1.0 - per_step
        elif sh.type == "bank_capital_hit":
            for i in targets:
                if w.alive[i]:
                    w.external[i] -= w.external[i] * per_step
        elif sh.type == "deposit_run":
            demand = np.zeros(w.n)
            for i in targets:
                if w.alive[i]:
                    demand[i] = w.deposits[i] * per_step
            paid, _ = raise_cash(w, demand, "deposit_run", flow)  # sales join the order flow
            for i in range(w.n):
                w.deposits[i] -= paid[i]
                w.outside += paid[i]
                if demand[i] - paid[i] > TOL * max(1.0, demand[i]):
                    run_short[i] = True
        # funding_freeze acts through the LEND mask only.
        w.event("shock", kind=sh.type)
    for iv in cfg.scenario.interventions:
        if iv.step != step_no:
            continue
        if iv.type == "capital_injection":
            if w.alive[iv.bank]:
                w.cash[iv.bank] += iv.amount
                w.outside -= iv.amount
                w.event("capital_added", bank=iv.bank)
        elif w.alive[iv.bank]:  # remove_bank
            remove[iv.bank] = True
    return remove, run_short


# ----------------------------------------------------------------------------- 2. actions
def valid_action(w: World, i: int, a: int, cfg: EnvConfig) -> bool:
    """The action mask: what bank i may do. HOLD always; LEND needs cash, a live counterparty in
    the slot and no funding freeze; BORROW a loan to a live counterparty in the slot; INVEST
    cash; DIVEST units of the market."""
    kind, target, _ = decode_action(a, cfg)
    if kind == "HOLD":
        return True
    if kind in ("LEND", "BORROW"):
        j = w.slot_bank(i, target)
        if j is None or not w.alive[j]:
            return False
        if kind == "LEND":
            return w.cash[i] > 0 and not funding_frozen(cfg, w.t + 1)
        return w.loans[i, j] > 0
    if kind == "INVEST":
        return w.cash[i] > 0
    return w.units[i, target] > 0  # DIVEST


def execute_actions(
    w: World, cfg: EnvConfig, actions: np.ndarray, flow: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2. Returns (executed action per bank, invalid mask, liquidity-default mask).

    Validity is judged on the books before anything executes. (The core re-runs the whole
    execution with the invalid actions replaced by HOLD; since a bank's mask depends only on
    the state before the step, that is the same as skipping them.)
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
    cash_before = w.cash.copy()  # LEND and INVEST spend a fraction of this
    outside_flow = 0.0
    # DIVEST: sell a fraction of one position at the current price.
    for i, kind, m, fr in plan:
        if kind == "DIVEST":
            sold = fr * w.units[i, m]
            amount = sold * w.price[m]
            w.units[i, m] -= sold
            w.basis[i, m] *= 1.0 - fr
            w.cash[i] += amount
            flow[m] -= amount
            outside_flow -= amount
            w.event("transaction", bank=i, kind=kind)
    # LEND and INVEST: a fraction of the bank's cash (one action per bank, so its own DIVEST
    # cannot have added to it).
    for i, kind, target, fr in plan:
        if kind == "LEND":
            j = w.slot_bank(i, target)
            amount = fr * cash_before[i]
            w.cash[i] -= amount
            w.cash[j] += amount
            w.loans[i, j] += amount
            w.event("transaction", bank=i, kind=kind)
        elif kind == "INVEST":
            amount = fr * cash_before[i]
            w.cash[i] -= amount
            w.units[i, target] += amount / w.price[target]
            w.basis[i, target] += amount
            flow[target] += amount
            outside_flow += amount
            w.event("transaction", bank=i, kind=kind)
    w.outside += outside_flow
    # BORROW: every caller demands a fraction of its loan; each debtor pays the sum of the calls
    # on it from cash (after everybody's LEND and INVEST), then by forced sales at the current
    # price, which join the order flow.
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
        paid, _ = raise_cash(w, demand, "loan_call", flow)
        for j in range(n):
            if demand[j] - paid[j] > TOL * max(1.0, demand[j]):
                illiquid[j] = True  # every caller of j gets the same fraction
        for i, j, due in calls:
            share = paid[j] / demand[j] if demand[j] > 0 else 1.0
            w.cash[i] += due * share
            w.loans[i, j] -= due * share
            w.event("transaction", bank=i, kind="BORROW")
    return executed, invalid, illiquid


# ----------------------------------------------------------------------------- 3.-6. markets
def reprice(w: World, cfg: EnvConfig, flow: np.ndarray, eps: np.ndarray) -> None:
    """Step 3: ``r = impact * flow / depth + drift + sigma * eps - sigma^2 / 2``, clipped to
    ``+-max_move`` (circuit breaker); ``price *= exp(r)``; ``r`` is the observed last return and
    feeds the EWMA of squared returns ``vol2`` (the margin's realised volatility)."""
    lam = cfg.margin.ewma
    for m, mk in enumerate(cfg.markets):
        sigma = mk.volatility
        # flow: buys - sells of this step (actions, loan-call and deposit-run forced sales).
        r = mk.impact * flow[m] / w.depth[m] + mk.drift + sigma * eps[m] - 0.5 * sigma**2
        if abs(r) > mk.max_move:
            w.stats["circuit_breaker"] += 1
        r = min(max(r, -mk.max_move), mk.max_move)
        w.price[m] *= np.exp(r)
        w.last_return[m] = r
        w.vol2[m] = lam * w.vol2[m] + (1.0 - lam) * r**2


def pay_interest(w: World, cfg: EnvConfig) -> None:
    """Step 4a: each borrower pays ``rate * loan`` to its lender, in cash (netted per bank)."""
    for i in range(w.n):
        w.cash[i] += cfg.interest_rate * (w.lent(i) - w.borrowed(i))


def cover_overdrafts(w: World, cfg: EnvConfig) -> None:
    """Step 4b: live banks with negative cash sell units pro rata to get back to zero; the
    sales move prices like a fire sale. Nothing happens unless some live bank is overdrawn by
    more than TOL (then every overdrawn live bank covers, however little it is short)."""
    if not any(w.alive[i] and w.cash[i] < -TOL for i in range(w.n)):
        return
    need = np.array([max(0.0, -w.cash[i]) if w.alive[i] else 0.0 for i in range(w.n)])
    paid, sold_value = raise_cash(w, need, "overdraft")
    for i in range(w.n):
        w.cash[i] += paid[i]  # what it could not raise leaves it illiquid (step 7)
    fire_sale_prices(w, cfg, sold_value)


def book_profits(w: World) -> None:
    """Step 5 (due steps only): per position, gain ``units * price - basis`` is sold at the
    market price (no price impact, no order flow), a loss is booked without a trade; then
    ``basis = units * price`` for every position."""
    for i in range(w.n):
        realised = pnl_total = pnl_abs = 0.0
        for m in range(w.m):
            pnl = w.units[i, m] * w.price[m] - w.basis[i, m] if w.alive[i] else 0.0
            gain = max(pnl, 0.0)
            w.units[i, m] -= gain / w.price[m]
            realised += gain
            pnl_total += pnl
            pnl_abs += abs(pnl)
        w.cash[i] += realised
        w.outside -= realised
        for m in range(w.m):
            w.basis[i, m] = w.units[i, m] * w.price[m]
        if w.alive[i] and pnl_abs > 0:
            w.event("profit_booking", bank=i)
            w.stats["profit_booking"] += 1


def margin_calls(w: World, cfg: EnvConfig) -> None:
    """Step 6: requirement ``z * sigma_m * (1 + vol_sensitivity * vol_t) * value`` summed over
    positions, ``vol_t = max(0, sqrt(vol2) / sigma - 1)``. A live bank whose positive cash falls
    short by ``gap`` sells ``gap / (1 + req / value)`` pro rata — exactly enough, as selling also
    cuts the requirement — capped at all it holds. Sales move prices like a fire sale.

    Nothing happens unless some live bank's gap exceeds TOL (then every live bank with a
    positive gap sells); a ``margin_call`` event is recorded for sales above TOL only.
    """
    mc = cfg.margin
    rate = np.zeros(w.m)
    for m, mk in enumerate(cfg.markets):
        sigma = mk.volatility
        vol_t = max(0.0, np.sqrt(w.vol2[m]) / max(sigma, 1e-12) - 1.0)
        rate[m] = mc.z * sigma * (1.0 + mc.vol_sensitivity * vol_t)
    req = np.array(
        [sum(w.units[i, m] * (w.price[m] * rate[m]) for m in range(w.m)) for i in range(w.n)]
    )
    gap = np.array([req[i] - max(w.cash[i], 0.0) for i in range(w.n)])
    if not any(w.alive[i] and gap[i] > TOL for i in range(w.n)):
        return
    sold_units = np.zeros(w.m)
    for i in range(w.n):
        short = max(0.0, gap[i]) if w.alive[i] else 0.0
        value = w.market_value(i)
        c = req[i] / value if value > 0 else 0.0
        sell = min(value, short / (1.0 + c))
        sell_pro_rata(w, i, sell, sold_units)
        w.cash[i] += sell
        if sell > TOL:
            w.event("margin_call", bank=i)
            w.stats["margin_call"] += 1
    fire_sale_prices(w, cfg, sold_units * w.price)


# ----------------------------------------------------------------------------- 7. clearing
def clear_network(w: World, cfg: EnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """Greatest clearing vector (Eisenberg–Noe with Rogers–Veraart default costs) by fictitious
    default. Returns (in default, recovery ``p_i / pbar_i``, 1 for a bank that owes nothing).

    Bank i owes ``pbar_i = sum_j loans[j, i] + deposits_i`` (interbank debt and deposits rank
    pari passu), holds ``e_i = cash + market value + external`` outside the interbank market
    and receives ``x_i = sum_j loans[i, j] * p_j / pbar_j``. A solvent bank pays ``pbar_i``; a
    defaulter pays ``max(0, e~_i + beta * x_i)`` with ``e~_i = alpha * e_i`` if ``e_i >= 0``
    (else ``e_i``). Fictitious default: start with nobody in default; a bank defaults when
    ``pbar_i - e_i - x_i > CLEARING_TOL * max(1, pbar_i)``; solve the defaulters' payments
    exactly; repeat until no new default.
    """
    alpha, beta = cfg.contagion.alpha, cfg.contagion.beta
    n = w.n
    pbar = np.array([w.borrowed(i) + w.deposits[i] for i in range(n)])
    e = np.array([w.cash[i] + w.market_value(i) + w.external[i] for i in range(n)])
    e_cost = np.array([alpha * e[i] if e[i] >= 0 else e[i] for i in range(n)])

    def receipts(p: np.ndarray) -> np.ndarray:
        share = np.array([p[j] / pbar[j] if pbar[j] > 0 else 0.0 for j in range(n)])
        return np.array([float(w.loans[i, :] @ share) for i in range(n)])

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
            #           + beta * sum_{c paying} loans[a, c] / pbar_c * p_c
            fixed = np.where(defaulted, 0.0, pbar)
            x_fixed = receipts(fixed)
            group = [i for i in range(n) if paying[i]]
            system = np.eye(len(group))
            rhs = np.zeros(len(group))
            for r, a in enumerate(group):
                rhs[r] = e_cost[a] + beta * x_fixed[a]
                for c_col, c in enumerate(group):
                    system[r, c_col] -= beta * w.loans[a, c] / pbar[c]
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
    recovery = np.array([payments[i] / pbar[i] if pbar[i] > 0 else 1.0 for i in range(n)])
    return defaulted, recovery


# ----------------------------------------------------------------------------- 7. cascade
def resolve_defaults(
    w: World, cfg: EnvConfig, forced: np.ndarray, cause_forced: str
) -> tuple[np.ndarray, int, np.ndarray]:
    """Cascade rounds until no live bank fails. A live bank fails when its equity is below
    ``-TOL * max(1, equity0)``, its cash below ``-TOL``, it is ``forced`` (round 1: liquidity
    defaults or removals; later rounds: survivors that could not pay a failed bank's call) or
    the round's clearing puts it in default (credit contagion). At most ``max_rounds`` rounds.

    Returns (banks that fell, rounds with a failure, banks linked by a loan to a fallen bank
    and still alive).
    """
    n = w.n
    fallen = np.zeros(n, dtype=bool)
    linked = np.zeros(n, dtype=bool)
    rounds = 0
    forced = forced.copy()
    for rnd in range(1, cfg.contagion.max_rounds + 1):
        equity = [w.equity(i) for i in range(n)]
        insolvent = [equity[i] < -TOL * max(1.0, w.equity0[i]) for i in range(n)]
        illiquid = [w.cash[i] < -TOL for i in range(n)]
        new = [w.alive[i] and (insolvent[i] or illiquid[i] or forced[i]) for i in range(n)]
        if not any(new):
            break
        rounds = rnd
        in_default, recovery = clear_network(w, cfg)
        fell = np.array([w.alive[i] and (in_default[i] or new[i]) for i in range(n)])
        causes = {}
        for q in np.flatnonzero(fell):
            if forced[q]:
                causes[q] = cause_forced
            elif insolvent[q]:
                causes[q] = "insolvent"
            elif illiquid[q]:
                causes[q] = "illiquid"
            else:
                causes[q] = "contagion"
        recovery = np.where(fell, recovery, 1.0)
        forced, linked_now = settle(w, cfg, fell, recovery, equity)
        for q in np.flatnonzero(fell):
            w.event("default", bank=int(q), round=rnd, cause=causes[q])
        w.event("cascade", round=rnd)
        fallen |= fell
        linked |= linked_now
    return fallen, rounds, linked & w.alive


def settle(
    w: World, cfg: EnvConfig, fell: np.ndarray, recovery: np.ndarray, equity: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the failed banks of one cascade round. Returns (survivors that could not pay a
    failed bank's call: they fail next round, banks linked by a loan either way to a failed
    bank)."""
    cc = cfg.contagion
    n = w.n
    failed = [q for q in range(n) if fell[q]]
    survivor = np.array([w.alive[i] and not fell[i] for i in range(n)])
    debts = np.array([w.borrowed(q) for q in range(n)])  # before anything is zeroed
    claims_on_failed = np.array([sum(w.loans[i, q] for q in failed) for i in range(n)])
    debts_to_failed = np.array([sum(w.loans[q, k] for q in failed) for k in range(n)])
    linked = (claims_on_failed + debts_to_failed) > 0
    # 1. The failed banks' units are fire-sold; the price falls first, and the estate is paid
    #    the fallen price (proceeds at the post-impact price).
    units_sold = np.array([sum(w.units[q, m] for q in failed) for m in range(w.m)])
    fire_sale_prices(w, cfg, units_sold * w.price)
    proceeds = {q: w.market_value(q) for q in failed}
    # 2. External assets go to the outside at alpha of book.
    external_realised = {q: cc.alpha * w.external[q] for q in failed}
    # 3. Creditors of failed banks get recovery * claim in cash (survivors now; failed creditors
    #    count it in their estate); depositors likewise.
    received = np.array([sum(w.loans[i, q] * recovery[q] for q in failed) for i in range(n)])
    for i in range(n):
        if survivor[i]:
            w.cash[i] += received[i]
    # 4. Loans of failed banks to survivors are called in full: survivors pay from cash, then
    #    forced sales at the current (already fire-sold) price, without further price impact.
    demand = np.where(survivor, debts_to_failed, 0.0)
    paid, _ = raise_cash(w, demand, "resolution")
    share = np.array([paid[k] / demand[k] if demand[k] > 0 else 1.0 for k in range(n)])
    short = np.array(
        [survivor[k] and demand[k] - paid[k] > TOL * max(1.0, demand[k]) for k in range(n)]
    )
    # 5. The estate: Rogers-Veraart costs take (1 - alpha) of its cash and sale proceeds and
    #    (1 - beta) of its interbank collections; the clearing payment recovery * (debts +
    #    deposits) goes to creditors and depositors; whatever is left over (or missing) goes to
    #    (or comes from) the outside. Proceeds and external assets were paid by the outside.
    for q in failed:
        collected = sum(w.loans[q, k] * share[k] for k in range(n) if survivor[k])
        liquid = w.cash[q] + proceeds[q]
        interbank_in = collected + received[q]
        costs = (1.0 - cc.alpha) * max(liquid, 0.0) + (1.0 - cc.beta) * interbank_in
        estate_in = liquid + external_realised[q] + interbank_in - costs
        estate_out = recovery[q] * (debts[q] + w.deposits[q])
        residual = estate_in - estate_out
        deposits_paid = recovery[q] * w.deposits[q]
        # Net, this is cash + interbank_in - recovery * debts: proceeds, external assets and
        # default costs cancel (they reach the state only through the clearing's recovery).
        w.outside += costs + deposits_paid + residual - proceeds[q] - external_realised[q]
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
    return short, linked


# ----------------------------------------------------------------------------- 8. beliefs
def update_beliefs(w: World, cfg: EnvConfig, linked: np.ndarray, u: np.ndarray) -> bool:
    """Bernoulli posterior per slot on 'the counterparty is distressed' (dead, or equity /
    assets below the threshold). The signal says 'distressed' when ``u < q`` for a distressed
    counterparty and when ``u >= q`` for a healthy one, q the reliability. Returns whether a
    belief cascade happened (a share of live banks whose mean belief moved by more than
    ``cascade_shift`` of at least ``cascade_fraction``)."""
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
    """``U = Revenue - rho * Risk - lam * Liquidity - gamma * Regulatory`` of a live bank."""
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
        w.units[i, m] * (w.price[m] * mk.volatility) for m, mk in enumerate(cfg.markets)
    )
    risk = (exposure + var) / e0
    liquidity = max(0.0, rc.liquidity_floor - w.cash[i] / max(liab, 1e-9))
    leverage = assets / max(equity, 1e-9)
    regulatory = min(max(leverage / w.target_leverage[i] - 1.0, 0.0), 10.0)
    if rc.min_capital_ratio > 0:
        capital_ratio = equity / max(assets, 1e-9)
        regulatory += max(0.0, rc.min_capital_ratio - capital_ratio) / rc.min_capital_ratio
    return revenue - rc.rho * risk - rc.lam * liquidity - rc.gamma * regulatory


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
    flow = np.zeros(w.m)  # net order flow per market: buys - sells, forced sales included
    # 1. Scenario; removals are resolved before anyone acts.
    fallen_removed = np.zeros(w.n, dtype=bool)
    linked_removed = np.zeros(w.n, dtype=bool)
    run_short = np.zeros(w.n, dtype=bool)
    if cfg.scenario.shocks or cfg.scenario.interventions:
        remove, run_short = apply_scenario(w, cfg, flow)
        if remove.any():
            for i in np.flatnonzero(remove):
                w.event("bank_removed", bank=int(i))
            fallen_removed, _, linked_removed = resolve_defaults(w, cfg, remove, "removed")
    # 2. Actions.
    executed, invalid, illiquid = execute_actions(w, cfg, actions, flow)
    illiquid |= run_short
    # 3. Markets.
    reprice(w, cfg, flow, eps)
    # 4. Interest, then overdrafts (only when interest is charged at all).
    if cfg.interest_rate > 0:
        pay_interest(w, cfg)
        cover_overdrafts(w, cfg)
    # 5. Profit booking.
    if step_no % cfg.profit_booking_interval == 0:
        book_profits(w)
    # 6. Margin.
    if cfg.margin.enabled:
        margin_calls(w, cfg)
    # 7. Defaults and cascade (the rounds of a removal are not counted).
    fallen, rounds, linked = resolve_defaults(w, cfg, illiquid, "illiquid")
    fallen |= fallen_removed
    linked = (linked | linked_removed) & w.alive
    # 8. Beliefs.
    cascade = update_beliefs(w, cfg, linked, u)
    if cascade:
        w.event("belief_cascade")
    # 9. Rewards on the books after the cascade.
    defaulted_now = alive_before & ~w.alive
    rewards = np.zeros(w.n)
    for i in range(w.n):
        if defaulted_now[i]:
            rewards[i] = -cfg.reward.default_penalty
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
    "cash loans units basis external deposits alive price price0 depth last_return vol2 slots "
    "belief equity0 equity_prev target_leverage risk_factor default_step"
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
