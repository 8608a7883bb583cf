"""RUDRA as a PettingZoo ``ParallelEnv`` — a thin face over the batched core (B = 1).

Environment ``rudra_v1``
========================

Banks of an interbank network are agents. Each step every live bank picks one action; the core
(``rudra_env.core.step``) executes them (market orders meet in one auction per market), reprices
markets, collects interest, books profits, applies margin calls, resolves defaults and cascades,
updates beliefs and scores every bank with its utility. Positions are marked at the lower of the
market and the fundamental price (``rudra_env.core.markets``).

Agents
    ``bank_0 .. bank_{N-1}``. A bank that defaults (or is removed) terminates and leaves
    ``agents``; the horizon ``max_steps`` truncates every live bank.

Action space
    ``Discrete(A)``, ``A = 1 + 2*K*S + 2*M*S`` (K = ``max_counterparties`` slots, M markets, S
    size levels); layout in ``rudra_env.actions``. Defaults (K=8, M=2, S=3): A = 61.
    An action is a Python ``int``, a numpy integer scalar or a 0-d integer array (what a policy's
    ``predict`` returns for one observation) in ``[0, A)``; ``bool``, floats (even ``1.0``),
    strings, ``None`` and arrays with a dimension raise ``ActionError`` (a ``ValueError``) naming
    the agent, the value and its type, and an integer outside ``[0, A)`` raises ``ActionError``
    "outside the action space Discrete(A)" (one rule, ``check_action``). An action that is masked
    out is executed as HOLD and flagged ``infos[agent]["invalid_action"]``. A live agent missing
    from the action dict HOLDs.

Observation space
    ``Dict(observation=Box(-10, 10, (10 + 5K + 2M + 2,), float32), action_mask=Box(0, 1, (A,),
    int8))``; the table of entries is in ``rudra_env.core.observe``. A bank that terminates gets
    a last observation of zeros whose mask allows HOLD only (never an all-zero mask).

State space
    ``Box(-10, 10, (4N + 2M + 1,), float32)`` via ``state()`` (for centralised critics).

Rewards
    The bank's utility ``U = Revenue - rho*Risk - lam*Liquidity - gamma*Regulatory``
    (``rudra_env.core.reward``); at the step a bank defaults, ``-(default_penalty + remaining
    steps * the largest cost of one step)``, so defaulting early never beats surviving.

Episode end
    Termination per bank on default; truncation of all at ``max_steps``; the episode is over when
    ``agents`` is empty. ``step`` before ``reset()``, or after the episode is over, raises
    ``ResetNeeded`` (a ``RuntimeError``).

Infos
    ``invalid_action`` (bool) and ``executed_action`` (int). Balance sheets, equity and default
    steps are in ``env.core_state`` (``equity()``, ``default_step``); events of the last step in
    ``env.last_events``, all since reset in ``env.event_log``.

Arguments
    ``parallel_env(config=None, render_mode=None, **overrides)``: ``config`` is an ``EnvConfig``,
    a mapping, or a YAML path; ``overrides`` are config keys (dotted keys via a mapping, e.g.
    ``overrides={"topology.kind": "ring"}``). ``reset(seed=None, options=None)``: ``seed`` is
    None (keep drawing from the current generator) or an integer >= 0; anything else raises
    ``ConfigError``.

Version history
    v1: trades fill in one batch auction per market at the VWAP of a linear, symmetric impact
    that decays towards a fundamental price; positions marked at min(market, fundamental);
    booking, margin and every forced sale trade through the same auction; failed banks'
    estates are cleared on what they realised (nobody outside pays for a default); interest is
    paid out of what borrowers can raise; returns and volatility see the whole step's move;
    Risk and Regulatory capped per step and the default penalty covers the remaining steps;
    initial borrowing capped at target leverage; a removal's cascade stays in its world.
    v0: initial release.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from rudra_env.actions import HOLD
from rudra_env.config import EnvConfig
from rudra_env.core.beliefs import belief_entropy
from rudra_env.core.events import Event, StepRecord
from rudra_env.core.execution import action_masks
from rudra_env.core.network import initial_state
from rudra_env.core.observe import (
    OBS_LIMIT,
    obs_size,
    observe,
    state_size,
    state_vector,
)
from rudra_env.core.params import Params
from rudra_env.core.resolution import remove_banks
from rudra_env.core.scenario import add_capital
from rudra_env.core.state import NetworkState, balance_sheet
from rudra_env.core.step import StepOutput
from rudra_env.core.step import step as core_step
from rudra_env.errors import ActionError, ConfigError, ResetNeeded

__all__ = ["RudraParallelEnv", "check_action", "resolve_config"]

_EXACT_INT_TYPES = frozenset(
    {int, np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8}
)
"""Types whose values ``step`` reads at once, leaving the range to the core's check (the set of
the values' types is usually {int}); any other value goes through ``check_action`` first."""


