"""What users watch in TensorBoard: systemic metrics, recorded rollouts, hparams and a layout.

Attach to a stable-baselines3 model trained on a ``RudraVecEnv`` (``training.vec_env``), or on
one group's ``GroupView`` of it (``training.group_env``: then the learners are the group's)::

    model = MaskablePPO("MlpPolicy", venv, tensorboard_log="runs/tb")
    callbacks = [
        SystemicMetricsCallback(groups={"core": [0, 1], "periphery": range(2, 10)}),
        RolloutRecorder("configs/env/small.yaml", every=10_000 // venv.num_envs, seed=0),
    ]
    model.learn(total_timesteps, callback=callbacks)
    log_hparams(tensorboard_writer(model.logger), resolved_config, final_metrics)

``SystemicMetricsCallback`` (scalars through SB3's logger, in the same run as SB3's own):

=============================  ===============================================================
tag                            value over the window (the vec-env steps since the last record)
=============================  ===============================================================
``rudra/default_rate``         share of banks defaulted in the worlds' running episodes (as
                               ``env.summary()["default_rate"]``), mean over the window's steps
``rudra/cascade_size``         banks that defaulted per cascade round (0 without defaults)
``rudra/total_equity``         equity of the live banks summed over a world, mean over worlds
                               and steps (currency units)
``rudra/price/<market>``       market price, mean over worlds and steps
``rudra/mean_utility``         mean reward per live learning bank per step
``rudra/utility/<group>``      the same over the learning banks of a group
``rudra/actions/<KIND>``       share of live learners' executed actions of each kind
                               (``rudra_env.actions.KINDS``; a masked-out action counts as HOLD)
``rudra/invalid_action_share`` share of live learners' actions that were masked out
=============================  ===============================================================

and histograms (``rudra/hist/equity_ratio``: equity / assets, ``rudra/hist/leverage``: assets /
equity, of every live bank of every world at the window's end) written with the writer of SB3's
``TensorBoardOutputFormat`` (the same event file).

What comes from where (nothing is simulated again): the state the vec env stepped
(``vec_env.state``), the learners' actions, rewards and infos from the callback's ``locals``, and
the action masks the policy was given. The vec env resets a world in the same call that ends its
episode, so the state never shows a world's last step; that step's defaults are therefore not
counted in ``cascade_size`` unless the vec env exposes the core's ``StepOutput`` of its last step
as ``last_output`` (used when present: exact defaults and cascade rounds of every world).
Without it a cascade round is not visible in the state, and the defaults of one world-step count
as one round. Rewards are those the model sees (normalised if a ``VecNormalize`` wraps the env).

``RolloutRecorder`` plays one episode of the PettingZoo env at every evaluation interval and
writes it to its own run, ``<log dir>/rollout_t<timesteps>``: the network drawn at its steps
(``rollout/network``, one image per drawn step: the step slider), the event log as a Markdown table
(``rollout/events``) and per-step metrics (``rollout/default_rate``, ``rollout/total_equity``,
``rollout/price/<market>``, ``rollout/mean_utility``, ``rollout/alive``, ``rollout/defaults``).
TensorBoard keeps 10 images per tag unless started with ``--samples_per_plugin images=100``.

``log_layout`` writes the custom-scalars layout (Systemic, Markets, Utility, Actions);
``log_hparams`` the run's hyperparameters with its final metrics (the HParams dashboard).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

from agents.base import Agent, EnvView, ObservationAgent
from rudra_env.actions import HOLD, KIND_NAMES, ActionLayout
from rudra_env.config import EnvConfig
from rudra_env.core import NetworkState, Params, StepOutput, balance_sheet
from rudra_env.core.events import Event
from rudra_env.environment import resolve_config
from rudra_env.errors import ConfigError
from training.group_env import GroupView
from training.vec_env import RudraVecEnv

__all__ = [
    "ModelAgent",
    "RolloutRecorder",
    "SystemicMetricsCallback",
    "action_kind_shares",
    "custom_scalars_layout",
    "default_rate",
    "events_markdown",
    "log_hparams",
    "log_layout",
    "record_rollout",
    "solvency_ratios",
    "tensorboard_writer",
    "total_equity",
]

ROLLOUT_SKIPPED_EVENTS = ("step_start", "step_end")
"""Event types left out of the rollout's event table (one per step, no information)."""
_SYSTEMIC_EVENTS = frozenset(
    {
        "init",
        "shock",
        "capital_added",
        "bank_removed",
        "margin_call",
        "default",
        "cascade",
        "belief_cascade",
        "complete",
    }
)
"""Event types the rollout's table keeps first when it has to drop rows."""


