"""The batched transition ``step(state, actions, params, rng) -> (state, StepOutput)``.

One call advances B worlds by one step (DESIGN section 4). Every bank-level operation is an array
operation over (world, bank); the only Python loops run over scenario items, cascade rounds and
belief/market axes of fixed small size — never over banks or worlds.

Step order
----------
1. ``step_start``; scheduled shocks and interventions apply.
2. Actions execute, simultaneously and order-free (no bank is favoured, so no permutation is
   needed): DIVEST sales first; then LEND and INVEST, each a fraction of the bank's cash after its
   own sale; then BORROW calls. A debtor pays all calls on it from cash, then by selling market
   units pro rata at the current price (forced sales); if it still falls short, every caller gets
   the same fraction and the debtor is in *liquidity default*.
   Actions that are masked out (dead or padded slot, no cash, no loan, no units, funding freeze)
   become HOLD and are flagged ``invalid``.
3. Markets reprice on the step's net flow (buys - sells, forced sales included):
   ``price *= exp(clip(impact * flow / depth + drift + sigma * eps - sigma^2 / 2, +-max_move))``
   (``max_move`` is a limit-up/limit-down circuit breaker).
4. Interest ``r * loans[i, j]`` is paid by j to i from cash; a bank left overdrawn sells units
   pro rata to cover it (a ``forced_sale``, with fire-sale price impact); one that still cannot
   is in liquidity default at step 7.
5. Every ``profit_booking_interval`` steps each position's gain since its last booking,
   ``units * price - basis``, is realised: gains are sold for cash at the market price (no price
   impact), losses are booked without a trade; ``basis`` is reset to ``units * price``.
6. Margin: requirement ``z * sigma_m * (1 + beta * vol_t) * value`` summed over positions, with
   ``vol_t = max(0, realised_vol / sigma - 1)``; a bank whose cash falls short sells just enough
   units, pro rata, to cover it (``margin_call``); these sales move prices like fire sales.
7. Defaults and cascade: banks with negative equity, negative cash or unpaid calls default. Each
   round clears the network of the affected worlds with Rogers–Veraart/Eisenberg–Noe
   (``rudra_env.contagion.eisenberg_noe``: interbank loans and deposits pari passu), which also
   finds the banks that fall through credit contagion in that round. Failed banks are resolved:
   their market units are fire-sold (``price *= 1 - fire_sale_impact * sold / depth``), external
   assets sold to the outside at alpha of book, loans to survivors called in full (survivors pay
   from cash, then forced sales; what they cannot pay is written off and they default next round),
   creditors and depositors paid their recovery ``p_j / pbar_j`` in cash. As in Rogers–Veraart,
   alpha applies to all of the failed bank's non-interbank assets (cash, market, external) and
   beta to its interbank collections; the lost shares are default costs paid to the outside.
   The estate's residual (fire-sale prices below the clearing marks, survivors' shortfalls) is
   returned to, or covered by, the outside (``outside_flow``). Books are zeroed. Survivors are
   re-marked at the new prices, and the loop repeats until no new default.
8. Beliefs update (Bayes on a noisy distress signal per counterparty slot; defaults push beliefs
   about the defaulters' neighbours towards 1; belief cascades are detected).
9. Rewards (``rudra_env.core.reward.utility``), ``step_end``.
"""

from __future__ import annotations

import dataclasses
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rudra_env.actions import HOLD
from rudra_env.contagion import _sum_rows, clear_unchecked  # shared row-sum helper
from rudra_env.core.events import StepRecord
from rudra_env.core.reward import utility
from rudra_env.core.state import (
    NetworkState,
    Params,
    SlotIndex,
    balance_sheet,
)

__all__ = [
    "StepNoise",
    "StepOutput",
    "step",
    "add_capital",
    "remove_banks",
    "resolve_defaults",
    "funding_frozen",
]

TOL = 1e-9
PRICE_FLOOR = 0.01  # one fire-sale or margin round can cut a price to at most 1% of itself


@dataclass
class StepNoise:
    """The random draws of one step, drawn up front so callers can share them across worlds
    (common random numbers when scoring candidate actions on copies of one state)."""

    market: np.ndarray
    """(B, M) standard normal shocks of the log prices."""
    signal: np.ndarray
    """(B, N, K) uniforms that draw the belief signals."""

    @classmethod
    def draw(cls, rng: np.random.Generator, b: int, n: int, m: int, k: int) -> StepNoise:
        return cls(
            market=rng.standard_normal((b, m)), signal=rng.random((b, n, k), dtype=np.float32)
        )

    def repeat(self, c: int) -> StepNoise:
        """Each world's draws repeated ``c`` times consecutively (matches ``state.repeat``)."""
        return StepNoise(np.repeat(self.market, c, axis=0), np.repeat(self.signal, c, axis=0))


@dataclass
class StepOutput:
    """What one step returns besides the new state (arrays over B worlds, N banks)."""

    rewards: np.ndarray
    """(B, N) utility; -default_penalty for banks that defaulted this step; 0 for the dead."""
    defaulted: np.ndarray
    """(B, N) bool: defaulted (or were removed) during this step."""
    invalid: np.ndarray
    """(B, N) bool: the submitted action was masked out and executed as HOLD."""
    executed: np.ndarray
    """(B, N) int: the action actually executed (0 where invalid)."""
    cascade_rounds: np.ndarray
    """(B,) int: cascade rounds this step."""
    belief_cascade: np.ndarray
    """(B,) bool: a belief cascade was detected."""
    record: StepRecord
    """Compact events; ``record.events(world)`` expands them."""
    balance: dict[str, np.ndarray]
    """``balance_sheet`` of the new state (pass it to ``observe`` to skip recomputing it)."""


