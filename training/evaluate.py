r"""Tournaments: populations of agents on common worlds (``rudra evaluate CONFIG``).

A tournament YAML (``TournamentConfig``; ``configs/evaluate/tournament_small.yaml``) names the
*populations* (who plays each bank: an ``--agents`` SPEC of ``training.rollout.parse_agents``),
the *scenarios* (env configs) and the Monte Carlo *seeds*::

    populations:                          # name: --agents SPEC
      heuristic: heuristic
      equilibrium: equilibrium
      trained_20: trained:0.2,equilibrium  # 20 % trained banks among equilibrium banks
    checkpoints: {trained: ../../runs/ppo/final_model.zip}  # aliases usable as a KIND
    scenarios:                            # name: env YAML, or {file, variant, overrides, config}
      small: ../env/small.yaml
      ring: {file: ../env/ring_vs_complete.yaml, variant: ring}
    overrides: {max_steps: 30}            # env keys set in every scenario
    seeds: 30
    equilibrium_gap: {every: 5, banks: all}   # null: not measured
    cross_play: {share: 0.5}                  # null: no cross-play table

``evaluate(config) -> TournamentResult`` plays it; ``TournamentResult.write(folder)`` writes
``results.md``, ``results.csv``, ``cross_play.md``, ``cross_play.csv``, ``per_world.csv``,
``config.yaml`` (resolved) and ``tb/`` (TensorBoard: one run per population).

Worlds and seeds (common random numbers)
----------------------------------------
The ``seeds`` worlds of a scenario are played in batches of ``worlds_per_batch`` through the
batched core (``agents.run_episodes``: one ``act_batch`` per step for the whole batch, so
observation agents — random, heuristic, trained — never loop over worlds; the equilibrium
agent solves one game per world, each scored in batched core calls). Batch k uses the seed
``s_k = batch_seed(seed, k)`` (``SeedSequence([seed, k])``): initial networks from
``default_rng(s_k)``, step noise from ``default_rng(s_k + 1)``; the share draws of mixed
populations and the agents' generators are seeded from ``s_k`` too. Every population meets the
same worlds and the same noise, so the tables compare play, not luck. The numbers are a
function of the config alone; with ``seeds`` a multiple of ``worlds_per_batch``, more seeds add
worlds to the same ones.

Metrics: one value per world; a table cell is the mean over the W worlds and the half-width of
its two-sided Student-t interval at ``level`` (``agents.stats.mean_interval``)
-----------------------------------------------------------------------------------------------
N banks, steps t = 1..T (T = ``max_steps``, or earlier when every bank has defaulted).

``utility``
    mean episode utility per bank, ``(1/N) sum_i sum_t r_{i,t}`` (the env's reward: utility,
    default penalty included, 0 after a default).
``default_rate``
    ``(1/N) #{i: i defaulted by the end}``.
``cascade_mean``, ``cascade_max``
    a cascade is one step's defaults, every cascade round and removal included:
    ``c_t = #{i: i defaulted during step t}`` (``StepOutput.defaulted``). Over the steps with
    ``c_t > 0``: the mean and the largest ``c_t``; 0 in a world without a default.
``equity_lost``
    ``sum_i E_i(0) - sum_{i alive at T} E_i(T)`` (equity at the marks, currency units; a
    defaulted bank counts 0 at the end; negative if the banks gained).
``debtrank``
    the network's DebtRank at the end. S = live banks with equity > 0; among them the impact
    of j's distress on i is ``W_ij = min(1, loans[i, j] / E_i)`` (Battiston et al. 2012) and
    the weight ``v_i`` is i's share of S's interbank assets;
    ``R_s = sum_{j != s} v_j h^s_j(T)``, the DebtRank when s alone starts fully distressed
    (``rudra_env.contagion.debtrank`` with ``h(1) = e_s``); the network's value is
    ``(1/|S|) sum_{s in S} R_s`` (0 if S is empty), computed for all sources and worlds at once.
``drawdown``
    market drawdown of the equal-weighted index ``I_t = (1/M) sum_m p_{m,t} / p_{m,0}``,
    t = 0..T: ``max_t (max_{u<=t} I_u - I_t) / max_{u<=t} I_u``.
``equilibrium_gap``
    at the steps t = 0, k, 2k, ... (k = ``equilibrium_gap.every``), before the step: the
    one-step game of the state (``agents.games.CoreGame`` with the certainty-equivalent noise
    ``median_noise``, the game ``EquilibriumAgent`` solves by default) at the population's joint
    action a (a masked action as HOLD, as it executes); the gap is
    ``max_{i in B} g_i(a)``, ``g_i(a) = max_c u_i(c, a_{-i}) - u_i(a)``
    (``agents.equilibrium.deviation_gains``), gains <= ``tol`` counted as 0. Per world: the
    largest gap over those steps. B is every bank, or ``banks`` banks drawn per world and step
    from ``default_rng([seed, k, 2])`` (the same draw for every population). 0 for a population
    playing a pure equilibrium of each step's game.

    Cost: per evaluated step and world, one scoring of ``sum_{i in B} |C_i|`` deviation worlds
    (|C_i| = bank i's legal actions, at most ``A = 1 + 2KS + 2MS``), in core calls of at most
    ``batch_worlds`` worlds — about one full sweep of ``EquilibriumAgent``'s best responses —
    so ``ceil(T / every) * W`` scorings per population and scenario. Measured on
    ``small.yaml`` (N = 10, T = 50, every = 5): 10 scorings of ~270 worlds, ~16 core calls,
    ~0.03 s per world and episode. ``TournamentResult.gap_cost`` counts the calls and worlds,
    ``Cell.gap_seconds`` the time.

Cross-play
----------
Cell (R, C) of a scenario: in batch k, the seats are ``round(share * N)`` banks (at least 1, at
most N - 1) drawn from ``default_rng([seed, k, 1])``. Each seat is played by the agent R's
population gives that bank (R's plan for batch k), every other bank by C's; the cell is R's
mean episode utility per bank over its seats. The diagonal (R, R) is R's own run read over the
same seats (not replayed). Model-based agents act last and take the others' actions as given
(``agents.Population``).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents import EpisodeObserver, Population, deviation_gains, run_episodes
from agents.base import ObservationAgent
from agents.games import CoreGame, median_noise
from agents.stats import Interval, mean_interval
from rudra_env.config import EnvConfig, build, check, check_number, to_plain, unknown_key
from rudra_env.core import NetworkState, Params, StepOutput, balance_sheet, initial_state
from rudra_env.errors import ConfigError, InputError
from training.config import EnvSpec, _env_mapping, from_yaml_file
from training.rollout import AGENT_KINDS, AgentPlan, is_number, parse_agents

__all__ = [
    "METRICS",
    "Cell",
    "CrossPlayOptions",
    "GapOptions",
    "TournamentConfig",
    "TournamentResult",
    "batch_seed",
    "csv_text",
    "evaluate",
    "markdown_table",
    "network_debtrank",
    "step_gap",
    "summary",
]

METRICS = {
    "utility": "utility per bank",
    "default_rate": "default rate",
    "cascade_mean": "mean cascade",
    "cascade_max": "max cascade",
    "equity_lost": "equity lost",
    "debtrank": "DebtRank (end)",
    "drawdown": "market drawdown",
    "equilibrium_gap": "equilibrium gap",
}
"""Metric key -> column title (definitions in the module docstring)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
"""Population and scenario names (they name files, TensorBoard runs and tags)."""