# ---------------------------------------------------------------------- metrics (pure)
def default_rate(state: NetworkState) -> float:
    """Share of banks defaulted (or removed) over all worlds of ``state``: ``1 - mean(alive)``."""
    return np.count_nonzero(~state.alive) / state.alive.size


def total_equity(state: NetworkState, bs: Mapping[str, np.ndarray] | None = None) -> float:
    """Equity of the live banks summed over each world, mean over worlds (currency units)."""
    eq = (bs or balance_sheet(state))["equity"]
    return float(np.where(state.alive, eq, 0.0).sum(axis=1).mean())


def solvency_ratios(
    state: NetworkState, bs: Mapping[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(equity / assets, assets / equity) of every live bank of every world, flattened.

    Banks without assets are left out of the first, banks with equity <= 0 out of the second
    (their leverage is not a number).
    """
    bs = bs or balance_sheet(state)
    eq, assets = bs["equity"][state.alive], bs["assets"][state.alive]
    return eq[assets > 0] / assets[assets > 0], assets[eq > 0] / eq[eq > 0]


def action_kind_shares(
    actions: np.ndarray, layout: ActionLayout, legal: np.ndarray | None = None
) -> tuple[dict[str, float], float]:
    """Share of each action kind among ``actions`` as executed, and the share masked out.

    Args:
        actions: (n,) int flat actions.
        layout: the action layout (``params.layout``).
        legal: (n, A) bool masks the actions were chosen under; an action it masks out is
            executed as HOLD (as the core does). None: every action is legal.

    Returns:
        ``({kind name: share}, invalid share)``; every kind of ``KIND_NAMES`` is a key, the
        shares sum to 1 (all zero, and the invalid share 0, when ``actions`` is empty).
    """
    actions = np.asarray(actions, dtype=np.int64).reshape(-1)
    if not len(actions):
        return dict.fromkeys(KIND_NAMES, 0.0), 0.0
    valid = (
        np.ones(len(actions), bool) if legal is None else legal[np.arange(len(actions)), actions]
    )
    kinds = np.where(valid, layout.decode(actions).kind, HOLD)
    counts = np.bincount(kinds, minlength=len(KIND_NAMES))
    shares = counts / len(actions)
    return dict(zip(KIND_NAMES, shares.tolist(), strict=True)), np.count_nonzero(~valid) / len(
        actions
    )


# ---------------------------------------------------------------------- writers and layout
def tensorboard_writer(logger: Logger) -> Any:
    """The ``SummaryWriter`` of SB3's TensorBoard output (``tensorboard_log=`` given), or None."""
    for fmt in logger.output_formats:
        if isinstance(fmt, TensorBoardOutputFormat):
            return fmt.writer
    return None


def custom_scalars_layout() -> dict[str, dict[str, list]]:
    """The custom-scalars layout: categories Systemic, Markets, Utility, Actions.

    Chart tags are regular expressions, so every market, group and kind is found without being
    named here.
    """
    return {
        "Systemic": {
            "default rate": ["Multiline", [r"rudra/default_rate"]],
            "cascade size (banks per round)": ["Multiline", [r"rudra/cascade_size"]],
            "total equity": ["Multiline", [r"rudra/total_equity"]],
        },
        "Markets": {"prices": ["Multiline", [r"rudra/price/.*"]]},
        "Utility": {
            "mean utility per live bank": ["Multiline", [r"rudra/mean_utility"]],
            "by group": ["Multiline", [r"rudra/utility/.*"]],
            "episode return": ["Multiline", [r"rollout/ep_rew_mean"]],
        },
        "Actions": {
            "kind frequencies": ["Multiline", [r"rudra/actions/.*"]],
            "invalid-action share": ["Multiline", [r"rudra/invalid_action_share"]],
        },
    }


def log_layout(writer: Any) -> None:
    """Write ``custom_scalars_layout()`` with ``writer.add_custom_scalars`` (once per run)."""
    writer.add_custom_scalars(custom_scalars_layout())
    writer.flush()


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; values TensorBoard cannot hold become strings."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, bool | str):
            out[name] = value
        elif isinstance(value, int | float | np.integer | np.floating):
            out[name] = value.item() if isinstance(value, np.generic) else value
        else:
            out[name] = str(value)
    return out


def log_hparams(
    writer: Any,
    config_dict: Mapping[str, Any],
    final_metrics: Mapping[str, float],
    global_step: int | None = None,
) -> None:
    """Hyperparameters of the run with its final metrics, for TensorBoard's HParams dashboard.

    Written into ``writer``'s own run (not a sub-run, unlike ``SummaryWriter.add_hparams``), so
    the dashboard links them with the run's curves. ``config_dict`` may be nested: keys become
    dotted (``algo.learning_rate``); values other than numbers, strings and booleans are written
    as strings. Each final metric is written as the scalar ``final/<name>`` at ``global_step``
    and named so in the hparams summary.
    """
    from torch.utils.tensorboard.summary import hparams

    metrics = {f"final/{k}": float(v) for k, v in final_metrics.items()}
    for tag, value in metrics.items():
        if not np.isfinite(value):
            raise ValueError(f"final metric {tag} = {value!r} is not a finite number")
    exp, ssi, sei = hparams(_flatten(config_dict), metrics)
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary, global_step)
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, global_step)
    writer.flush()