# ----------------------------------------------------------------------------- helpers
def _raise_cash(
    s: NetworkState,
    need: np.ndarray,
    flow: np.ndarray | None,
    rec: StepRecord | None = None,
    reason: str = "",
    worlds: np.ndarray | None = None,
) -> np.ndarray:
    """Debtors pay ``need`` (B, N) from cash, then by selling units pro rata at the current price.

    Returns what each could pay (<= need): ``need`` itself when everybody pays from cash. Sales
    add to ``flow`` (B, M) when given; the buyer is the outside. Each sale is a ``forced_sale``
    event (``worlds`` maps sub-state rows to world ids). Mutates ``s``.
    """
    if not np.count_nonzero(need > s.cash):  # everybody pays from cash: no sale
        s.cash -= need
        return need
    from_cash = np.minimum(need, np.maximum(s.cash, 0.0))
    rest = need - from_cash
    if not np.count_nonzero(rest > 0):  # the others owe nothing
        s.cash -= from_cash
        return need
    mv = _value(s.units, s.price)
    sell = np.minimum(rest, mv)
    sold = _sell_units(s, sell, mv)
    if flow is not None:
        flow -= sold
    s.cash -= from_cash
    if rec is not None:
        at, wi, bi = _entries(sell > 0)
        sold_now = sell.reshape(-1)[at]
        rec.add_rows(
            "forced_sale",
            world=wi if worlds is None else worlds[wi],
            bank=bi,
            reason=np.full(len(wi), reason),
            sold=sold_now,
            outside_flow=-sold_now,
        )
    return from_cash + sell


def _sell_units(s: NetworkState, sell: np.ndarray, mv: np.ndarray) -> np.ndarray:
    """Sell ``sell`` (B, N) of each bank's market value ``mv``, pro rata over its positions, at
    the current price to the outside (the caller decides where the proceeds go). Returns the
    value sold per market, (B, M).

    Callers cap ``sell`` at ``mv`` and never ask for a negative sale, so ``sell < mv`` implies
    ``mv > 0``; a bank asked for all of it (``sell >= mv``) sells everything.
    """
    frac = np.divide(sell, mv, out=np.ones_like(sell), where=sell < mv)
    sold = _over_banks(frac, s.units) * s.price
    s.units -= s.units * frac[..., None]
    s.basis -= s.basis * frac[..., None]
    s.outside -= sell.sum(axis=1)
    return sold


def _every_world(b: int) -> np.ndarray:
    """A fresh (B,) all-true mask (``np.ones`` costs several times more for a short array)."""
    out = np.empty(b, dtype=bool)
    out.fill(True)
    return out


