"""Bank groups of one ``RudraVecEnv`` as their own SB3 ``VecEnv`` views, stepped in lock-step.

``group_views(venv, {"core": [0, 1, 2], "periphery": [3, ..., 9]})`` splits the slots of one
``RudraVecEnv`` (B worlds x L learning banks) by bank group. Each ``GroupView`` is a ``VecEnv``
over its group's slots, world-major like the parent's: slot ``w * L_g + l`` is the group's
l-th bank (by index) in world w. Spaces, rewards, episode ends, inactive slots and
``action_masks()`` are the parent's (``training.vec_env``), row for row.

One step of the views is ONE step of the parent's batched core, taken once every group has
submitted its actions::

    for name, view in views.items():
        view.step_async(actions[name])           # stored into the parent's (B * L,) array
    for view in views.values():
        obs, rewards, dones, infos = view.step_wait()

The first ``step_wait`` steps the parent with every group's actions (one core step, fixed
banks acting in batch as usual; no loop over banks); every view then reads its rows of that
result. The groups cannot drift apart: ``step_wait`` before every group has submitted, or before
every group has read the previous step, raises ``RuntimeError`` naming the groups.

Resets: the first ``reset()`` of any view resets the parent's worlds; the other views'
``reset()`` calls until the next step return their rows of that same first observation (so each
group's model can call ``reset()`` when it sets up, as SB3's ``learn`` does). Worlds whose
episode ends are reset by the parent inside the step, as always.

Seeding: the worlds are the parent's (``RudraVecEnv(seed=...)``, ``venv.seed()``). A view's
``seed()`` does not reseed them: each group's model calls it with its own seed when it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rudra_env.config import EnvConfig
from rudra_env.core import NetworkState, Params, StepOutput
from rudra_env.errors import ConfigError
from training.vec_env import OneEnvBehindSlots, RudraVecEnv, bank_indices

__all__ = ["GroupView", "group_views"]


def group_views(
    venv: RudraVecEnv, groups: Mapping[str, Iterable[int | str]]
) -> dict[str, GroupView]:
    """One ``GroupView`` per group of ``venv``'s learning banks, in the mapping's order.

    Args:
        venv: the parent vector env (its worlds, fixed agent and seeds are shared).
        groups: ``{name: banks}`` (indices or ``bank_i`` names); every learning bank of
            ``venv`` in exactly one group.
    """
    n, owner = venv.config.num_banks, {}
    positions = {}
    for name, banks in groups.items():
        idx = bank_indices(banks, n, f"groups[{name!r}]")
        for b in idx.tolist():
            if b in owner:
                raise ConfigError(f"groups: bank {b} is in {owner[b]!r} and in {name!r}")
            if b not in venv.learners:
                raise ConfigError(
                    f"groups[{name!r}]: bank {b} does not learn (learners: "
                    f"{venv.learners.tolist()})"
                )
            owner[b] = name
        positions[str(name)] = np.searchsorted(venv.learners, idx)
    missing = sorted(set(venv.learners.tolist()) - set(owner))
    if missing:
        raise ConfigError(f"groups: learning banks {missing} are in no group")
    world = np.arange(venv.worlds)[:, None] * venv.n_learners
    rows = {g: (world + pos[None, :]).reshape(-1) for g, pos in positions.items()}
    hub = _Lockstep(venv, rows)
    return {g: GroupView(hub, g, venv.learners[positions[g]]) for g in rows}


class _Lockstep:
    """The parent env shared by the views: pending actions, the last step's result, resets."""

    def __init__(self, parent: RudraVecEnv, rows: dict[str, np.ndarray]) -> None:
        self.parent = parent
        self.rows = rows
        self._actions = np.zeros(parent.num_envs, dtype=np.int64)
        self._submitted: set[str] = set()
        self._unread: set[str] = set()
        self._result: VecEnvStepReturn | None = None
        self._first_obs: np.ndarray | None = None
        """The parent's observation since its last reset, until the next step."""

    def reset(self, name: str) -> np.ndarray:
        if self._first_obs is None:
            self._first_obs = self.parent.reset()
            self._submitted.clear()
            self._unread.clear()
            self._result = None
        return self._first_obs[self.rows[name]]

    def submit(self, name: str, actions: np.ndarray) -> None:
        rows = self.rows[name]
        self._actions[rows] = np.asarray(actions).reshape(len(rows))
        self._submitted.add(name)

    def result(self, name: str) -> VecEnvStepReturn:
        if name not in self._unread:
            self._step(name)
        self._unread.discard(name)
        assert self._result is not None, "_Lockstep.result: no step taken"
        obs, rewards, dones, infos = self._result
        r = self.rows[name]
        return obs[r], rewards[r], dones[r], [infos[i] for i in r.tolist()]

    def _step(self, name: str) -> None:
        waiting = [g for g in self.rows if g not in self._submitted]
        if waiting:
            raise RuntimeError(
                f"group {name!r} waits for a step, but groups {waiting} have not submitted "
                "actions (step_async) yet: every group acts in every step"
            )
        if self._unread:
            raise RuntimeError(
                f"group {name!r} steps again, but groups {sorted(self._unread)} have not read "
                "the last step (step_wait) yet"
            )
        self._result = self.parent.step(self._actions.copy())
        self._submitted.clear()
        self._unread = set(self.rows)
        self._first_obs = None


class GroupView(OneEnvBehindSlots):
    """One bank group's slots of a ``RudraVecEnv`` (see the module docstring).

    It has the parent's attributes that callbacks read (``config``, ``params``, ``worlds``,
    ``state``, ``last_output``), and ``learners`` (the group's banks) and ``active`` over its
    own slots, so ``SystemicMetricsCallback`` and ``ModelAgent`` work on a view as on a
    ``RudraVecEnv``.
    """

    render_mode: str | None = None

    def __init__(self, hub: _Lockstep, name: str, banks: np.ndarray) -> None:
        self._hub = hub
        self.name = name
        """The group's name."""
        self.learners = banks
        """(L_g,) sorted indices of the group's banks."""
        self.rows = hub.rows[name]
        """(B * L_g,) the parent's slot of each of this view's slots."""
        parent = hub.parent
        super().__init__(len(self.rows), parent.observation_space, parent.action_space)

    # ------------------------------------------------------------------ the parent's state
    @property
    def parent(self) -> RudraVecEnv:
        return self._hub.parent

    @property
    def config(self) -> EnvConfig:
        return self.parent.config

    @property
    def params(self) -> Params:
        return self.parent.params

    @property
    def worlds(self) -> int:
        return self.parent.worlds

    @property
    def n_learners(self) -> int:
        return len(self.learners)

    @property
    def state(self) -> NetworkState:
        return self.parent.state

    @property
    def last_output(self) -> StepOutput | None:
        return self.parent.last_output

    @property
    def active(self) -> np.ndarray:
        """(B * L_g,) bool: the slot's bank is alive (its episode is running)."""
        return self.parent.active[self.rows]

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        """This group's rows of the parent's first observation (resetting the worlds once)."""
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._hub.reset(self.name)

    def step_async(self, actions: np.ndarray) -> None:
        self._hub.submit(self.name, actions)

    def step_wait(self) -> VecEnvStepReturn:
        return self._hub.result(self.name)

    def action_masks(self) -> np.ndarray:
        """(B * L_g, A) bool: this group's rows of the parent's masks."""
        return self.parent.action_masks()[self.rows]

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Does not reseed the worlds (they are the parent's: seed the parent)."""
        return [None for _ in range(self.num_envs)]

    def close(self) -> None:
        """Closes the parent (every group's view)."""
        self.parent.close()
