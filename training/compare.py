"""After training, the trained policy against baselines in the learners' seats: ``compare``.

The question after a run: would the learning banks have done better with a simple policy?
``compare(config, model_path)`` plays W evaluation worlds once per *candidate* in the learners'
seats — the trained policy as it was trained (``trained``: actions sampled from its masked softmax,
with a generator seeded by the evaluation seed), the same policy played greedily (``trained,
greedy``: the argmax of its masked logits; in a game the argmax of a mixed strategy can fare very
differently) and each baseline of ``against`` (``random``, ``heuristic``, ``equilibrium``, ``hold``)
— while the other banks keep the config's fixed agent. Every candidate meets the same worlds: the
same initial networks, shocks and noise (``agents.run_episodes`` with one seed; common random
numbers), so differences are the candidates' play.

Per candidate (``Comparison.rows``):

* ``utility``: the learners' episode utility (sum of rewards) per bank, the mean over worlds
  with its 95% t interval;
* ``vs_trained``: the paired difference candidate - trained over the same worlds, with its 95%
  interval (the worlds' shared luck cancels: negative = the trained policy did better);
* ``default_rate``: the share of the learners that defaulted, mean over worlds.

The evaluation worlds are drawn with ``seed = config.seed + EVAL_SEED_OFFSET``, far from the
training worlds (``config.seed + i`` for world i < B).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents import Population
from agents.base import Agent
from agents.episodes import run_episodes
from agents.registry import AGENT_KINDS, make_agent
from agents.stats import Interval, mean_interval, paired_interval
from agents.torch_policy import TorchPolicyAgent
from rudra_env.errors import ConfigError
from training.config import TrainConfig
from training.evaluate import csv_text, markdown_table

__all__ = ["EVAL_SEED_OFFSET", "Comparison", "CompareRow", "compare"]

EVAL_SEED_OFFSET = 1_000_000
"""Evaluation worlds are drawn from ``config.seed + EVAL_SEED_OFFSET``."""


@dataclass(frozen=True)
class CompareRow:
    """One candidate's outcomes in the learners' seats."""

    candidate: str
    utility: Interval
    vs_trained: Interval | None
    default_rate: float


@dataclass(frozen=True)
class Comparison:
    """The candidates' rows (the trained policy first) and how they were played."""

    rows: list[CompareRow]
    worlds: int
    seed: int
    learners: int

    def markdown(self) -> str:
        """A Markdown table (95% intervals over worlds)."""
        header = ["in the learners' seats", "utility per bank", "vs trained", "default rate"]
        rows = [
            [
                r.candidate,
                r.utility,
                "—"
                if r.vs_trained is None
                else f"{r.vs_trained.mean:+.3f} ± {r.vs_trained.half:.3f}",
                f"{r.default_rate:.1%}",
            ]
            for r in self.rows
        ]
        intro = (
            f"Learners' episode utility per bank over {self.worlds} worlds (seed {self.seed}, "
            "the same worlds for every row; 95% intervals; `vs trained` is the paired "
            "difference, negative = the trained policy did better)"
        )
        return "\n".join([intro, "", *markdown_table(header, rows)]) + "\n"

    def csv(self) -> str:
        header = ["candidate", "utility_mean", "utility_ci95", "vs_trained_mean"]
        header += ["vs_trained_ci95", "default_rate", "worlds", "seed"]
        rows = []
        for r in self.rows:
            vs = r.vs_trained
            rows.append(
                [
                    r.candidate,
                    f"{r.utility.mean:.6g}",
                    f"{r.utility.half:.6g}",
                    "" if vs is None else f"{vs.mean:.6g}",
                    "" if vs is None else f"{vs.half:.6g}",
                    f"{r.default_rate:.6g}",
                    self.worlds,
                    self.seed,
                ]
            )
        return csv_text(header, rows)

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """``comparison.md`` and ``comparison.csv`` in ``folder``."""
        folder = Path(folder)
        md, table = folder / "comparison.md", folder / "comparison.csv"
        md.write_text(self.markdown(), encoding="utf-8")
        table.write_text(self.csv(), encoding="utf-8")
        return md, table


def _seats(config: TrainConfig, candidate: Agent, fixed: Agent | None) -> Agent:
    """The population: ``candidate`` in the learners' seats, ``fixed`` in the others (a
    candidate that is itself a ``Population`` of the learners' seats keeps its assignment)."""
    n = config.env_config().num_banks
    learners = config.learner_indices(n)
    if len(learners) == n:
        return candidate
    if isinstance(candidate, Population):
        return Population(candidate.assignment, default=fixed)
    return Population({int(i): candidate for i in learners}, default=fixed)


def compare(
    config: TrainConfig,
    trained: str | Path | Agent,
    against: Sequence[str] = ("random", "heuristic", "equilibrium"),
    worlds: int = 30,
    seed: int | None = None,
    greedy: Agent | None = None,
) -> Comparison:
    """Play the trained policy and each baseline of ``against`` (``agents.registry.AGENT_KINDS``)
    in the learners' seats on the same ``worlds`` evaluation worlds (see the module docstring).

    ``trained`` is a model zip (played sampled and greedy, as ``TorchPolicyAgent``) or an
    ``Agent`` (e.g. a ``Population`` of one model per bank group), with ``greedy`` its greedy
    form when there is one."""
    from training.train import fixed_agent  # the run's own fixed agents, seeded alike

    for name in against:
        if name not in AGENT_KINDS:
            raise ConfigError(
                f"against = {name!r} is not a baseline: expected one of {AGENT_KINDS}"
            )
    if not (isinstance(worlds, int) and worlds >= 2):
        raise ConfigError(f"worlds = {worlds!r} is not allowed: expected an integer >= 2")
    seed = config.seed + EVAL_SEED_OFFSET if seed is None else seed
    env_config = config.env_config()
    n = env_config.num_banks
    learners = config.learner_indices(n)
    candidates: dict[str, Agent] = {}
    if isinstance(trained, Agent):
        candidates["trained"] = trained
    else:
        candidates["trained"] = TorchPolicyAgent.load(trained, deterministic=False, seed=seed)
        candidates["trained, greedy"] = TorchPolicyAgent.load(trained, deterministic=True)
    if greedy is not None:
        candidates["trained, greedy"] = greedy
    candidates.update({name: make_agent(name, seed) for name in against})
    per_world: dict[str, np.ndarray] = {}
    defaults: dict[str, float] = {}
    for name, agent in candidates.items():
        fixed = fixed_agent(config) if len(learners) < n else None
        stats = run_episodes(env_config, _seats(config, agent, fixed), worlds, seed)
        per_world[name] = stats.rewards[:, learners].mean(axis=1)
        defaults[name] = float(stats.dead[:, learners].mean())
    trained_u = per_world["trained"]
    rows = [
        CompareRow(
            name,
            mean_interval(u),
            None if name == "trained" else paired_interval(u, trained_u),
            defaults[name],
        )
        for name, u in per_world.items()
    ]
    return Comparison(rows, worlds, seed, len(learners))