def _entries(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices, worlds and banks of the true entries of a (B, N) mask, in bank order
    (``x.reshape(-1)[flat]`` gathers them: cheaper than ``x[worlds, banks]``)."""
    flat = mask.reshape(-1).nonzero()[0]
    wi, bi = np.divmod(flat, mask.shape[1])
    return flat, wi, bi


def _value(units: np.ndarray, price: np.ndarray) -> np.ndarray:
    """(B, N) sum_m units[b, n, m] * price[b, m] (a batched matrix-vector product)."""
    return (units @ price[..., None])[..., 0]


def _over_banks(weights: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(B, M) sum_n weights[b, n] * units[b, n, m]."""
    return (weights[:, None, :] @ units)[:, 0]


def _fire_sale_prices(s: NetworkState, sold_value: np.ndarray, impact: float) -> None:
    """price *= max(PRICE_FLOOR, 1 - impact * sold / depth) for (B, M) currency amounts sold."""
    s.price *= np.maximum(PRICE_FLOOR, 1.0 - impact * sold_value / s.depth)


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


def remove_banks(
    s: NetworkState, p: Params, remove: np.ndarray, rec: StepRecord
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve (remove) the banks in the (B, N) mask now, with the full default machinery.

    Returns the (B, N) masks of every bank that fell (the removed ones included) and of the
    banks linked to them (for beliefs).
    """
    remove = remove & s.alive
    wi, bi = np.nonzero(remove)
    rec.add_rows("bank_removed", world=wi, bank=bi)
    fallen, _rounds, hit, _bs = resolve_defaults(s, p, remove, rec, cause_forced="removed")
    return fallen, hit


# ----------------------------------------------------------------------------- defaults
def resolve_defaults(
    s: NetworkState,
    p: Params,
    forced: np.ndarray,
    rec: StepRecord,
    cause_forced: str = "illiquid",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Cascade loop of step 7: clear, resolve, fire-sell, re-mark, until no new default.

    ``forced`` (B, N) marks banks that default regardless of equity (liquidity, removal).
    Returns (fallen (B, N), rounds (B,), neighbours-of-fallen hit mask (B, N), balance sheet of
    the final state).
    """
    cc = p.config.contagion
    b, n, _ = s.shape
    fallen_all = np.zeros((b, n), dtype=bool)
    hit = np.zeros((b, n), dtype=bool)
    rounds = np.zeros(b, dtype=np.int64)
    forced = forced.copy()
    step_no = s.t + 1
    causes = np.array([cause_forced, "insolvent", "illiquid", "contagion"])
    bs = balance_sheet(s)
    for rnd in range(1, cc.max_rounds + 1):
        if rnd > 1:
            bs = balance_sheet(s)
        insolvent = bs["equity"] < -TOL * np.maximum(1.0, s.equity0)  # causes: read for
        illiquid = s.cash < -TOL  # live banks only
        new = (insolvent | illiquid | forced) & s.alive
        if not np.count_nonzero(new):
            break
        w = np.nonzero(new.any(axis=1))[0]
        rounds[w] = rnd
        whole = len(w) == b  # every world is affected: work in place, no sub-state
        # The sub-state of the affected worlds leaves ``loans`` out (the (B, N, N) array is
        # never copied): the clearing and _settle read only the failed or defaulting banks'
        # rows and columns of ``s.loans``, with the interbank totals kept in the state.
        sub = s if whole else s.take(w, loans=False)
        sub_bs = bs if whole else {k: v[w] for k, v in bs.items()}
        clearing = clear_unchecked(
            s.loans.transpose(0, 2, 1),
            sub.cash + sub_bs["market_value"] + sub.external,
            sub.deposits,
            cc.alpha,
            cc.beta,
            obligations=sub.ib_liab + sub.deposits,
            full_receipts=sub.ib_assets,
            rows=w,
        )
        fell = (clearing.defaulted | new[w]) & sub.alive
        recovery = np.where(fell, clearing.recovery, 1.0)
        # Cause code per bank, an index into ``causes``; named in _settle for the failed only.
        cause = np.where(
            forced[w] & sub.alive, 0, np.where(insolvent[w], 1, np.where(illiquid[w], 2, 3))
        )
        forced[:] = False
        next_forced, hit_w = _settle(
            sub, s.loans, p, fell, recovery, sub_bs, (cause, causes), rec, w, step_no[w], rnd
        )
        if not whole:
            _write_back(s, sub, w)
        forced[w] = next_forced
        fallen_all[w] |= fell
        hit[w] |= hit_w
    else:
        bs = balance_sheet(s)
    hit &= s.alive
    return fallen_all, rounds, hit, bs


def _write_back(s: NetworkState, sub: NetworkState, w: np.ndarray) -> None:
    for name in (
        "cash",
        "units",
        "basis",
        "external",
        "deposits",
        "alive",
        "price",
        "default_step",
        "outside",
        "ib_assets",
        "ib_liab",
        "slot_lent",
        "slot_borrowed",
    ):
        getattr(s, name)[w] = getattr(sub, name)


def _settle(
    s: NetworkState,
    loans: np.ndarray,
    p: Params,
    fell: np.ndarray,
    recovery: np.ndarray,
    bs: dict[str, np.ndarray],
    cause: tuple[np.ndarray, np.ndarray],
    rec: StepRecord,
    worlds: np.ndarray,
    step_no: np.ndarray,
    rnd: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the failed banks ``fell`` (W, N) of sub-state ``s`` (worlds ``worlds`` of the
    full state, whose (B, N, N) ``loans`` this reads and updates; ``s.loans`` is not used).

    ``cause`` is (code (W, N) int, names): each failed bank's cause is ``names[code]``.
    Returns next round's forced defaults (survivors that could not pay a failed bank's called
    loans) and the banks linked by a loan, either way, to a failed bank (for beliefs).
    Works on the failed banks' rows and columns of ``loans`` only: a round with F failures
    costs O(F N) reads of the loans, not passes over them.
    """
    cc = p.config.contagion
    f = fell.astype(np.float64)
    survive = s.alive & ~fell
    equity_before = bs["equity"]
    liab = s.ib_liab.copy()  # before any zeroing
    flat, fw, fb = _entries(fell)  # failed (sub world, bank)
    gw = worlds[fw]  # their world in ``loans``
    lent_to = loans[gw, :, fb]  # (F, N): [q, i] what bank i lent failed bank q
    lent_by = loans[gw, fb, :]  # (F, N): [q, k] what failed bank q lent bank k
    lent_to_failed = _sum_rows(lent_to, fw, len(fell))  # claims on failed banks
    owed_to_failed = _sum_rows(lent_by, fw, len(fell))  # debts to failed banks
    hit = (lent_to_failed + owed_to_failed) > 0
    # 1. Fire-sell the failed banks' market units; the price falls before the proceeds are paid.
    sold_units = s.units * f[..., None]
    _fire_sale_prices(s, _over_banks(f, s.units) * s.price, cc.fire_sale_impact)
    proceeds = _value(sold_units, s.price)
    # 2. External assets sold to the outside at alpha of their book value.
    ext_real = cc.alpha * s.external * f
    # 3. Creditors of failed banks receive recovery r_j * claim in cash; depositors likewise.
    rf = recovery * f
    received = _sum_rows(lent_to * recovery[fw, fb][:, None], fw, len(fell))  # by creditors
    dep_paid = rf * s.deposits
    s.cash += received * survive
    # 4. Loans of failed banks to survivors are called in full.
    demand = owed_to_failed * survive
    paid = _raise_cash(s, demand, None, rec, "resolution", worlds)
    phi = np.divide(paid, demand, out=np.ones_like(paid), where=demand > 0)
    collected = np.zeros_like(f)
    collected[fw, fb] = (lent_by * (phi * survive)[fw]).sum(axis=1)
    short = survive & (demand - paid > TOL * np.maximum(1.0, demand))
    # 5. The estate: Rogers-Veraart costs take (1 - alpha) of its cash and sale proceeds and
    #    (1 - beta) of its interbank collections (paid out); the clearing payment r_j * pbar_j
    #    goes to creditors and depositors; the residual (fire-sale discount against the clearing
    #    marks, survivors' shortfalls) is returned to, or covered by, the outside.
    liquid = (s.cash + proceeds) * f
    interbank_in = collected + received * f
    costs = (1.0 - cc.alpha) * np.maximum(liquid, 0.0) + (1.0 - cc.beta) * interbank_in
    estate_in = liquid + ext_real + interbank_in - costs
    estate_out = rf * (liab + s.deposits)
    residual = (estate_in - estate_out) * f
    flow_out = costs + dep_paid + residual - proceeds - ext_real
    s.outside += flow_out.sum(axis=1)
    creditor_loss = (1.0 - recovery) * f * (liab + s.deposits)
    # 5. Zero the failed banks' books, keeping the derived interbank arrays in sync.
    keep = ~fell
    loans[gw, fb, :] = 0.0
    loans[gw, :, fb] = 0.0
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
    for arr in (s.cash, s.external, s.deposits):
        arr *= keep
    s.units *= keep[..., None]
    s.basis *= keep[..., None]
    s.alive &= keep
    s.default_step[fw, fb] = step_no[fw]
    # 6. Events: one `default` per failed bank, one `cascade` per world and round.
    at = {"cause": cause[1][cause[0].ravel()[flat]]}
    for name, arr in (
        ("equity", equity_before),
        ("recovery", recovery),
        ("creditor_loss", creditor_loss),
        ("fire_sale_proceeds", proceeds),
        ("default_costs", costs),
        ("residual", residual),
        ("outside_flow", flow_out),
    ):
        at[name] = arr.ravel()[flat]
    rec.add_rows("default", world=gw, bank=fb, round=np.full(len(fw), rnd), **at)
    uw = np.unique(fw)  # the cascade's banks are this round's `default` rows of the world
    rec.add_rows("cascade", world=worlds[uw], round=np.full(len(uw), rnd), prices=s.price[uw])
    return short, hit


# ----------------------------------------------------------------------------- scenario
def _apply_scenario(
    s: NetworkState, p: Params, rec: StepRecord, flow: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shocks and interventions scheduled for step t + 1.

    Returns (banks to remove now, banks that could not pay a deposit run)."""
    b, n, m = s.shape
    t = s.t + 1
    forced = np.zeros((b, n), dtype=bool)
    removed = np.zeros((b, n), dtype=bool)
    for sh in p.config.scenario.shocks:
        active = (t >= sh.start) & (t < sh.start + sh.duration) & s.alive.any(axis=1)
        if not active.any():
            continue
        per_step = 1.0 - (1.0 - sh.magnitude) ** (1.0 / sh.duration)
        wi = np.nonzero(active)[0]
        loss = outside = np.zeros(b)
        if sh.type == "funding_freeze":  # acts through the LEND mask (funding_frozen)
            pass
        elif sh.type == "market_crash":
            mk = np.array([name in sh.targets or not sh.targets for name in p.market_names])
            factor = np.where(mk, 1.0 - per_step, 1.0)
            before = _value(s.units, s.price).sum(axis=1)
            s.price[active] *= factor
            loss = before - _value(s.units, s.price).sum(axis=1)
        else:
            banks = np.zeros(n, dtype=bool)
            banks[list(sh.targets) if sh.targets else slice(None)] = True
            hit = active[:, None] & banks[None, :] & s.alive
            if sh.type == "bank_capital_hit":
                cut = s.external * per_step * hit
                s.external -= cut
                loss = cut.sum(axis=1)
            else:  # deposit_run
                demand = s.deposits * per_step * hit
                paid = _raise_cash(s, demand, flow, rec, "deposit_run")
                s.deposits -= paid
                s.outside += paid.sum(axis=1)
                forced |= hit & (demand - paid > TOL * np.maximum(1.0, demand))
                outside = paid.sum(axis=1)
        rec.add_rows(
            "shock",
            world=wi,
            kind=np.full(len(wi), sh.type),
            loss=loss[wi],
            outside_flow=outside[wi],
        )
    for iv in p.config.scenario.interventions:
        now = t == iv.step
        if not now.any():
            continue
        if iv.type == "capital_injection":
            add_capital(s, iv.bank, iv.amount, now, rec)
        else:
            removed[now, iv.bank] = True
    return removed, forced


# ----------------------------------------------------------------------------- actions
def _execute(
    s: NetworkState, p: Params, actions: np.ndarray, rec: StepRecord, flow: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2. Returns (executed actions, invalid mask, liquidity-default mask).

    Works on compact arrays of the submitted non-HOLD actions of live banks (one entry per
    bank), sorted by ``ActionTable.group`` — BORROW, LEND, INVEST, DIVEST; a stable sort, so
    banks keep their order within a kind. Each kind is then a slice, and so are kinds that
    share work. Sums over banks of different kinds (``outside``) and the events keep bank
    order. (``ravel`` gives views: state arrays are C-contiguous.)
    """
    b, n, m = s.shape
    tab = p.action_table
    si = s.slot_index
    flat = actions.ravel()
    first = (s.alive.ravel() & (flat != HOLD)).nonzero()[0]  # flat (world, bank)
    first_act = flat[first]
    order = tab.group[first_act].argsort(kind="stable")
    bank = first[order]  # entries in group order
    act = first_act[order]
    bo, ln, iv, dv = _group_slices(tab.group[act])
    loans = slice(0, ln.stop)  # BORROW and LEND
    spends = slice(ln.start, iv.stop)  # LEND and INVEST
    trades = slice(ln.start, None)  # LEND, INVEST and DIVEST
    sel = bank * p.K + tab.slot[act]  # flat (world, bank, slot)
    cp = si.bank.ravel()[sel]  # flat (world, counterparty)
    wi = bank // n
    mk = tab.market[act]
    wm = wi * m + mk  # flat (world, market)
    pos = bank * m + mk  # flat (world, bank, market)
    cash = s.cash.ravel()[bank]
    lent = s.slot_lent.ravel()[sel]
    own_units = s.units.ravel()[pos]
    # Masked-out actions execute as HOLD. BORROW needs a loan in the slot, LEND and INVEST cash,
    # DIVEST units; LEND and BORROW a live counterparty in the slot; LEND no funding freeze.
    ok = np.concatenate((lent[bo], cash[spends], own_units[dv])) > 0
    ok[loans] &= si.valid.ravel()[sel[loans]] & s.alive.ravel()[cp[loans]]
    if p.funding_freezes:
        ok[ln] &= ~funding_frozen(s, p)[wi[ln]]
    if np.count_nonzero(ok) < len(ok):
        invalid = np.zeros((b, n), dtype=bool)
        invalid.ravel()[bank[~ok]] = True
        executed, _, illiquid = _execute(s, p, np.where(invalid, HOLD, actions), rec, flow)
        return executed, invalid, illiquid
    fr = tab.fraction[act]
    amount = np.empty(len(act))
    price = s.price.ravel()
    # DIVEST: sell a fraction of one position.
    if dv.start < dv.stop:
        sold = fr[dv] * own_units[dv]
        amount[dv] = sold * price[wm[dv]]
        s.units.ravel()[pos[dv]] -= sold
        s.basis.ravel()[pos[dv]] *= 1.0 - fr[dv]
        flow -= np.bincount(wm[dv], weights=amount[dv], minlength=b * m).reshape(b, m)
    # LEND and INVEST: a fraction of the bank's cash. Cash moves once for every trading bank.
    amount[spends] = fr[spends] * cash[spends]
    s.cash.ravel()[bank[trades]] += np.concatenate((-amount[spends], amount[dv]))
    if ln.start < ln.stop:
        into = np.bincount(cp[ln], weights=amount[ln], minlength=b * n).reshape(b, n)
        s.cash += into
        s.ib_liab += into
    if iv.start < iv.stop:
        s.units.ravel()[pos[iv]] += amount[iv] / price[wm[iv]]
        s.basis.ravel()[pos[iv]] += amount[iv]
        flow += np.bincount(wm[iv], weights=amount[iv], minlength=b * m).reshape(b, m)
    # Market trades cross the system's boundary; summed per world in bank order.
    world, in_world = np.divmod(first, n)
    outside_flow = np.zeros(len(act))  # in bank order, like ``first``
    outside_flow[order[iv]] = amount[iv]
    outside_flow[order[dv]] = -amount[dv]
    s.outside += np.bincount(world, weights=outside_flow, minlength=b)
    # BORROW: call back a fraction of a loan; debtors pay pro rata what they can.
    illiquid = np.zeros((b, n), dtype=bool)
    if bo.start < bo.stop:
        due = fr[bo] * lent[bo]
        demand = np.bincount(cp[bo], weights=due, minlength=b * n).reshape(b, n)
        paid = _raise_cash(s, demand, flow, rec, "loan_call")
        if paid is demand:  # everybody paid in full from cash
            amount[bo] = due
            repaid = demand  # the same sum of the same dues
        else:
            phi = np.divide(paid, demand, out=np.ones_like(paid), where=demand > 0)
            amount[bo] = due * phi.ravel()[cp[bo]]
            repaid = np.bincount(cp[bo], weights=amount[bo], minlength=b * n).reshape(b, n)
            illiquid = demand - paid > TOL * np.maximum(1.0, demand)
        s.cash.ravel()[bank[bo]] += amount[bo]
        s.ib_liab -= repaid
    # Loans move: LEND adds, BORROW removes what was repaid (ib_liab is already updated).
    if ln.stop:
        _move_loans(s, si, bank[loans], sel[loans], np.concatenate((-amount[bo], amount[ln])))
    if len(act):
        target = np.empty(len(act), dtype=np.int64)  # counterparty or market
        target[order] = np.where(tab.on_slot[act], s.slots.ravel()[sel], mk)
        in_bank_order = np.empty(len(act))
        in_bank_order[order] = amount
        rec.add_rows(
            "transaction",
            world=world,
            bank=in_world,
            kind=tab.kind[first_act],
            target=target,
            size=tab.fraction[first_act],
            amount=in_bank_order,
            outside_flow=outside_flow,
        )
    executed = np.zeros((b, n), dtype=np.int64)
    executed.ravel()[first] = first_act
    return executed, np.zeros((b, n), dtype=bool), illiquid


def _group_slices(group: np.ndarray) -> tuple[slice, slice, slice, slice]:
    """The BORROW, LEND, INVEST and DIVEST slices of sorted ``ActionTable.group`` values."""
    e1, e2, e3 = group.searchsorted(_GROUP_STARTS).tolist()
    return slice(0, e1), slice(e1, e2), slice(e2, e3), slice(e3, len(group))


_GROUP_STARTS = np.array([2, 3, 4], dtype=np.int8)
"""Groups that start the LEND, INVEST and DIVEST slices."""


def _move_loans(
    s: NetworkState, si: SlotIndex, bank: np.ndarray, sel: np.ndarray, delta: np.ndarray
) -> None:
    """loans[lender, slot counterparty] += delta (one entry per lender) with ``ib_assets``,
    ``slot_lent`` and ``slot_borrowed`` kept in sync (the caller updates ``ib_liab``).

    ``bank`` is the lender's flat (world, bank) index and ``sel`` the flat (world, bank, slot)
    index of its slot. Lenders are distinct, so every scatter below hits distinct entries.
    """
    s.loans.ravel()[si.out.ravel()[sel]] += delta
    s.ib_assets.ravel()[bank] += delta
    s.slot_lent.ravel()[sel] += delta
    mirror = si.mirror.ravel()[sel]
    seen = mirror >= 0
    s.slot_borrowed.ravel()[mirror[seen]] += delta[seen]


# ----------------------------------------------------------------------------- markets
def _reprice(s: NetworkState, p: Params, flow: np.ndarray, eps: np.ndarray) -> None:
    r = p.impact * flow / s.depth + p.drift + p.sigma * eps - p.half_variance
    r = np.minimum(np.maximum(r, -p.max_move), p.max_move)
    s.price *= np.exp(r)
    s.last_return = r
    lam = p.config.margin.ewma
    s.vol2 = lam * s.vol2 + (1.0 - lam) * r**2


def _cover_overdrafts(s: NetworkState, p: Params, rec: StepRecord) -> None:
    """Banks left with negative cash sell units pro rata (fire-sale impact) to cover it; what
    they cannot cover leaves them illiquid (they default at step 7)."""
    if not np.count_nonzero((s.cash < -TOL) & s.alive):  # i.e. no need > TOL below
        return
    need = np.maximum(0.0, -s.cash) * s.alive
    sold = np.zeros_like(s.price)
    got = _raise_cash(s, need, sold, rec, "overdraft")
    s.cash += got
    _fire_sale_prices(s, -sold, p.config.contagion.fire_sale_impact)


def _book_profits(s: NetworkState, rec: StepRecord, due: np.ndarray) -> None:
    """Step 5 in the worlds ``due`` (B,): realise gains to cash, book losses; reset basis."""
    value = s.units * s.price[:, None, :]
    pnl = (value - s.basis) * due[:, None, None] * s.alive[..., None]
    gain = np.maximum(pnl, 0.0)
    s.units -= np.divide(gain, s.price[:, None, :])
    ones = np.ones(s.shape[2])
    gain_bank = gain @ ones
    s.cash += gain_bank
    s.outside -= gain_bank.sum(axis=1)
    s.basis = np.where(due[:, None, None], s.units * s.price[:, None, :], s.basis)
    per_bank = pnl @ ones
    wi, bi = np.nonzero(due[:, None] & s.alive & ((np.abs(pnl) @ ones) > 0))
    realised = gain_bank[wi, bi]
    rec.add_rows(
        "profit_booking",
        world=wi,
        bank=bi,
        pnl=per_bank[wi, bi],
        realised=realised,
        outside_flow=-realised,
    )


def _margin(s: NetworkState, p: Params, rec: StepRecord) -> None:
    """Step 6: margin calls on market positions, met by selling units (fire-sale impact)."""
    mc = p.config.margin
    vol_t = np.maximum(0.0, np.sqrt(s.vol2) / np.maximum(p.sigma, 1e-12) - 1.0)
    rate = mc.z * p.sigma * (1.0 + mc.vol_sensitivity * vol_t)  # (B, M)
    req = _value(s.units, s.price * rate)
    gap = req - np.maximum(s.cash, 0.0)
    if not np.count_nonzero((gap > TOL) & s.alive):  # i.e. no short > TOL below
        return
    short = np.maximum(0.0, gap) * s.alive
    mv = _value(s.units, s.price)
    c = np.divide(req, mv, out=np.zeros_like(req), where=mv > 0)
    sell = np.minimum(mv, short / (1.0 + c))
    sold_value = _sell_units(s, sell, mv)
    s.cash += sell
    _fire_sale_prices(s, sold_value, p.config.contagion.fire_sale_impact)
    at, wi, bi = _entries(sell > TOL)
    sold_now = sell.ravel()[at]
    rec.add_rows(
        "margin_call",
        world=wi,
        bank=bi,
        requirement=req.ravel()[at],
        shortfall=short.ravel()[at],
        sold=sold_now,
        outside_flow=-sold_now,
    )


# ----------------------------------------------------------------------------- beliefs
def _binary_entropy(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-12, 1 - 1e-12)
    return -(x * np.log2(x) + (1 - x) * np.log2(1 - x))


def belief_entropy(s: NetworkState) -> np.ndarray:
    """(B, N) mean binary entropy (bits) of each bank's beliefs over its valid slots."""
    si = s.slot_index
    return _mean_belief(np.where(si.valid, _binary_entropy(s.belief), 0.0), si)


def _update_beliefs(
    s: NetworkState,
    p: Params,
    bs: dict[str, np.ndarray],
    hit: np.ndarray,
    u: np.ndarray,
    rec: StepRecord,
    alive_count: np.ndarray,
) -> np.ndarray:
    """Step 8. Bernoulli posterior per slot on 'counterparty distressed'; returns (B,) cascade.

    ``alive_count`` (B,) is ``s.alive.sum(axis=1)``.
    """
    bc = p.config.beliefs
    si = s.slot_index
    valid, cpf = si.valid, si.bank
    ratio = np.divide(
        bs["equity"], bs["assets"], out=np.zeros_like(bs["equity"]), where=bs["assets"] > 0
    )
    distressed = (~s.alive) | (ratio < bc.distress_threshold)
    truth = distressed.reshape(-1)[cpf]
    q = bc.signal_reliability
    says_distress = (u < q) == truth  # P(says distressed | truth) = q, else 1 - q
    # Bayes in odds form: posterior = b * LR / (1 + b * (LR - 1)), LR = q / (1 - q) or its
    # inverse (q is capped just below 1 so a perfect signal stays finite).
    qc = min(q, 1.0 - 1e-9)
    lr = np.where(says_distress, qc / (1.0 - qc), (1.0 - qc) / qc)
    old_mean = _mean_belief(s.belief, si)
    b0 = s.belief
    post = b0 * lr
    post /= 1.0 + post - b0
    post *= 1.0 - bc.leak
    post += bc.leak * bc.prior
    if np.count_nonzero(hit):
        contagion = hit.ravel()[cpf]
        post = np.where(contagion, post + bc.contagion_weight * (1.0 - post), post)
    post = np.where(s.alive.reshape(-1)[cpf], post, 1.0)
    s.belief = np.where(valid, post, 0.0)
    new_mean = _mean_belief(s.belief, si)
    shift = np.abs(new_mean - old_mean) > bc.cascade_shift
    live = np.maximum(alive_count, 1)
    frac = (shift & s.alive).sum(axis=1) / live
    cascade = frac >= bc.cascade_fraction
    if np.count_nonzero(cascade):
        rec.add_world(
            "belief_cascade", cascade, share_shifted=frac, mean_belief=new_mean.mean(axis=1)
        )
    return cascade


def _mean_belief(belief: np.ndarray, si: SlotIndex) -> np.ndarray:
    """(B, N) mean over valid slots of a (B, N, K) array that is 0 in padded slots."""
    return (belief @ _ones(belief.shape[-1])) / si.count


@functools.cache
def _ones(k: int) -> np.ndarray:
    """A read-only (k,) vector of ones (row sums as matrix-vector products)."""
    out = np.ones(k)
    out.flags.writeable = False
    return out


# ----------------------------------------------------------------------------- the step
_REASSIGNED = ("basis", "last_return", "vol2", "belief", "equity_prev", "t")
"""Fields the step replaces (rather than updates in place); chunked steps copy them back."""
_MIN_CHUNK = 128
_POOLS: dict[int, ThreadPoolExecutor] = {}
"""One thread pool per ``workers`` count, created on first use."""


def step(
    state: NetworkState,
    actions: np.ndarray,
    params: Params,
    rng: np.random.Generator | None = None,
    *,
    inplace: bool = False,
    noise: StepNoise | None = None,
    workers: int = 1,
) -> tuple[NetworkState, StepOutput]:
    """Advance every world one step.

    Args:
        state: B worlds; not modified unless ``inplace``.
        actions: (B, N) int flat actions (see ``rudra_env.actions``); entries of dead banks are
            ignored. Values outside ``[0, A)`` raise ``ActionError``.
        params: frozen parameters.
        rng: the single seeded generator of the episode (draws this step's ``StepNoise``).
        inplace: mutate ``state`` instead of a copy (the env does; candidate scoring does not).
        noise: pre-drawn randomness instead of ``rng`` (e.g. shared across candidate worlds).
        workers: split the worlds into this many chunks stepped on threads (numpy releases the
            GIL in its loops); used when every chunk gets at least 128 worlds. The noise is drawn
            for the whole batch first, so results do not depend on ``workers`` beyond
            floating-point rounding (~1e-14: SIMD sums may add in another order in a chunk);
            a given ``workers`` setting is exactly reproducible.

    Returns:
        The new state and a ``StepOutput``.
    """
    s = state if inplace else state.copy()
    actions = np.asarray(actions, dtype=np.int64)
    b, n, m = s.shape
    # One comparison checks both ends: negative values wrap to huge unsigned ones.
    if np.count_nonzero(actions.view(np.uint64) >= params.layout.n):
        params.layout.decode(actions)  # raises ActionError naming the value
    if noise is None:
        if rng is None:
            raise ValueError("step() needs rng or noise: got neither")
        noise = StepNoise.draw(rng, b, n, m, params.K)
    workers = min(workers, b // _MIN_CHUNK)
    if workers <= 1:
        return s, _step_inplace(s, actions, params, noise)
    return s, _step_chunked(s, actions, params, noise, workers)


def _step_chunked(
    s: NetworkState, actions: np.ndarray, params: Params, noise: StepNoise, workers: int
) -> StepOutput:
    """Step contiguous chunks of worlds on threads; chunks are views, so updates land in ``s``."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS[workers] = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="rudra-step"
        )
    b = s.shape[0]
    bounds = np.linspace(0, b, workers + 1).astype(int)
    chunks = list(zip(bounds[:-1], bounds[1:], strict=True))
    names = [f.name for f in dataclasses.fields(s)]
    views = []
    for lo, hi in chunks:
        v = NetworkState(**{f: getattr(s, f)[lo:hi] for f in names})
        v.__dict__["_slot_index"] = (v.slots, s.chunk_slot_index(lo, hi))
        views.append(v)
    parts = list(
        pool.map(
            lambda k: _step_inplace(
                views[k],
                actions[chunks[k][0] : chunks[k][1]],
                params,
                StepNoise(
                    noise.market[chunks[k][0] : chunks[k][1]],
                    noise.signal[chunks[k][0] : chunks[k][1]],
                ),
            ),
            range(len(chunks)),
        )
    )
    for (lo, hi), v in zip(chunks, views, strict=True):
        for f in _REASSIGNED:
            getattr(s, f)[lo:hi] = getattr(v, f)
    cat = np.concatenate
    return StepOutput(
        rewards=cat([o.rewards for o in parts]),
        defaulted=cat([o.defaulted for o in parts]),
        invalid=cat([o.invalid for o in parts]),
        executed=cat([o.executed for o in parts]),
        cascade_rounds=cat([o.cascade_rounds for o in parts]),
        belief_cascade=cat([o.belief_cascade for o in parts]),
        record=StepRecord.concat([o.record for o in parts], [lo for lo, _ in chunks]),
        balance={k: cat([o.balance[k] for o in parts]) for k in parts[0].balance},
    )


def _step_inplace(
    s: NetworkState, actions: np.ndarray, params: Params, noise: StepNoise
) -> StepOutput:
    """The step proper (DESIGN section 4), mutating ``s``."""
    b, n, m = s.shape
    step_no = s.t + 1
    rec = StepRecord(step=step_no)
    rec.add_world("step_start", _every_world(b), scenario=np.full(b, params.config.scenario.name))
    flow = np.zeros((b, m))
    alive_before = s.alive.copy()
    # 1. Scenario.
    fallen0 = hit0 = run_short = None
    scenario = params.config.scenario
    if scenario.shocks or scenario.interventions:
        removed, run_short = _apply_scenario(s, params, rec, flow)
        if removed.any():  # removals resolve before anyone acts
            fallen0, hit0 = remove_banks(s, params, removed, rec)
    # 2. Actions.
    executed, invalid, illiquid = _execute(s, params, actions, rec, flow)
    if run_short is not None:
        illiquid |= run_short
    # 3. Markets.
    _reprice(s, params, flow, noise.market)
    # 4. Interest, then overdrafts covered by selling units.
    if params.config.interest_rate > 0:
        s.cash += params.config.interest_rate * (s.ib_assets - s.ib_liab)
        _cover_overdrafts(s, params, rec)
    # 5. Profit booking.
    due = (step_no % params.config.profit_booking_interval) == 0
    if np.count_nonzero(due):
        _book_profits(s, rec, due)
    # 6. Margin.
    if params.config.margin.enabled:
        _margin(s, params, rec)
    # 7. Defaults and cascade.
    fallen, rounds, hit, bs = resolve_defaults(s, params, illiquid, rec)
    if fallen0 is not None:
        fallen |= fallen0
        hit |= hit0
    # 8. Beliefs.
    alive_count = s.alive.sum(axis=1)
    cascade = _update_beliefs(s, params, bs, hit & s.alive, noise.signal, rec, alive_count)
    # 9. Rewards and step_end.
    defaulted_now = alive_before & ~s.alive
    rewards = utility(s, bs, s.equity_prev, params, defaulted_now)
    s.equity_prev = np.where(s.alive, bs["equity"], 0.0)
    s.t = step_no
    rec.add_world(
        "step_end",
        _every_world(b),
        alive=alive_count,
        defaults=defaulted_now.sum(axis=1),
        cascade_rounds=rounds,
        total_equity=s.equity_prev.sum(axis=1),
        prices=s.price.copy(),
        outside=s.outside.copy(),
        bank_cash=s.cash.sum(axis=1),
    )
    return StepOutput(
        rewards=rewards,
        defaulted=defaulted_now | fallen,
        invalid=invalid,
        executed=executed,
        cascade_rounds=rounds,
        belief_cascade=cascade,
        record=rec,
        balance=bs,
    )
