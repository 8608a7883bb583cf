"""Observation-only baselines: ``HoldAgent``, ``RandomAgent`` and the seed's target-leverage
``HeuristicAgent``.

Both act on the env's observations and action masks alone (no ``EnvView`` needed), batched over
worlds and banks with array operations.
"""

from __future__ import annotations

import numpy as np

from agents.base import ObservationAgent
from rudra_env.actions import BORROW, DIVEST, INVEST, LEND, ActionLayout
from rudra_env.core.observe import ObservationLayout
from rudra_env.core.params import Params
from rudra_env.errors import ConfigError, InputError

__all__ = ["HoldAgent", "RandomAgent", "HeuristicAgent"]


def _masked_choice(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """(B, n) uniform draw among the legal actions of each (B, n, A) mask; HOLD if none."""
    keys = np.where(masks > 0, rng.random(masks.shape), -1.0)
    return keys.argmax(axis=-1).astype(np.int64)


class HoldAgent(ObservationAgent):
    """Every bank HOLDs every step: the do-nothing baseline (what the system does on its own)."""

    def act_arrays(self, obs: np.ndarray, masks: np.ndarray, params: Params | None) -> np.ndarray:
        return np.zeros(masks.shape[:-1], dtype=np.int64)


class RandomAgent(ObservationAgent):
    """Uniform over each bank's legal actions (the action mask); HOLD for a bank with none.

    Args:
        seed: seed of the agent's own generator (``reset(seed)`` reseeds it).
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act_arrays(self, obs: np.ndarray, masks: np.ndarray, params: Params | None) -> np.ndarray:
        return _masked_choice(self._rng, masks)


class HeuristicAgent(ObservationAgent):
    """The seed's target-leverage bank, one rule per bank per step, first match wins.

    =====  ===================================================  ==============================
    rule   condition (from the bank's observation)              action
    =====  ===================================================  ==============================
    1      a counterparty it lent to has default belief          BORROW (call back) from the
           >= ``call_belief``                                    most distrusted such slot
    2      leverage / target > 1 + ``leverage_band``             DIVEST from the held market
                                                                 with the worst last return
    3      leverage / target < 1 - ``leverage_band`` and         LEND to the live counterparty
           liquidity ratio >= ``liquid_multiple`` * floor        with the lowest belief, if it
                                                                 is below ``lend_belief``
    4      liquidity ratio > floor (cash above its floor)        INVEST in the market with the
                                                                 best last return
    5      otherwise                                             HOLD
    =====  ===================================================  ==============================

    The liquidity ratio is cash / total liabilities; the floor is the env's
    ``reward.liquidity_floor`` unless ``liquidity_floor`` is given. Only legal actions (per the
    mask) are chosen; a rule whose actions are all masked falls through to the next. Ties pick the
    lowest slot or market index. In this model a sale turns units into cash without shrinking the
    balance sheet, so rule 2 cuts market risk (VaR, margin) rather than leverage itself.

    Args:
        call_belief: default belief at or above which a loan is called back, in [0, 1].
        lend_belief: lend only to counterparties believed below this, in [0, 1].
        leverage_band: tolerance around the target leverage, >= 0 (relative).
        liquid_multiple: "liquid" means a liquidity ratio of at least this multiple of the
            floor, >= 0.
        liquidity_floor: cash / liabilities floor; None = the env's ``reward.liquidity_floor``.
        lend_size, call_size, invest_size, divest_size: size-level index per action kind
            (Python indexing, so -1 is the largest level).
        layout: the action layout when ``act`` is called without an ``EnvView``; otherwise
            taken from the view's (or ``act_batch``'s) params.
    """

    def __init__(
        self,
        *,
        call_belief: float = 0.5,
        lend_belief: float = 0.2,
        leverage_band: float = 0.05,
        liquid_multiple: float = 1.5,
        liquidity_floor: float | None = None,
        lend_size: int = 0,
        call_size: int = -1,
        invest_size: int = 0,
        divest_size: int = -1,
        layout: ActionLayout | Params | None = None,
    ) -> None:
        for name, v in (("call_belief", call_belief), ("lend_belief", lend_belief)):
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} = {v!r} is not allowed: expected a number in [0, 1]")
        for name, v in (("leverage_band", leverage_band), ("liquid_multiple", liquid_multiple)):
            if not v >= 0.0:
                raise ConfigError(f"{name} = {v!r} is not allowed: expected a number >= 0")
        if liquidity_floor is not None and not 0.0 <= liquidity_floor <= 1.0:
            raise ConfigError(
                f"liquidity_floor = {liquidity_floor!r} is not allowed: expected "
                "a number in [0, 1] or None (the env's reward.liquidity_floor)"
            )
        self.call_belief = call_belief
        self.lend_belief = lend_belief
        self.leverage_band = leverage_band
        self.liquid_multiple = liquid_multiple
        self.liquidity_floor = liquidity_floor
        self.sizes = {
            "lend_size": lend_size,
            "call_size": call_size,
            "invest_size": invest_size,
            "divest_size": divest_size,
        }
        self._params = layout if isinstance(layout, Params) else None
        self._layout = layout.layout if isinstance(layout, Params) else layout

    def _resolve(self, params: Params | None) -> tuple[ActionLayout, float]:
        layout = params.layout if params is not None else self._layout
        if layout is None:
            raise InputError(
                "HeuristicAgent needs the action layout: pass "
                "view=EnvView.from_env(env) to act(), or layout=env.params"
            )
        floor = self.liquidity_floor
        if floor is None:
            p = params if params is not None else self._params
            if p is None:
                raise InputError(
                    "HeuristicAgent needs liquidity_floor=... or the env's params "
                    "(view=EnvView.from_env(env), or layout=env.params)"
                )
            floor = p.liquidity_floor
        for name, k in self.sizes.items():
            if not -layout.S <= k < layout.S:
                raise ConfigError(
                    f"{name} = {k} is not a size level: expected an index in "
                    f"{-layout.S}..{layout.S - 1} (S = {layout.S})"
                )
        return layout, floor

    def act_arrays(self, obs: np.ndarray, masks: np.ndarray, params: Params | None) -> np.ndarray:
        lay, floor = self._resolve(params)
        k, m, s = lay.K, lay.M, lay.S
        view = ObservationLayout(k, m)
        if obs.shape[-1] != view.size or masks.shape[-1] != lay.n:
            raise InputError(
                f"observation size {obs.shape[-1]} / mask size {masks.shape[-1]} "
                f"do not match the layout K={k}, M={m}, S={s}: expected {view.size} / {lay.n}"
            )
        lev = obs[..., view.own("leverage_ratio")]
        liq = obs[..., view.own("liquidity_ratio")]
        belief = obs[..., view.slot("belief")]
        ret = obs[..., view.market("last_return")]
        size = {name: v % s for name, v in self.sizes.items()}

        def legal(kind: int, size_idx: int) -> np.ndarray:
            return masks[..., lay.columns(kind, size_idx)] > 0  # (B, n, targets)

        # 1. Call back from the most distrusted counterparty we lent to.
        can_call = legal(BORROW, size["call_size"]) & (belief >= self.call_belief)
        call_slot = np.where(can_call, belief, -np.inf).argmax(axis=-1)
        # 2. Divest from the held market with the worst last return.
        can_div = legal(DIVEST, size["divest_size"])
        div_mkt = np.where(can_div, -ret, -np.inf).argmax(axis=-1)
        # 3. Lend to the most trusted live counterparty.
        can_lend = legal(LEND, size["lend_size"]) & (belief < self.lend_belief)
        lend_slot = np.where(can_lend, -belief, -np.inf).argmax(axis=-1)
        # 4. Invest in the market with the best last return.
        can_inv = legal(INVEST, size["invest_size"])
        inv_mkt = np.where(can_inv, ret, -np.inf).argmax(axis=-1)

        over = lev > 1.0 + self.leverage_band
        under = lev < 1.0 - self.leverage_band
        liquid = liq >= self.liquid_multiple * floor
        conds = [
            can_call.any(-1),
            over & can_div.any(-1),
            under & liquid & can_lend.any(-1),
            (liq > floor) & can_inv.any(-1),
        ]
        offs = lay.offsets
        choices = [
            offs[BORROW] + call_slot * s + size["call_size"],
            offs[DIVEST] + div_mkt * s + size["divest_size"],
            offs[LEND] + lend_slot * s + size["lend_size"],
            offs[INVEST] + inv_mkt * s + size["invest_size"],
        ]
        return np.select(conds, choices, default=0).astype(np.int64)