def check_action(agent: str, value: Any, n_actions: int) -> int:
    """The one rule for an action value; returns it as an ``int`` or raises ``ActionError``.

    Accepted: a Python ``int`` (``bool`` excluded: ``True`` must not silently mean action 1), a
    numpy integer scalar, or a 0-d numpy integer array (as ``Discrete.contains`` and a policy's
    ``predict`` for one observation have it), in ``0..n_actions-1``. Anything else (``bool``,
    floats even when whole, strings, ``None``, arrays with a dimension) is not an action: the
    error names the agent, the value and its type. An integer out of range is "outside the
    action space Discrete(n_actions)". ``step`` of the parallel env and of the AEC env both use
    this function (the parallel env's fast path only skips it for plain integer types, whose
    range the core checks).
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        action = int(value)
    elif isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
        action = int(value)
    else:
        kind = type(value).__name__
        if isinstance(value, np.ndarray):
            kind = f"ndarray of shape {value.shape}, dtype {value.dtype}"
        raise ActionError(
            f"action of {agent} = {value!r} ({kind}) is not an action: expected an int, a numpy "
            f"integer or a 0-d integer array in 0..{n_actions - 1}"
        ) from None
    if not 0 <= action < n_actions:
        raise ActionError(
            f"action of {agent} = {action} is outside the action space Discrete({n_actions}): "
            f"expected an integer in 0..{n_actions - 1}"
        ) from None
    return action


def _check_seed(seed: Any) -> int:
    """``seed`` for ``np.random.default_rng``: an integer >= 0 (``bool`` excluded)."""
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise ConfigError(
        f"seed = {seed!r} ({type(seed).__name__}) is not allowed: expected None (keep the "
        f"current generator) or an integer >= 0, e.g. reset(seed=42)"
    )


def resolve_config(
    config: EnvConfig | Mapping[str, Any] | str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EnvConfig:
    """An ``EnvConfig`` from a config object, mapping or YAML path, with overrides applied."""
    if config is None:
        cfg = EnvConfig()
    elif isinstance(config, EnvConfig):
        cfg = config
    elif isinstance(config, str | Path):
        cfg = EnvConfig.from_yaml(config)
    elif isinstance(config, Mapping):
        cfg = EnvConfig.from_dict(config)
    else:
        raise ConfigError(
            f"config = {config!r} is not allowed: expected an EnvConfig, a mapping or a YAML path"
        )
    if overrides:
        cfg = cfg.with_overrides(dict(overrides))
    return cfg


class RudraParallelEnv(ParallelEnv):
    """The interbank network as a PettingZoo ParallelEnv (see the module docstring)."""

    metadata = {
        "name": "rudra_v1",
        "render_modes": ["human", "ansi", "rgb_array"],
        "is_parallelizable": True,
        "render_fps": 4,
    }

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | str | Path | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        nested = overrides.pop("overrides", None) or {}
        self.config = resolve_config(config, {**overrides, **nested})
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(
                f"render_mode = {render_mode!r} is not allowed: expected one of "
                f"{self.metadata['render_modes']} or None"
            )
        self.render_mode = render_mode
        self.params = Params.from_config(self.config)
        n = self.config.num_banks
        self.possible_agents = [f"bank_{i}" for i in range(n)]
        self.agent_name_mapping = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._obs_space = spaces.Dict(
            {
                "observation": spaces.Box(
                    -OBS_LIMIT, OBS_LIMIT, (obs_size(self.params),), np.float32
                ),
                "action_mask": spaces.Box(0, 1, (self.params.layout.n,), np.int8),
            }
        )
        self._act_space = spaces.Discrete(self.params.layout.n)
        self.state_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, (state_size(self.params),), np.float32)
        self._rng = np.random.default_rng()
        self._state: NetworkState | None = None
        self._masks: np.ndarray | None = None
        self.last_output: StepOutput | None = None
        """The action masks of ``_state`` as last observed (None once a control changed it)."""
        self._records: list[StepRecord] = []
        self._extra: list[Event] = []
        self._layout_cache: np.ndarray | None = None
        self._false_dict: tuple[list[str], dict[str, bool]] | None = None

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Dict:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_space

    # ------------------------------------------------------------------ core access
    @property
    def core_state(self) -> NetworkState:
        """The core state (B = 1); read it, copy it — mutate only through the env's methods."""
        if self._state is None:
            raise ResetNeeded("the env has no state yet: call env.reset(seed=...) first")
        return self._state

    @property
    def num_steps(self) -> int:
        return int(self.core_state.t[0])

    # ------------------------------------------------------------------ API
    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(_check_seed(seed))
        self._state = initial_state(self.config, self._rng, worlds=1)
        self.agents = list(self.possible_agents)
        self._records = []
        self._extra = [
            Event(
                "init",
                0,
                0,
                {
                    "num_banks": self.config.num_banks,
                    "topology": self.config.topology.kind,
                    "scenario": self.config.scenario.name,
                    "markets": list(self.params.market_names),
                    "total_equity": float(self._state.equity0.sum()),
                },
            )
        ]
        self._layout_cache = None
        infos = {a: {"invalid_action": False, "executed_action": 0} for a in self.agents}
        if self.render_mode == "human":
            self.render()
        return self._observations(self.agents), infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        acting = self.agents  # replaced, never changed in place, when agents leave
        if not acting:
            self._raise_reset_needed()
        s = self.core_state
        a = self._action_array(actions, acting)
        try:  # the core checks the range before it touches the state or draws noise
            s, out = core_step(s, a, self.params, self._rng, inplace=True, masks=self._masks)
        except ActionError:
            self._checked_actions(actions)  # raises, naming the agent: the core's error does not
            raise
        self._records.append(out.record)
        self.last_output = out  # the core's StepOutput of the last step (for metrics)
        truncated = self.num_steps >= self.config.max_steps
        idx = self._indices(acting)
        all_false = self._all_false(acting)
        rewards = all_false.copy()
        rewards.update(zip(acting, out.rewards[0, idx].tolist(), strict=True))
        alive = s.alive[0, idx]
        any_died = np.count_nonzero(alive) < len(acting)
        if any_died:
            dead = (~alive).tolist()
            terminations = dict(zip(acting, dead, strict=True))
        else:
            dead = None
            terminations = all_false.copy()
        if not truncated:
            truncations = all_false.copy()
        elif dead is None:
            truncations = dict.fromkeys(acting, True)
        else:
            truncations = {ag: not d for ag, d in zip(acting, dead, strict=True)}
        infos = self._infos(acting, out, idx)
        observations = self._observations(acting, out.balance, idx)
        if any_died:  # a terminated bank's last mask allows HOLD (the core's has nothing)
            for j in np.flatnonzero(~alive).tolist():
                observations[acting[j]]["action_mask"][HOLD] = 1
        if truncated:
            self.agents = []
        elif any_died:
            self.agents = [ag for ag, d in zip(acting, dead, strict=True) if not d]
        else:
            self.agents = acting
        if not self.agents:
            self._complete("truncated" if truncated else "all_defaulted")
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def _infos(self, acting: list[str], out: Any, idx: np.ndarray | slice) -> dict[str, dict]:
        """``invalid_action`` and ``executed_action`` of every acting agent."""
        executed = out.executed[0, idx].tolist()
        if np.count_nonzero(out.invalid):
            invalid = out.invalid[0, idx].tolist()
            return {
                ag: {"invalid_action": i, "executed_action": e}
                for ag, i, e in zip(acting, invalid, executed, strict=True)
            }
        return {
            ag: {"invalid_action": False, "executed_action": e}
            for ag, e in zip(acting, executed, strict=True)
        }

    def _complete(self, reason: str) -> None:
        """The ``complete`` event that closes an episode."""
        s = self.core_state
        data = {
            "reason": reason,
            "alive": int(s.alive.sum()),
            "defaulted": int((~s.alive).sum()),
            "total_equity": float(np.where(s.alive, s.equity_prev, 0).sum()),
        }
        self._extra.append(Event("complete", self.num_steps, 0, data))

    def _action_array(self, actions: Mapping[str, Any], acting: list[str]) -> np.ndarray:
        """(1, N) int64 actions, HOLD for banks without one; ``ActionError`` for a bad name or
        value. Values of plain integer types are read at once (the core checks their range);
        any other value goes through ``check_action`` here."""
        a = np.zeros((1, self.config.num_banks), dtype=np.int64)
        if not actions:
            return a
        values: Any = actions.values()
        if not set(map(type, values)) <= _EXACT_INT_TYPES:
            values = self._checked_actions(actions)
        try:
            vals = np.fromiter(values, dtype=np.int64, count=len(actions))
            if list(actions) == acting:  # the usual dict: no name lookups
                idx = self._indices(acting)
            else:
                idx = np.fromiter(
                    map(self.agent_name_mapping.__getitem__, actions),
                    dtype=np.int64,
                    count=len(actions),
                )
        except (KeyError, TypeError, ValueError, OverflowError):
            self._checked_actions(actions)  # raises, naming the agent
            raise
        a[0][idx] = vals
        return a

    def _all_false(self, agents: list[str]) -> dict[str, bool]:
        """``dict.fromkeys(agents, False)``, kept while ``agents`` is the same list: copying it
        is much cheaper than building a dict of the agents again."""
        cached = self._false_dict
        if cached is None or cached[0] is not agents or len(cached[1]) != len(agents):
            cached = self._false_dict = (agents, dict.fromkeys(agents, False))
        return cached[1]

    def _checked_actions(self, actions: Mapping[str, Any]) -> list[int]:
        """Every (agent, value) pair through ``check_action``: the values as ints, or the first
        problem raised as ``ActionError`` naming the agent (callers may be handling the error
        that revealed it: it is not chained)."""
        n_actions = self.params.layout.n
        out = []
        for agent, value in actions.items():
            if agent not in self.agent_name_mapping:
                raise ActionError(
                    f"agent = {agent!r} is not an agent of this env: expected one "
                    f"of bank_0..bank_{self.config.num_banks - 1}"
                ) from None
            out.append(check_action(agent, value, n_actions))
        return out

    def _raise_reset_needed(self) -> typing.NoReturn:
        """``step`` with no agents: before the first ``reset()`` or after the episode ended."""
        if self._state is None:
            raise ResetNeeded("step() was called before reset(): call env.reset(seed=...) first")
        t = self.num_steps
        why = (
            f"truncated at max_steps = {self.config.max_steps}"
            if t >= self.config.max_steps
            else "every bank has defaulted or been removed"
        )
        raise ResetNeeded(
            f"step() was called after the episode ended (step {t}: {why}; env.agents is "
            f"empty): call env.reset() to start a new episode"
        )

    def _observations(
        self,
        agents: list[str],
        bs: dict[str, np.ndarray] | None = None,
        idx: np.ndarray | slice | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Fresh arrays every call (never views of a buffer the next step overwrites)."""
        s = self.core_state
        if idx is None:
            idx = self._indices(agents)
        obs = observe(s, self.params, bs)[0, idx]
        masks = action_masks(s, self.params, bs)
        self._masks = masks.copy()  # this state's validity, for the next step (never handed out)
        mask = masks[0, idx]
        return {
            ag: {"observation": o, "action_mask": k}
            for ag, o, k in zip(agents, obs, mask, strict=True)
        }

    def _indices(self, agents: list[str]) -> np.ndarray | slice:
        """Bank indices of ``agents`` (a list the env keeps in ``possible_agents`` order): every
        bank is a plain slice, so gathers by it are views."""
        if len(agents) == len(self.possible_agents):
            return slice(None)
        return np.fromiter(
            map(self.agent_name_mapping.__getitem__, agents), dtype=np.int64, count=len(agents)
        )

    def state(self) -> np.ndarray:
        return state_vector(self.core_state, self.params)[0]

    # ------------------------------------------------------------------ controls
    def _bank_index(self, bank: int | str) -> int:
        idx = self.agent_name_mapping.get(bank) if isinstance(bank, str) else bank
        if not isinstance(idx, int | np.integer) or not 0 <= idx < self.config.num_banks:
            raise ConfigError(
                f"bank = {bank!r} is not a bank: expected an index in "
                f"0..{self.config.num_banks - 1} or a name like 'bank_3'"
            )
        return int(idx)

    def add_capital(self, bank: int | str, amount: float) -> None:
        """Inject ``amount`` of cash (equity) into a live bank between steps (``capital_added``)."""
        idx = self._bank_index(bank)
        if not (isinstance(amount, int | float) and np.isfinite(amount) and amount >= 0):
            raise ConfigError(f"amount = {amount!r} is not allowed: expected a finite number >= 0")
        s = self.core_state
        if not s.alive[0, idx]:
            raise ConfigError(f"bank = {bank!r} has defaulted: capital can only go to a live bank")
        rec = StepRecord(step=s.t.copy())
        self._masks = None  # the state changes under the last observation's masks
        add_capital(s, idx, float(amount), None, rec)
        s.equity_prev = np.where(s.alive, s.equity(), 0.0)
        self._records.append(rec)

    def remove_bank(self, bank: int | str) -> list[str]:
        """Resolve a bank now (``bank_removed``), through the default machinery; returns every
        agent that fell (the removed bank first, then any cascade victims)."""
        idx = self._bank_index(bank)
        s = self.core_state
        if not s.alive[0, idx]:
            raise ConfigError(f"bank = {bank!r} has already defaulted or been removed")
        mask = np.zeros_like(s.alive)
        mask[0, idx] = True
        rec = StepRecord(step=s.t.copy())
        self._masks = None  # the state changes under the last observation's masks
        fallen, _hit = remove_banks(s, self.params, mask, rec)
        self._records.append(rec)
        s.equity_prev = np.where(s.alive, s.equity(), 0.0)
        names = [self.possible_agents[i] for i in np.nonzero(fallen[0])[0]]
        names.sort(key=lambda a: a != self.possible_agents[idx])
        self.agents = [a for a in self.agents if a not in names]
        return names

    # ------------------------------------------------------------------ events
    @property
    def last_events(self) -> list[Event]:
        """Events of the last step (or control call), expanded."""
        return self._records[-1].events(0) if self._records else list(self._extra)

    @property
    def event_log(self) -> list[Event]:
        """Every event since reset, in order."""
        out = [self._extra[0]] if self._extra else []
        for r in self._records:
            out.extend(r.events(0))
        out.extend(self._extra[1:])
        return out

    # ------------------------------------------------------------------ rendering
    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            return None
        if self.render_mode == "rgb_array":
            from rudra_env.render import draw_network

            if self._layout_cache is None:
                from rudra_env.render import network_layout

                self._layout_cache = network_layout(self.core_state.loans[0])
            return draw_network(self.core_state, self.params, self._layout_cache)
        from rudra_env.render import ansi_table

        text = ansi_table(self.core_state, self.params)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        import sys

        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            plt.close("all")

    def summary(self) -> dict[str, float]:
        """Systemic metrics of the current state."""
        s = self.core_state
        bs = balance_sheet(s)
        alive = s.alive[0]
        return {
            "step": self.num_steps,
            "alive": int(alive.sum()),
            "default_rate": float(1.0 - alive.mean()),
            "total_equity": float(bs["equity"][0][alive].sum()),
            "total_assets": float(bs["assets"][0][alive].sum()),
            "mean_belief_entropy": float(belief_entropy(s)[0][alive].mean())
            if alive.any()
            else 0.0,
            **{
                f"price/{name}": float(s.price[0, m])
                for m, name in enumerate(self.params.market_names)
            },
        }