# ---------------------------------------------------------------------- the training callback
def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} = {value!r} is not allowed: expected an integer >= 1")


class SystemicMetricsCallback(BaseCallback):
    """Systemic metrics of the worlds a ``RudraVecEnv`` steps, logged as ``rudra/...`` scalars.

    The table of tags is in the module docstring. Statistics accumulate at every vec-env step
    and are recorded with ``logger.record`` every ``log_every`` steps; SB3 writes recorded
    values at its next dump (after each rollout, every ``log_interval`` iterations), so a
    ``log_every`` shorter than the rollout (``n_steps``) keeps only the last window of each
    rollout. With ``log_every=None`` (the default) a window is one rollout.

    Args:
        log_every: vec-env steps (calls, as ``EvalCallback``'s ``eval_freq``) per window, or
            None for one window per rollout.
        groups: name -> bank indices (or names ``bank_3``) for ``rudra/utility/<name>``;
            only learning banks count. Default: ``{"all": every learner}``.
        histograms: also write the equity-ratio and leverage histograms (needs SB3's
            TensorBoard output: ``tensorboard_log=`` given to the model).
        layout: write the custom-scalars layout (``log_layout``) when training starts.
        verbose: SB3's verbosity.
    """

    def __init__(
        self,
        log_every: int | None = None,
        groups: Mapping[str, Iterable[int | str]] | None = None,
        histograms: bool = True,
        layout: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        _positive_int("log_every", log_every, allow_none=True)
        self.log_every = log_every
        self.groups = None if groups is None else {str(k): list(v) for k, v in groups.items()}
        self.histograms = histograms
        self.layout = layout

    # ------------------------------------------------------------------ set-up
    def _init_callback(self) -> None:
        venv = getattr(self.training_env, "unwrapped", self.training_env)
        if not isinstance(venv, RudraVecEnv | GroupView):
            raise TypeError(
                f"SystemicMetricsCallback needs a model trained on a RudraVecEnv "
                f"(training.vec_env) or a group's GroupView of one, got {type(venv).__name__}"
            )
        self.venv: RudraVecEnv | GroupView = venv
        self.params: Params = venv.params
        slot_bank = np.tile(venv.learners, venv.worlds)  # (B * L,) bank of each slot
        n = venv.config.num_banks
        groups = self.groups or {"all": venv.learners.tolist()}
        self.group_slots: dict[str, np.ndarray] = {}
        for name, banks in groups.items():
            idx = np.array([_bank_index(b, n, f"groups[{name!r}]") for b in banks], np.int64)
            member = np.isin(slot_bank, idx)
            if not member.any():
                raise ConfigError(
                    f"groups[{name!r}] = {sorted(idx.tolist())} holds no learning bank (learners: "
                    f"{venv.learners.tolist()}): rudra/utility/{name} would stay empty"
                )
            self.group_slots[name] = member
        self._reset_window()
        self._calls_in_window = 0

    def _on_training_start(self) -> None:
        writer = tensorboard_writer(self.logger)
        if self.layout and writer is not None:
            log_layout(writer)
        self._remember_slots()

    def _remember_slots(self) -> None:
        """The slots' activity and masks that the next step's actions are chosen under."""
        self._active = self.venv.active
        self._masks = np.array(self.venv.action_masks(), dtype=bool)

    def _reset_window(self) -> None:
        m = self.params.M
        self._w = {
            "steps": 0,
            "default_share": 0.0,
            "equity": 0.0,
            "price": np.zeros(m),
            "defaults": 0,
            "rounds": 0,
            "reward": 0.0,
            "live": 0,
            "kinds": np.zeros(len(KIND_NAMES)),
            "invalid": 0,
        }
        self._w["group_reward"] = dict.fromkeys(self.group_slots, 0.0)
        self._w["group_live"] = dict.fromkeys(self.group_slots, 0)

    # ------------------------------------------------------------------ every step
    def _on_step(self) -> bool:
        self._accumulate(
            np.asarray(self.locals["actions"]).reshape(-1),
            np.asarray(self.locals["rewards"], dtype=float).reshape(-1),
        )
        self._remember_slots()
        self._calls_in_window += 1
        if self.log_every is not None and self._calls_in_window >= self.log_every:
            self._record()
        return True

    def _on_rollout_end(self) -> None:
        if self.log_every is None and self._w["steps"]:
            self._record()

    def _accumulate(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        s = self.venv.state
        w = self._w
        bs = balance_sheet(s)
        w["steps"] += 1
        w["default_share"] += default_rate(s)
        w["equity"] += total_equity(s, bs)
        w["price"] += s.price.mean(axis=0)
        out = getattr(self.venv, "last_output", None)
        if isinstance(out, StepOutput):
            w["defaults"] += int(out.defaulted.sum())
            w["rounds"] += int(out.cascade_rounds.sum())
        else:  # worlds reset in this call (t == 0) do not show their last step
            fell = ((s.default_step == s.t[:, None]) & (s.t[:, None] > 0)).sum(axis=1)
            w["defaults"] += int(fell.sum())
            w["rounds"] += int(np.count_nonzero(fell))
        live = self._active
        kinds, invalid = action_kind_shares(actions[live], self.params.layout, self._masks[live])
        n_live = int(live.sum())
        w["kinds"] += np.array([kinds[k] for k in KIND_NAMES]) * n_live
        w["invalid"] += invalid * n_live
        w["live"] += n_live
        w["reward"] += float(rewards[live].sum())
        for name, member in self.group_slots.items():
            sel = live & member
            w["group_reward"][name] += float(rewards[sel].sum())
            w["group_live"][name] += int(sel.sum())

    def _record(self) -> None:
        w, rec = self._w, self.logger.record
        steps = max(w["steps"], 1)
        rec("rudra/default_rate", w["default_share"] / steps)
        rec("rudra/cascade_size", w["defaults"] / w["rounds"] if w["rounds"] else 0.0)
        rec("rudra/total_equity", w["equity"] / steps)
        for m, name in enumerate(self.params.market_names):
            rec(f"rudra/price/{name}", float(w["price"][m] / steps))
        live = max(w["live"], 1)
        rec("rudra/mean_utility", w["reward"] / live)
        for name in self.group_slots:
            rec(f"rudra/utility/{name}", w["group_reward"][name] / max(w["group_live"][name], 1))
        for k, name in enumerate(KIND_NAMES):
            rec(f"rudra/actions/{name}", float(w["kinds"][k] / live))
        rec("rudra/invalid_action_share", w["invalid"] / live)
        writer = tensorboard_writer(self.logger) if self.histograms else None
        if writer is not None:
            ratio, leverage = solvency_ratios(self.venv.state)
            if len(ratio):
                writer.add_histogram("rudra/hist/equity_ratio", ratio, self.num_timesteps)
            if len(leverage):
                writer.add_histogram("rudra/hist/leverage", leverage, self.num_timesteps)
        self._reset_window()
        self._calls_in_window = 0


def _bank_index(bank: int | str, n: int, where: str) -> int:
    idx: Any = bank
    if isinstance(bank, str) and bank.startswith("bank_") and bank[5:].isdigit():
        idx = int(bank[5:])
    if isinstance(idx, bool) or not isinstance(idx, int | np.integer) or not 0 <= idx < n:
        raise ConfigError(
            f"{where} entry {bank!r} is not a bank: expected an index in 0..{n - 1} or a name "
            f"like 'bank_3'"
        )
    return int(idx)


# ---------------------------------------------------------------------- the model as an agent
class ModelAgent(ObservationAgent):
    """An SB3 model (trained on ``RudraVecEnv``'s Box observations) as an ``agents`` Agent.

    It predicts for a batch of banks at once: ``model.predict(obs (n, D), action_masks=(n, A))``
    when the model takes masks (sb3-contrib's maskable algorithms), plain ``predict`` otherwise
    (an illegal choice is then executed as HOLD by the env).

    Args:
        model: a stable-baselines3 / sb3-contrib model.
        deterministic: the policy's mode (True) or a sample.
    """

    def __init__(self, model: Any, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic
        self._masked = "action_masks" in inspect.signature(model.predict).parameters

    def act_arrays(self, obs: np.ndarray, masks: np.ndarray, params: Params | None) -> np.ndarray:
        b, n, d = obs.shape
        if n == 0:
            return np.zeros((b, 0), dtype=np.int64)
        kwargs = {"deterministic": self.deterministic}
        if self._masked:
            kwargs["action_masks"] = masks.reshape(b * n, -1).astype(bool)
        actions, _ = self.model.predict(obs.reshape(b * n, d), **kwargs)
        return np.asarray(actions, dtype=np.int64).reshape(b, n)


# ---------------------------------------------------------------------- recorded rollouts
def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        inner = ", ".join(_cell(v) for v in value[:6])
        return f"[{inner}{', ...' if len(value) > 6 else ''}]"
    return str(value)


def events_markdown(
    events: list[Event], max_rows: int = 200, skip: Iterable[str] = ROLLOUT_SKIPPED_EVENTS
) -> str:
    """A Markdown table (step, type, details) of ``events``, at most ``max_rows`` rows.

    When rows must go, systemic events (defaults, cascades, shocks, margin calls, ...) are kept
    first, then the earliest others; the rows stay in the log's order and a last line says how
    many were left out.
    """
    skip = set(skip)
    kept = [e for e in events if e.type not in skip]
    if len(kept) > max_rows:
        ranked = sorted(range(len(kept)), key=lambda i: (kept[i].type not in _SYSTEMIC_EVENTS, i))
        kept = [kept[i] for i in sorted(ranked[:max_rows])]
    lines = ["| step | type | details |", "|---:|---|---|"]
    for e in kept:
        details = "; ".join(f"{k}={_cell(v)}" for k, v in e.data.items())
        lines.append(f"| {e.step} | {e.type} | {details.replace('|', '/')} |")
    total = sum(e.type not in skip for e in events)
    if total > len(kept):
        lines.append(f"\n{total - len(kept)} of {total} events not shown (max_rows={max_rows}).")
    return "\n".join(lines)


def record_rollout(
    writer: Any,
    config: EnvConfig | Mapping[str, Any] | str | Path,
    agent: Agent,
    seed: int = 0,
    *,
    overrides: Mapping[str, Any] | None = None,
    frame_every: int = 1,
    max_frames: int = 100,
    max_event_rows: int = 200,
    tag: str = "rollout",
    on_step: Callable[[Any], None] | None = None,
) -> dict[str, float]:
    """Play one episode of the PettingZoo env with ``agent`` for every bank and write it.

    Writes with ``writer`` (a ``SummaryWriter``), ``global_step`` = the episode's step:
    ``<tag>/network`` images (``rudra_env.render.draw_network``) at steps 0, ``frame_every``,
    ... (at most ``max_frames``, plus the last step), per-step scalars ``<tag>/default_rate``,
    ``<tag>/total_equity``, ``<tag>/alive``, ``<tag>/defaults`` (this step),
    ``<tag>/price/<market>``, ``<tag>/mean_utility`` (mean reward of the banks that acted), and
    the event log as a Markdown table ``<tag>/events`` (``events_markdown``). ``on_step(env)``,
    if given, is called after the reset and after every step (``training.rollout`` records the
    episode's network and balance sheets through it).

    Returns:
        The final ``env.summary()`` plus ``mean_return`` (episode reward per bank).
    """
    import rudra_env

    _positive_int("frame_every", frame_every)
    _positive_int("max_frames", max_frames)
    env = rudra_env.parallel_env(resolve_config(config, overrides), render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    agent.reset(seed)
    n = env.config.num_banks
    frames = 0

    def draw(t: int) -> None:
        nonlocal frames
        writer.add_image(f"{tag}/network", env.render(), t, dataformats="HWC")
        frames += 1

    def scalars(t: int) -> None:
        summary = env.summary()
        for key in ("default_rate", "total_equity", "alive"):
            writer.add_scalar(f"{tag}/{key}", summary[key], t)
        for name in env.params.market_names:
            writer.add_scalar(f"{tag}/price/{name}", summary[f"price/{name}"], t)

    observe = on_step or (lambda env: None)
    observe(env)
    draw(0)
    scalars(0)
    total_reward, t = 0.0, 0
    while env.agents:
        # a view for every agent: the heuristic needs the env's action layout from it
        actions = agent.act({a: obs[a] for a in env.agents}, EnvView.from_env(env))
        obs, rewards, *_ = env.step(actions)
        t += 1
        observe(env)
        total_reward += sum(rewards.values())
        scalars(t)
        writer.add_scalar(f"{tag}/mean_utility", float(np.mean(list(rewards.values()))), t)
        fell = sum(e.type == "default" for e in env.last_events)
        writer.add_scalar(f"{tag}/defaults", fell, t)
        if (t % frame_every == 0 and frames < max_frames) or not env.agents:
            draw(t)
    writer.add_text(f"{tag}/events", events_markdown(env.event_log, max_event_rows), t)
    writer.flush()
    final = {k: float(v) for k, v in env.summary().items()}
    env.close()
    return {**final, "mean_return": total_reward / n}


class RolloutRecorder(BaseCallback):
    """Every ``every`` vec-env steps, record one episode of the PettingZoo env for TensorBoard.

    Each recording goes to its own run, ``<log dir>/rollout_t<timesteps>`` (``record_rollout``
    lists its tags), so each evaluation has its own step slider; the mean episode reward per
    bank is also recorded through SB3's logger as ``rudra/rollout_mean_return``.

    Args:
        config: the env config (an ``EnvConfig``, a mapping or a YAML path), usually the
            training env's (``venv.config``).
        every: vec-env steps (calls) between recordings; one is also made when training ends.
        seed: the episode's seed (the same episode start at every evaluation).
        agent: who plays every bank; default ``ModelAgent(model)`` (deterministic).
        log_dir: where the rollout runs go; default SB3's log dir (``model.logger.dir``).
        overrides, frame_every, max_frames, max_event_rows: as ``record_rollout``.
    """

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | str | Path,
        every: int,
        seed: int = 0,
        agent: Agent | None = None,
        log_dir: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        frame_every: int = 1,
        max_frames: int = 100,
        max_event_rows: int = 200,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        _positive_int("every", every)
        _positive_int("frame_every", frame_every)
        _positive_int("max_frames", max_frames)
        _positive_int("max_event_rows", max_event_rows)
        self.config = config
        self.every = every
        self.seed = seed
        self.agent = agent
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.overrides = overrides
        self.frame_every = frame_every
        self.max_frames = max_frames
        self.max_event_rows = max_event_rows
        self.last_recorded: int | None = None
        self.runs: list[Path] = []
        self.last_metrics: dict[str, float] = {}
        """``record_rollout``'s metrics of the latest recording."""

    def _on_step(self) -> bool:
        if self.n_calls % self.every == 0:
            self.record()
        return True

    def _on_training_end(self) -> None:
        if self.last_recorded != self.num_timesteps:
            self.record()

    def record(self) -> dict[str, float]:
        """Record one episode now (at ``num_timesteps``); returns ``record_rollout``'s metrics."""
        from torch.utils.tensorboard import SummaryWriter

        base = self.log_dir or (Path(self.logger.dir) if self.logger.dir else None)
        if base is None:
            raise ConfigError(
                "RolloutRecorder has nowhere to write: give log_dir= or the model a "
                "tensorboard_log= directory"
            )
        run = base / f"rollout_t{self.num_timesteps:09d}"
        agent = self.agent if self.agent is not None else ModelAgent(self.model)
        with SummaryWriter(log_dir=str(run)) as writer:
            metrics = record_rollout(
                writer,
                self.config,
                agent,
                self.seed,
                overrides=self.overrides,
                frame_every=self.frame_every,
                max_frames=self.max_frames,
                max_event_rows=self.max_event_rows,
            )
        self.logger.record("rudra/rollout_mean_return", metrics["mean_return"])
        self.last_recorded = self.num_timesteps
        self.last_metrics = dict(metrics)
        self.runs.append(run)
        if self.verbose:
            print(f"rollout at {self.num_timesteps} timesteps -> {run}")
        return metrics