# ---------------------------------------------------------------------------- tables
def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Lines of a Markdown table (cells as ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text (``\\n`` line ends) of a header and rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _number(x: float) -> str:
    return f"{x:.3f}" if x == 0 or 0.01 <= abs(x) < 1e5 else f"{x:.3g}"


def _cell(iv: Interval) -> str:
    """``mean ± half``; a half-width at rounding level (equal values) shows as 0."""
    half = iv.half if iv.half > 1e-12 * max(1.0, abs(iv.mean)) else 0.0
    return f"{_number(iv.mean)} ± {_number(half)}"


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class GapOptions:
    """How the equilibrium gap is measured (module docstring: definition and cost)."""

    every: int = 5
    """Measure at steps 0, every, 2 * every, ... (before the step), an integer >= 1."""
    banks: Any = "all"
    """Banks whose deviations are scored: ``all``, or an integer >= 1 (a sample drawn per world
    and step, every bank when >= N; the cost grows with it)."""
    tol: float = 1e-9
    """Gains up to this (utility units, >= 0) count as 0, as the equilibrium solver's ``tol``."""
    batch_worlds: int = 256
    """Most worlds per core call of the scoring, an integer >= 1."""

    def __post_init__(self) -> None:
        check_number("equilibrium_gap.every", self.every, 1, integer=True)
        ok = self.banks == "all" or (
            isinstance(self.banks, int) and not isinstance(self.banks, bool) and self.banks >= 1
        )
        check(ok, "equilibrium_gap.banks", self.banks, "'all' or an integer >= 1")
        check_number("equilibrium_gap.tol", self.tol, 0.0)
        check_number("equilibrium_gap.batch_worlds", self.batch_worlds, 1, integer=True)


@dataclass(frozen=True)
class CrossPlayOptions:
    """The cross-play table (module docstring)."""

    share: float = 0.5
    """Share of the banks seated with the row population, in (0, 1)."""

    def __post_init__(self) -> None:
        check_number("cross_play.share", self.share, 0.0, 1.0, lo_open=True)
        check(self.share < 1.0, "cross_play.share", self.share, "a number in (0, 1)")


@dataclass(frozen=True)
class TournamentConfig:
    """A tournament: populations x scenarios on common worlds (module docstring)."""

    populations: dict[str, str] = field(default_factory=dict)
    """``{name: --agents SPEC}`` (``training.rollout.parse_agents``; a KIND may be an alias of
    ``checkpoints``), in table order."""
    scenarios: dict[str, EnvSpec] = field(default_factory=dict)
    """``{name: env}``: an env YAML path, or ``{file, variant, overrides}`` or ``{config}``
    (``training.config.EnvSpec``; paths relative to the tournament YAML)."""
    name: str = ""
    """Tournament name (titles, default ``out_dir``); empty: the YAML's stem."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    """``{alias: checkpoint path}`` (relative to the YAML): each alias may be used as a KIND in
    the populations' specs and is played by ``TorchPolicyAgent``."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Env keys set in every scenario, after its own (``{max_steps: 20}``)."""
    seeds: int = 30
    """Monte Carlo worlds per population and scenario, an integer >= 2."""
    seed: int = 0
    """Base seed of every batch seed (``batch_seed``), an integer >= 0."""
    worlds_per_batch: int = 10
    """Worlds stepped together through the core, an integer >= 1."""
    level: float = 0.95
    """Confidence level of the intervals, in (0, 1)."""
    equilibrium_gap: GapOptions | None = field(default_factory=GapOptions)
    """How the equilibrium gap is measured; null: not measured (no column)."""
    cross_play: CrossPlayOptions | None = field(default_factory=CrossPlayOptions)
    """The cross-play table; null: none (it costs P * (P - 1) more runs per scenario)."""
    tensorboard: bool = True
    """Write ``tb/`` (needs torch and tensorboard, the ``train`` extra)."""
    progress_bar: bool = True
    """A tqdm bar on stderr (shown on a terminal)."""
    out_dir: str | None = None
    """Output folder, new or empty; null: ``runs/evaluate-<name>-<YYYYmmdd-HHMMSS>``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check(isinstance(self.name, str), "name", self.name, "a string")
        self._validate_names("populations", self.populations, "an --agents SPEC string")
        self._validate_names("scenarios", self.scenarios, "an env spec")
        for name, spec in self.scenarios.items():
            check(isinstance(spec, EnvSpec), f"scenarios.{name}", spec, "an env spec")
            spec.validate(f"scenarios.{name}")
        self._validate_checkpoints()
        check(isinstance(self.overrides, Mapping), "overrides", self.overrides, "a mapping")
        check_number("seeds", self.seeds, 2, integer=True)
        check_number("seed", self.seed, 0, integer=True)
        check_number("worlds_per_batch", self.worlds_per_batch, 1, integer=True)
        check_number("level", self.level, 0.0, 1.0, lo_open=True)
        check(self.level < 1.0, "level", self.level, "a number in (0, 1)")
        for key in ("tensorboard", "progress_bar"):
            check(isinstance(getattr(self, key), bool), key, getattr(self, key), "true or false")
        check(
            self.out_dir is None or isinstance(self.out_dir, str),
            "out_dir",
            self.out_dir,
            "a folder path or null",
        )
        configs = self.env_configs()
        for pop in self.populations:
            for scen, env in configs.items():
                self.plan(pop, env, 0, where=f"populations.{pop} (scenario {scen})")

    def _validate_names(self, key: str, mapping: Any, what: str) -> None:
        check(
            isinstance(mapping, Mapping) and len(mapping) > 0,
            key,
            mapping,
            f"a non-empty mapping {{name: {what}}}",
        )
        for name, value in mapping.items():
            ok = isinstance(name, str) and NAME.fullmatch(name) is not None
            check(ok, f"{key}.{name}", name, f"a name matching {NAME.pattern}")
            if key == "populations":
                ok = isinstance(value, str) and value.strip() != ""
                check(ok, f"{key}.{name}", value, what)

    def _validate_checkpoints(self) -> None:
        check(isinstance(self.checkpoints, Mapping), "checkpoints", self.checkpoints, "a mapping")
        for alias, path in self.checkpoints.items():
            check(
                isinstance(alias, str) and NAME.fullmatch(alias) and alias not in AGENT_KINDS,
                f"checkpoints.{alias}",
                alias,
                f"an alias matching {NAME.pattern}, not one of {AGENT_KINDS}",
            )
            ok = isinstance(path, str) and Path(path).is_file()
            check(ok, f"checkpoints.{alias}", path, "an existing checkpoint file")

    # ------------------------------------------------------------------ derived values
    def env_configs(self) -> dict[str, EnvConfig]:
        """``{scenario: EnvConfig}`` with ``overrides`` applied."""
        out = {}
        for name, spec in self.scenarios.items():
            cfg = spec.env_config()
            try:
                out[name] = cfg.with_overrides(self.overrides) if self.overrides else cfg
            except ConfigError as exc:
                raise type(exc)(f"overrides (scenario {name}): {exc}") from exc
        return out

    def spec(self, population: str) -> str:
        """The population's ``--agents`` SPEC with checkpoint aliases replaced by their paths."""
        entries = []
        for entry in self.populations[population].split(","):
            bank, eq, kind = entry.rpartition("=")
            head, colon, tail = kind.rpartition(":")
            if not (colon and is_number(tail)):
                head, colon, tail = kind, "", ""
            head = self.checkpoints.get(head.strip(), head)
            entries.append(f"{bank}{eq}{head}{colon}{tail}")
        return ",".join(entries)

    def plan(self, population: str, env: EnvConfig, seed: int, where: str = "") -> AgentPlan:
        """The population's agents for the banks of ``env``, share draws seeded by ``seed``."""
        try:
            return parse_agents(self.spec(population), env, seed)
        except ConfigError as exc:
            raise type(exc)(f"{where or 'populations.' + population}: {exc}") from exc

    def batches(self) -> list[int]:
        """World counts of the batches (``worlds_per_batch`` each, the last one the rest)."""
        full, rest = divmod(self.seeds, self.worlds_per_batch)
        return [self.worlds_per_batch] * full + ([rest] if rest else [])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, base_dir: str | Path | None = None
    ) -> TournamentConfig:
        """Build from a plain mapping; relative paths (scenario files, checkpoints) are read
        from ``base_dir`` (default: the current directory). Raises ``ConfigError``."""
        data = dict(data or {})
        base = Path(base_dir or Path.cwd())
        if isinstance(data.get("scenarios"), Mapping):
            data["scenarios"] = {
                k: _scenario(v, base, f"scenarios.{k}") for k, v in data["scenarios"].items()
            }
        if isinstance(data.get("checkpoints"), Mapping):
            data["checkpoints"] = {
                k: str((base / v).resolve()) if isinstance(v, str) else v
                for k, v in data["checkpoints"].items()
            }
        return build(cls, data, "")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TournamentConfig:
        """Load a tournament YAML (``yaml.safe_load``); paths are relative to its folder and
        ``name`` defaults to its stem."""
        return from_yaml_file(cls, path)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that ``from_dict`` turns back into an equal config."""
        out = {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["scenarios"] = {k: to_plain(v) for k, v in self.scenarios.items()}
        return copy.deepcopy(out)

    def with_overrides(self, overrides: Mapping[str, Any]) -> TournamentConfig:
        """A copy with dotted keys set: ``seeds``, ``equilibrium_gap.every``,
        ``populations.<name>`` and ``checkpoints.<alias>`` (new or replaced),
        ``overrides.<env key>``, ``scenarios.<name>`` (a new env), ``scenarios.<name>.<env key>``
        (short for ``scenarios.<name>.overrides.<env key>``)."""
        data = self.to_dict()
        for key, value in overrides.items():
            _set_key(data, str(key).split("."), value)
        return TournamentConfig.from_dict(data)


def _scenario(raw: Any, base: Path, where: str) -> Any:
    if isinstance(raw, EnvSpec):
        return raw
    return build(EnvSpec, _env_mapping(raw, base), f"{where}.")


def _set_key(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """``with_overrides``' setter (its docstring lists the keys)."""
    head, rest = parts[0], ".".join(parts[1:])
    if head in ("populations", "checkpoints", "overrides") and rest:
        data[head] = {**(data.get(head) or {}), rest: value}
    elif head == "scenarios" and len(parts) >= 2:
        scenarios = data["scenarios"]
        name = parts[1]
        if len(parts) == 2:
            scenarios[name] = value
            return
        if name not in scenarios:
            unknown_key(f"scenarios.{name}", name, list(scenarios))
        spec = scenarios[name]
        sub = parts[2]
        if sub in ("file", "variant", "config", "overrides") and len(parts) == 3:
            spec[sub] = value
        elif sub in ("config", "overrides"):
            spec[sub] = {**(spec.get(sub) or {}), ".".join(parts[3:]): value}
        else:
            spec["overrides"] = {**(spec.get("overrides") or {}), ".".join(parts[2:]): value}
    else:
        node = data
        for k, part in enumerate(parts[:-1]):
            if part not in node:
                unknown_key(".".join(parts[: k + 1]), part, list(node))
            if node[part] is None:  # a section switched off (null): setting a key switches it on
                node[part] = {}
            node = node[part]
        if node and parts[-1] not in node:
            unknown_key(".".join(parts), parts[-1], list(node))
        node[parts[-1]] = value


