"""The batched transition ``step(state, actions, params, rng) -> (state, StepOutput)``.

One call advances B worlds by one step. The step is a pipeline of mechanisms, one module each,
in the model's order:

====  ===========================  ===========================================================
 #    mechanism                    module
====  ===========================  ===========================================================
1     shocks and interventions     ``scenario`` (removals resolve at once: ``resolution``)
2     the banks' actions           ``execution``
3     repricing on order flow      ``markets``
4     interest, overdrafts         ``interest``
5     profit booking               ``booking``
6     margin calls                 ``margin``
7     defaults and the cascade     ``resolution`` (clearing: ``clearing``)
8     beliefs                      ``beliefs``
9     rewards, ``step_end``        ``reward``
====  ===========================  ===========================================================

Every bank-level operation is an array operation over (world, bank); the only Python loops run
over scenario items, cascade rounds and mechanisms — never over banks or worlds. The step's
randomness (``StepNoise``) is drawn up front, so callers can share it across worlds (common
random numbers) and results do not depend on how worlds are chunked.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rudra_env.core.arrays import every_world
from rudra_env.core.beliefs import update_beliefs
from rudra_env.core.booking import book_profits, booking_due
from rudra_env.core.events import StepRecord
from rudra_env.core.execution import execute
from rudra_env.core.interest import pay_interest
from rudra_env.core.margin import margin_calls
from rudra_env.core.markets import reprice, step_variance
from rudra_env.core.params import Params
from rudra_env.core.resolution import remove_banks, resolve_defaults
from rudra_env.core.reward import utility
from rudra_env.core.scenario import apply_scenario
from rudra_env.core.state import NetworkState

__all__ = ["StepNoise", "StepOutput", "step"]


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

    def chunk(self, lo: int, hi: int) -> StepNoise:
        """The draws of worlds ``lo:hi``."""
        return StepNoise(self.market[lo:hi], self.signal[lo:hi])


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


def step(
    state: NetworkState,
    actions: np.ndarray,
    params: Params,
    rng: np.random.Generator | None = None,
    *,
    inplace: bool = False,
    noise: StepNoise | None = None,
    workers: int = 1,
    masks: np.ndarray | None = None,
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
        masks: (B, N, A) this state's ``action_masks``, when the caller has them (the PettingZoo
            env computed them for its observations): step 2 then reads each order's validity
            from them instead of evaluating the rules again — the same answer, since the rules
            are the same. Ignored on threads, and when the env has a scenario (its events may
            change the state before the actions execute).

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
        return s, transition(s, actions, params, noise, masks)
    return s, _transition_chunked(s, actions, params, noise, workers)


def transition(
    s: NetworkState,
    actions: np.ndarray,
    p: Params,
    noise: StepNoise,
    masks: np.ndarray | None = None,
) -> StepOutput:
    """The step proper, mutating ``s``: the model's step order, top to bottom (``masks``: as
    ``step``'s)."""
    b, n, m = s.shape
    step_no = s.t + 1
    rec = StepRecord(step=step_no)
    rec.add_world("step_start", every_world(b), scenario=np.full(b, p.scenario_name))
    price_start = s.price.copy()  # the step's return runs from here to the end of the step
    alive_before = s.alive.copy()
    fell_early = linked_early = None
    illiquid = np.zeros((b, n), dtype=bool)  # could not pay a call, a run or interest
    if p.shocks or p.interventions:  # 1. scenario
        masks = None  # its events may change what is valid
        removed, illiquid = apply_scenario(s, p, rec)
        if np.count_nonzero(removed & s.alive):  # removals resolve before anyone acts
            fell_early, linked_early = remove_banks(s, p, removed, rec)
    ex = execute(s, p, actions, rec, masks)  # 2. actions
    illiquid |= ex.illiquid
    reprice(s, p, noise.market)  # 3. markets
    illiquid |= pay_interest(s, p, rec)  # 4. interest
    due = booking_due(s, p)  # 5. profit booking
    if np.count_nonzero(due):
        book_profits(s, p, rec, due)
    margin_calls(s, p, rec, step_variance(s, p, price_start))  # 6. margin
    fallen, rounds, linked, bs = resolve_defaults(s, p, illiquid, rec)  # 7. cascade
    if fell_early is not None:
        fallen |= fell_early
        linked |= linked_early
    s.last_return = np.log(s.price / price_start)
    s.vol2 = step_variance(s, p, price_start)
    alive_count = s.alive.sum(axis=1)  # 8. beliefs
    cascade = update_beliefs(s, p, bs, linked & s.alive, noise.signal, rec, alive_count)
    defaulted_now = alive_before & ~s.alive  # 9. rewards
    rewards = utility(s, bs, s.equity_prev, p, defaulted_now)
    s.equity_prev = np.where(s.alive, bs["equity"], 0.0)
    s.t = step_no
    rec.add_world(
        "step_end",
        every_world(b),
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
        invalid=ex.invalid,
        executed=ex.executed,
        cascade_rounds=rounds,
        belief_cascade=cascade,
        record=rec,
        balance=bs,
    )


_MIN_CHUNK = 128
_POOLS: dict[int, ThreadPoolExecutor] = {}
"""One thread pool per ``workers`` count, created on first use."""


def _transition_chunked(
    s: NetworkState, actions: np.ndarray, p: Params, noise: StepNoise, workers: int
) -> StepOutput:
    """Step contiguous chunks of worlds on threads; chunks are views, so in-place updates land
    in ``s``, and the fields a chunk replaced are copied back."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS[workers] = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="rudra-step"
        )
    bounds = np.linspace(0, s.shape[0], workers + 1).astype(int)
    chunks = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    views = [s.view(lo, hi) for lo, hi in chunks]
    parts = list(
        pool.map(
            lambda k: transition(views[k], actions[slice(*chunks[k])], p, noise.chunk(*chunks[k])),
            range(len(chunks)),
        )
    )
    for (lo, hi), v in zip(chunks, views, strict=True):
        s.put_view(lo, hi, v)
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