# ---------------------------------------------------------------------------- seeds
def batch_seed(seed: int, batch: int) -> int:
    """The seed of batch ``batch`` of a tournament with base ``seed``: the first word of
    ``SeedSequence([seed, batch])`` (well apart for neighbouring seeds and batches)."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1)[0])


def _seats(seed: int, batch: int, n: int, share: float) -> np.ndarray:
    """(S,) sorted seats of the row population in cross-play batch ``batch``."""
    size = min(n - 1, max(1, round(share * n)))
    return np.sort(np.random.default_rng([seed, batch, 1]).choice(n, size, replace=False))


# ---------------------------------------------------------------------------- metrics
def network_debtrank(loans: np.ndarray, equity: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """(B,) each world's network DebtRank (module docstring): the mean over the live banks with
    positive equity of their DebtRank as the only initially distressed bank.

    Args:
        loans: (B, N, N) ``loans[b, i, j]``: what i lent j (i's exposure to j), currency units.
        equity: (B, N) currency units.
        alive: (B, N) bool.
    """
    ok = alive & (equity > 0)
    b, n = ok.shape
    exposures = np.where(ok[:, :, None] & ok[:, None, :], loans, 0.0)
    impact = np.minimum(1.0, exposures / np.where(ok, equity, 1.0)[:, :, None])
    assets = exposures.sum(axis=2)
    total = assets.sum(axis=1, keepdims=True)
    count = ok.sum(axis=1, keepdims=True)
    v = np.where(total > 0, assets / np.where(total > 0, total, 1.0), ok / np.maximum(count, 1))
    h = np.eye(n)[None] * ok[:, :, None]  # h[b, s, j]: distress of j when s starts
    distressed, inactive = h > 0, np.zeros(h.shape, dtype=bool)
    while distressed.any():
        h = np.minimum(1.0, h + np.einsum("bij,bsj->bsi", impact, np.where(distressed, h, 0.0)))
        inactive |= distressed
        distressed = (h > 0) & ~inactive
    per_source = np.einsum("bsj,bj->bs", h, v) - v  # R_s = sum_j v_j h_j - v_s (h_s = 1)
    return np.where(ok, per_source, 0.0).sum(axis=1) / np.maximum(count[:, 0], 1)


def step_gap(
    state: NetworkState,
    actions: np.ndarray,
    params: Params,
    banks: np.ndarray | None = None,
    options: GapOptions | None = None,
) -> tuple[np.ndarray, int, int]:
    """(gap (B,), core calls, worlds scored): each world's largest unilateral deviation gain
    from the joint ``actions`` (B, N) at ``state`` (module docstring, ``equilibrium_gap``).

    ``banks`` (B, n) lists the banks whose deviations are scored in each world (None: all)."""
    options = options or GapOptions()
    b, n, m = state.shape
    gap = np.zeros(b)
    calls = worlds = 0
    noise = median_noise(1, n, m, params.K)
    for w in np.flatnonzero(state.alive.any(axis=1)):  # one game per world, batched scoring
        game = CoreGame(state.take(np.array([w])), params, noise, batch_worlds=options.batch_worlds)
        who = np.arange(n) if banks is None else banks[w]
        _, gain, _ = deviation_gains(game, game.indices(actions[w]), who)
        top = float(gain.max(initial=0.0))
        gap[w] = top if top > options.tol else 0.0
        calls, worlds = calls + game.calls, worlds + game.worlds
    return gap, calls, worlds


class _Recorder(EpisodeObserver):
    """Measures one batch's episodes (module docstring) while ``run_episodes`` plays them."""

    def __init__(
        self, worlds: int, gap: GapOptions | None, gap_rng: np.random.Generator, tick: Callable
    ) -> None:
        self.gap_options, self.gap_rng, self.tick = gap, gap_rng, tick
        self.gap = np.zeros(worlds)
        self.gap_calls = self.gap_worlds = 0
        self.gap_seconds = 0.0
        self.cascades = np.zeros(worlds)  # banks in cascades
        self.cascade_steps = np.zeros(worlds)
        self.cascade_max = np.zeros(worlds)
        self.peak = np.ones(worlds)
        self.drawdown = np.zeros(worlds)
        self.paths: dict[str, list[np.ndarray]] = {
            "default_rate": [],
            "total_equity": [],
            "market_index": [],
        }
        self.state: NetworkState | None = None

    def _observe(self, state: NetworkState, equity: np.ndarray) -> None:
        index = (state.price / state.price0).mean(axis=1)
        self.peak = np.maximum(self.peak, index)
        self.drawdown = np.maximum(self.drawdown, (self.peak - index) / self.peak)
        self.paths["market_index"].append(index)
        self.paths["default_rate"].append(1.0 - state.alive.mean(axis=1))
        self.paths["total_equity"].append(np.where(state.alive, equity, 0.0).sum(axis=1))
        self.state = state

    def before_step(self, state: NetworkState, actions: np.ndarray, params: Params) -> None:
        if self.state is None:
            self._observe(state, balance_sheet(state)["equity"])
        opts = self.gap_options
        if opts is None or int(state.t[0]) % opts.every:
            return
        b, n, _ = state.shape
        banks = None
        if opts.banks != "all" and opts.banks < n:
            banks = np.argsort(self.gap_rng.random((b, n)), axis=1)[:, : opts.banks]
        start = time.perf_counter()
        gap, calls, worlds = step_gap(state, actions, params, banks, opts)
        self.gap_seconds += time.perf_counter() - start
        self.gap = np.maximum(self.gap, gap)
        self.gap_calls += calls
        self.gap_worlds += worlds

    def after_step(self, state: NetworkState, output: StepOutput) -> None:
        size = output.defaulted.sum(axis=1)
        self.cascades += size
        self.cascade_steps += size > 0
        self.cascade_max = np.maximum(self.cascade_max, size)
        self._observe(state, output.balance["equity"])
        self.tick(1)

    def values(self) -> dict[str, np.ndarray]:
        """(B,) per metric, from the episode just played (the default rate and utility are
        ``run_episodes``')."""
        s = self.state
        out = {
            "cascade_mean": self.cascades / np.maximum(self.cascade_steps, 1),
            "cascade_max": self.cascade_max,
            "equity_lost": self.paths["total_equity"][0] - self.paths["total_equity"][-1],
            "debtrank": network_debtrank(s.loans, balance_sheet(s)["equity"], s.alive),
            "drawdown": self.drawdown,
        }
        if self.gap_options is not None:
            out["equilibrium_gap"] = self.gap
        return out

    def trajectory(self, steps: int) -> dict[str, np.ndarray]:
        """``{name: (steps + 1, B)}`` per-step values, the last one repeated after the end."""
        out = {}
        for name, path in self.paths.items():
            arr = np.stack(path)
            pad = np.repeat(arr[-1:], steps + 1 - len(arr), axis=0)
            out[name] = np.concatenate([arr, pad])
        return out


# ---------------------------------------------------------------------------- play
@dataclass(frozen=True)
class Cell:
    """One population in one scenario."""

    values: dict[str, np.ndarray]
    """``{metric: (W,)}`` one value per world, in world order (batch by batch)."""
    rewards: np.ndarray
    """(W, N) each bank's episode utility."""
    trajectory: dict[str, np.ndarray]
    """``{default_rate, total_equity, market_index: (T + 1,)}``: mean over worlds per step."""
    gap_calls: int = 0
    """Core calls spent on the equilibrium gap."""
    gap_worlds: int = 0
    """Worlds scored for the equilibrium gap."""
    gap_seconds: float = 0.0
    """Wall-clock time spent on the equilibrium gap."""
    seconds: float = 0.0
    """Wall-clock time of the cell (its episodes and measurements, the gap included)."""


def play_cell(
    tour: TournamentConfig, population: str, env: EnvConfig, tick: Callable = lambda k: None
) -> Cell:
    """Play ``population`` on every world of the scenario ``env`` and measure it."""
    start = time.perf_counter()
    batches = [
        play_batch(tour, population, env, k, worlds, tick)
        for k, worlds in enumerate(tour.batches())
    ]
    return assemble_cell(batches, env, time.perf_counter() - start)


def play_batch(
    tour: TournamentConfig,
    population: str,
    env: EnvConfig,
    k: int,
    worlds: int,
    tick: Callable = lambda k: None,
) -> dict[str, Any]:
    """Batch ``k`` (``worlds`` worlds, seed ``batch_seed(tour.seed, k)``) of a cell: its
    per-world metrics, rewards, trajectory and gap cost (``assemble_cell`` joins them). The
    unit of work that ``evaluate(..., ray=...)`` sends to a Ray task."""
    start = time.perf_counter()
    seed = batch_seed(tour.seed, k)
    plan = tour.plan(population, env, seed)
    rec = _Recorder(worlds, tour.equilibrium_gap, np.random.default_rng([tour.seed, k, 2]), tick)
    stats = run_episodes(env, plan.population, worlds, seed, [rec])
    tick(env.max_steps - stats.steps)
    return {
        "values": {"utility": stats.utility, "default_rate": stats.default_rate, **rec.values()},
        "rewards": stats.rewards,
        "trajectory": rec.trajectory(env.max_steps),
        "gap": (rec.gap_calls, rec.gap_worlds, rec.gap_seconds),
        "seconds": time.perf_counter() - start,
    }


def assemble_cell(batches: Sequence[Mapping[str, Any]], env: EnvConfig, seconds: float) -> Cell:
    """The ``Cell`` of a population's batches, in batch order."""
    values: dict[str, list[np.ndarray]] = {}
    for b in batches:
        for key, v in b["values"].items():
            values.setdefault(key, []).append(v)
    order = [key for key in METRICS if key in values]
    paths = [b["trajectory"] for b in batches]
    return Cell(
        values={key: np.concatenate(values[key]) for key in order},
        rewards=np.concatenate([b["rewards"] for b in batches]),
        trajectory={
            name: np.concatenate([p[name] for p in paths], axis=1).mean(axis=1) for name in paths[0]
        },
        gap_calls=sum(b["gap"][0] for b in batches),
        gap_worlds=sum(b["gap"][1] for b in batches),
        gap_seconds=sum(b["gap"][2] for b in batches),
        seconds=seconds,
    )


def _mixed(row: AgentPlan, col: AgentPlan, seats: np.ndarray) -> Population:
    """Seats played by the row plan's agents, the other banks by the column plan's."""
    n = len(row.kinds)
    in_row = np.zeros(n, dtype=bool)
    in_row[seats] = True
    return Population(
        {
            i: (row if in_row[i] else col).population.agent_of(f"bank_{i}", i)
            for i in range(n)  # who plays whom, once per batch
        }
    )


def play_cross(
    tour: TournamentConfig,
    row: str,
    col: str,
    env: EnvConfig,
    own: Cell | None = None,
    tick: Callable = lambda k: None,
) -> np.ndarray:
    """(W,) the row population's mean episode utility per bank in its seats against ``col``
    (module docstring, cross-play); ``own`` is the row's own ``Cell`` for the diagonal."""
    out, lo = [], 0
    for k, worlds in enumerate(tour.batches()):
        if row == col and own is not None:
            seats = _seats(tour.seed, k, env.num_banks, _share(tour))
            out.append(own.rewards[lo : lo + worlds, seats].mean(axis=1))
        else:
            out.append(play_cross_batch(tour, row, col, env, k, worlds, tick))
        lo += worlds
    return np.concatenate(out)


def _share(tour: TournamentConfig) -> float:
    return (tour.cross_play or CrossPlayOptions()).share


def play_cross_batch(
    tour: TournamentConfig,
    row: str,
    col: str,
    env: EnvConfig,
    k: int,
    worlds: int,
    tick: Callable = lambda k: None,
) -> np.ndarray:
    """(worlds,) batch ``k`` of the cross-play cell (row, col), row != col (a Ray task's unit
    of work with ``evaluate(..., ray=...)``)."""
    seats = _seats(tour.seed, k, env.num_banks, _share(tour))
    seed = batch_seed(tour.seed, k)
    pop = _mixed(tour.plan(row, env, seed), tour.plan(col, env, seed), seats)
    stats = run_episodes(env, pop, worlds, seed, [_Tick(tick)])
    tick(env.max_steps - stats.steps)
    return stats.rewards[:, seats].mean(axis=1)


class _Tick(EpisodeObserver):
    def __init__(self, tick: Callable) -> None:
        self.tick = tick

    def after_step(self, state: NetworkState, output: StepOutput) -> None:
        self.tick(1)


def _preflight(tour: TournamentConfig, configs: Mapping[str, EnvConfig]) -> None:
    """Every observation agent acts once on each scenario's first world, so a checkpoint that
    does not fit a scenario fails before anything runs."""
    for scen, env in configs.items():
        state = initial_state(env, np.random.default_rng(batch_seed(tour.seed, 0)))
        params = Params.from_config(env)
        for pop in tour.populations:
            for agent in tour.plan(pop, env, 0).population.members():
                if isinstance(agent, ObservationAgent):
                    try:
                        agent.act_batch(state, params)
                    except (ConfigError, InputError, ValueError, RuntimeError) as exc:
                        raise ConfigError(
                            f"populations.{pop} cannot play scenario {scen}: {exc}"
                        ) from exc


def evaluate(
    tour: TournamentConfig, *, progress: bool | None = None, ray: str | None = None
) -> TournamentResult:
    """Play the tournament (module docstring); ``progress`` overrides ``tour.progress_bar``.

    ``ray``: None plays every cell here, one after the other. Otherwise each batch of each cell
    (and of each off-diagonal cross-play cell) is a Ray task (``play_batch``,
    ``play_cross_batch``), all submitted at once and gathered in order: ``"local"`` starts a
    local Ray instance (all this machine's CPUs; an instance already started in this process
    is used as it is), any other value is a cluster address for ``ray.init(address=...)``
    (``auto``, ``head:6379``, ``ray://head:10001``). The numbers are the same as a local run's
    (every batch draws only from its own seeds); ``Cell.seconds`` is then the sum of its
    batches' times on the workers, not wall time. Checkpoint paths in ``checkpoints`` must be
    readable on every Ray node (a shared file system, or the same path everywhere).
    (Needs the ``[distributed]`` extra.)
    """
    from tqdm import tqdm

    start = time.perf_counter()
    configs = tour.env_configs()
    _preflight(tour, configs)
    pops = list(tour.populations)
    runs = len(pops) + (len(pops) * (len(pops) - 1) if tour.cross_play else 0)
    total = runs * len(tour.batches()) * sum(env.max_steps for env in configs.values())
    show = tour.progress_bar if progress is None else progress
    bar = tqdm(total=total, desc="evaluate", unit="step", disable=not show or None)
    if ray is not None:
        with bar:
            cells, cross, cross_seconds = _evaluate_on_ray(tour, configs, ray, bar)
        seconds = time.perf_counter() - start
        return TournamentResult(tour, configs, cells, cross, seconds, cross_seconds)
    cells: dict[tuple[str, str], Cell] = {}
    cross: dict[tuple[str, str, str], np.ndarray] = {}
    cross_seconds: dict[str, float] = {}
    with bar:
        for scen, env in configs.items():
            for pop in pops:
                bar.set_postfix_str(f"{pop} @ {scen}")
                cells[(pop, scen)] = play_cell(tour, pop, env, bar.update)
            if tour.cross_play is None:
                continue
            cross_start = time.perf_counter()
            for row in pops:
                for col in pops:
                    bar.set_postfix_str(f"{row} vs {col} @ {scen}")
                    own = cells[(row, scen)]
                    cross[(scen, row, col)] = play_cross(tour, row, col, env, own, bar.update)
            cross_seconds[scen] = time.perf_counter() - cross_start
    seconds = time.perf_counter() - start
    return TournamentResult(tour, configs, cells, cross, seconds, cross_seconds)


def _evaluate_on_ray(
    tour: TournamentConfig, configs: Mapping[str, EnvConfig], address: str, bar: Any
) -> tuple[dict, dict, dict]:
    """``evaluate``'s cells, cross-play cells and cross-play seconds, played as Ray tasks."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray needs Ray: pip install -c constraints.txt -e '.[distributed]'"
        ) from None
    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    try:
        batch_task = ray.remote(num_cpus=1)(play_batch)
        cross_task = ray.remote(num_cpus=1)(play_cross_batch)
        tour_ref = ray.put(tour)
        pops, batches = list(tour.populations), list(enumerate(tour.batches()))
        cell_refs: dict[tuple[str, str], list[Any]] = {}
        cross_refs: dict[tuple[str, str, str], list[Any]] = {}
        steps: dict[Any, int] = {}
        for scen, env in configs.items():
            for pop in pops:
                refs = [batch_task.remote(tour_ref, pop, env, k, w) for k, w in batches]
                cell_refs[(pop, scen)] = refs
                steps.update(dict.fromkeys(refs, env.max_steps))
            if tour.cross_play is None:
                continue
            for row in pops:
                for col in pops:
                    if row != col:
                        refs = [
                            cross_task.remote(tour_ref, row, col, env, k, w) for k, w in batches
                        ]
                        cross_refs[(scen, row, col)] = refs
                        steps.update(dict.fromkeys(refs, env.max_steps))
        pending = list(steps)
        while pending:  # progress as tasks finish (a task's worlds run max_steps steps)
            ready, pending = ray.wait(pending, num_returns=1)
            bar.update(steps[ready[0]])
        cells = {}
        for (pop, scen), refs in cell_refs.items():
            parts = ray.get(refs)
            seconds = sum(b["seconds"] for b in parts)
            cells[(pop, scen)] = assemble_cell(parts, configs[scen], seconds)
        cross: dict[tuple[str, str, str], np.ndarray] = {}
        cross_seconds: dict[str, float] = {}
        if tour.cross_play is not None:
            for scen, env in configs.items():
                t0 = time.perf_counter()
                for row in pops:
                    for col in pops:
                        if row == col:
                            own = cells[(row, scen)]
                            cross[(scen, row, col)] = play_cross(tour, row, col, env, own)
                        else:
                            cross[(scen, row, col)] = np.concatenate(
                                ray.get(cross_refs[(scen, row, col)])
                            )
                cross_seconds[scen] = time.perf_counter() - t0
        return cells, cross, cross_seconds
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TournamentResult:
    """What ``evaluate`` measured; ``write`` puts it in a folder."""

    config: TournamentConfig
    env_configs: dict[str, EnvConfig]
    cells: dict[tuple[str, str], Cell]
    """``{(population, scenario): Cell}``."""
    cross: dict[tuple[str, str, str], np.ndarray]
    """``{(scenario, row, column): (W,)}`` the row's utility per bank in its seats."""
    seconds: float
    """Wall-clock time of the whole tournament."""
    cross_seconds: dict[str, float] = field(default_factory=dict)
    """``{scenario: seconds}`` spent on its cross-play cells."""

    @property
    def metrics(self) -> list[str]:
        return list(next(iter(self.cells.values())).values)

    def interval(self, population: str, scenario: str, metric: str) -> Interval:
        """Mean over worlds and its t interval at ``config.level``."""
        return mean_interval(self.cells[(population, scenario)].values[metric], self.config.level)

    def gap_cost(self) -> tuple[int, int]:
        """(core calls, worlds scored) spent on the equilibrium gap, over every cell."""
        return (
            sum(c.gap_calls for c in self.cells.values()),
            sum(c.gap_worlds for c in self.cells.values()),
        )

    def _about(self) -> str:
        c = self.config
        return (
            f"{c.seeds} worlds per cell (seed {c.seed}, batches of {c.worlds_per_batch}; every "
            f"population meets the same worlds and noise); mean ± half-width of the "
            f"{c.level:.0%} t interval over worlds. Definitions: `training/evaluate.py`."
        )

    def _scenario_title(self, scen: str) -> str:
        env = self.env_configs[scen]
        return f"## {scen} ({env.num_banks} banks, {env.max_steps} steps)"

    def markdown(self) -> str:
        """``results.md``: one table per scenario, a row per population."""
        lines = [f"# Tournament `{self.config.name}`", "", self._about(), ""]
        header = ["population", *(METRICS[m] for m in self.metrics)]
        for scen in self.env_configs:
            rows = [
                [pop, *(_cell(self.interval(pop, scen, m)) for m in self.metrics)]
                for pop in self.config.populations
            ]
            lines += [self._scenario_title(scen), "", *markdown_table(header, rows), ""]
        return "\n".join(lines)

    def csv(self) -> str:
        """``results.csv``: a row per population x scenario, ``<metric>_mean``/``_half``."""
        header = ["population", "scenario", "worlds", "level"]
        header += [f"{m}_{part}" for m in self.metrics for part in ("mean", "half")]
        rows = []
        for scen in self.env_configs:
            for pop in self.config.populations:
                ivs = [self.interval(pop, scen, m) for m in self.metrics]
                nums = [f"{x:.6g}" for iv in ivs for x in (iv.mean, iv.half)]
                rows.append([pop, scen, self.config.seeds, self.config.level, *nums])
        return csv_text(header, rows)

    def per_world_csv(self) -> str:
        """``per_world.csv``: every world's value of every metric."""
        header = ["population", "scenario", "world", *self.metrics]
        rows = []
        for (pop, scen), cell in self.cells.items():
            for w in range(self.config.seeds):
                rows.append([pop, scen, w, *(f"{cell.values[m][w]:.10g}" for m in self.metrics)])
        return csv_text(header, rows)

    def cross_interval(self, scenario: str, row: str, col: str) -> Interval:
        return mean_interval(self.cross[(scenario, row, col)], self.config.level)

    def cross_markdown(self) -> str:
        """``cross_play.md``: per scenario, the row population's utility against each column."""
        if self.config.cross_play is None:
            return "Cross-play is off in this tournament (`cross_play: null`).\n"
        share = self.config.cross_play.share
        lines = [
            f"# Cross-play, tournament `{self.config.name}`",
            "",
            f"Row population's mean episode utility per bank in its seats ({share:.0%} of the "
            "banks, drawn per batch) with the column population in the other seats. "
            + self._about(),
            "",
        ]
        pops = list(self.config.populations)
        for scen in self.env_configs:
            rows = [[r, *(_cell(self.cross_interval(scen, r, c)) for c in pops)] for r in pops]
            table = markdown_table(["row \\ column", *pops], rows)
            lines += [self._scenario_title(scen), "", *table, ""]
        return "\n".join(lines)

    def cross_csv(self) -> str:
        header = ["scenario", "row", "column", "share", "worlds", "utility_mean", "utility_half"]
        share = self.config.cross_play.share if self.config.cross_play else ""
        rows = []
        for (scen, r, c), _ in self.cross.items():
            iv = self.cross_interval(scen, r, c)
            rows.append([scen, r, c, share, iv.n, f"{iv.mean:.6g}", f"{iv.half:.6g}"])
        return csv_text(header, rows)

    def write(self, folder: str | Path) -> list[Path]:
        """Every file of the module docstring into ``folder`` (created); returns the paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        texts = {
            "results.md": self.markdown(),
            "results.csv": self.csv(),
            "cross_play.md": self.cross_markdown(),
            "cross_play.csv": self.cross_csv(),
            "per_world.csv": self.per_world_csv(),
            "config.yaml": yaml.safe_dump(self.config.to_dict(), sort_keys=False),
        }
        paths = []
        for name, text in texts.items():
            (out / name).write_text(text, encoding="utf-8")
            paths.append(out / name)
        if self.config.tensorboard:
            paths.append(log_tensorboard(self, out / "tb"))
        return paths


def log_tensorboard(result: TournamentResult, folder: str | Path) -> Path:
    """One TensorBoard run per population (``<folder>/<population>``), tags per scenario:
    ``<scenario>/<metric>`` (mean) and ``<scenario>/<metric>_half`` at step W (the worlds),
    ``<scenario>/episode/<default_rate|total_equity|market_index>`` per step (mean over
    worlds), ``<scenario>/cross_play/<column>`` and the text ``<scenario>/results``; the run
    ``tournament`` holds ``results.md`` and ``cross_play.md`` as text."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            "tensorboard = true needs torch and tensorboard (pip install -e '.[train]'): "
            "install them or set tensorboard: false"
        ) from exc
    folder = Path(folder)
    w_count = result.config.seeds
    header = ["population", *(METRICS[m] for m in result.metrics)]
    for pop in result.config.populations:
        with SummaryWriter(log_dir=str(folder / pop)) as writer:
            for scen in result.env_configs:
                cell = result.cells[(pop, scen)]
                ivs = {m: result.interval(pop, scen, m) for m in result.metrics}
                for m, iv in ivs.items():
                    writer.add_scalar(f"{scen}/{m}", iv.mean, w_count)
                    writer.add_scalar(f"{scen}/{m}_half", iv.half, w_count)
                for name, path in cell.trajectory.items():
                    for t, v in enumerate(path.tolist()):
                        writer.add_scalar(f"{scen}/episode/{name}", v, t)
                for (s, r, c), values in result.cross.items():
                    if s == scen and r == pop:
                        writer.add_scalar(f"{scen}/cross_play/{c}", float(values.mean()), w_count)
                row = [pop, *(_cell(iv) for iv in ivs.values())]
                writer.add_text(f"{scen}/results", "\n".join(markdown_table(header, [row])), 0)
    with SummaryWriter(log_dir=str(folder / "tournament")) as writer:
        writer.add_text("tournament/results", result.markdown(), 0)
        writer.add_text("tournament/cross_play", result.cross_markdown(), 0)
    return folder


def summary(result: TournamentResult) -> str:
    """What ``rudra evaluate`` prints: the results tables, the time and the gap's cost."""
    calls, worlds = result.gap_cost()
    lines = [result.markdown()]
    lines.append(f"played in {result.seconds:.1f} s")
    if result.config.equilibrium_gap is not None:
        gap_s = sum(c.gap_seconds for c in result.cells.values())
        lines[-1] += f"; equilibrium gap: {calls} core calls, {worlds} worlds scored, {gap_s:.1f} s"
    if result.cross_seconds:
        lines[-1] += f"; cross-play: {sum(result.cross_seconds.values()):.1f} s"
    return "\n".join(lines)
