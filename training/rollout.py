"""Record one episode: ``rollout(config, agents, logdir, seed) -> RolloutResult``
(``rudra rollout CONFIG --agents SPEC --logdir DIR``).

The episode is played and written to TensorBoard by ``training.tensorboard.record_rollout``
(the network drawn at each step under ``rollout/network``, per-step scalars, the event table);
this module adds the files beside it::

    <logdir>/tb/            TensorBoard (``tensorboard --logdir <logdir>``)
    <logdir>/events.jsonl   the event log, one JSON object per line (``Event.to_dict``)
    <logdir>/network.npz    the network and balance sheets at every step (``NETWORK_FIELDS``;
                            ``np.load(path, allow_pickle=False)``, ``read_network``)
    <logdir>/summary.png    equity paths, defaults and prices over the episode
    <logdir>/config.yaml    the resolved env config (overrides applied)
    <logdir>/run.json       env id, seed, the agents spec and each bank's agent, final metrics

The same seed gives the same episode (env, agents and the random draw of shares).

Agents (``--agents SPEC``, ``parse_agents``)
--------------------------------------------
``SPEC`` is a comma-separated list of entries, each one of

=================  ==========================================================================
``KIND``           every bank; beside other entries, every bank not otherwise assigned
``KIND:SHARE``     a share of the banks, ``SHARE`` in (0, 1]
``BANK=KIND``      one bank, ``BANK`` an index (``3``) or a name (``bank_3``)
=================  ==========================================================================

``KIND`` is ``hold``, ``random``, ``heuristic``, ``equilibrium`` (``agents.HoldAgent``,
``RandomAgent``, ``HeuristicAgent``, ``EquilibriumAgent`` with its defaults) or the path of a
trained checkpoint played by ``agents.TorchPolicyAgent`` (an SB3 ``.zip``, or a ``.pt``/``.pth``
state dict with its ``.json`` sidecar), deterministic. Named banks are assigned first; the shares
split the other banks: each kind gets ``SHARE * n`` banks rounded by largest remainder, the
banks drawn at random from the seed. At most one ``KIND`` has no share and takes the rest;
without it the shares must sum to 1. Examples::

    heuristic                                   every bank
    equilibrium:0.8,random:0.2                  80 % / 20 % of the banks, drawn from the seed
    bank_0=equilibrium,bank_1=runs/a/final_model.zip,heuristic
    equilibrium:0.25,heuristic                  a quarter equilibrium, the rest heuristic

Each kind is one agent object for all its banks, seeded from the seed (``Population.reset``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents import Agent, Population, TorchPolicyAgent
from agents.registry import AGENT_KINDS, make_agent
from rudra_env.config import EnvConfig
from rudra_env.core import Params, balance_sheet
from rudra_env.environment import RudraParallelEnv
from rudra_env.errors import ConfigError

__all__ = [
    "AGENT_KINDS",
    "NETWORK_FIELDS",
    "AgentPlan",
    "EpisodeTrace",
    "RecordedNetwork",
    "RolloutResult",
    "episode_figure",
    "is_number",
    "parse_agents",
    "read_network",
    "rollout",
]

CHECKPOINT_SUFFIXES = (".zip", ".pt", ".pth")
"""File endings of checkpoints ``TorchPolicyAgent.load`` reads."""
NETWORK_FIELDS = {
    "step": "(T+1,) int: the step of each record (0 = after reset)",
    "loans": "(T+1, N, N) loans[t, i, j]: what bank i lent bank j",
    "cash": "(T+1, N)",
    "external": "(T+1, N) external assets",
    "deposits": "(T+1, N)",
    "assets": "(T+1, N) total assets (market positions at their marks)",
    "liabilities": "(T+1, N)",
    "equity": "(T+1, N) assets - liabilities",
    "alive": "(T+1, N) bool",
    "price": "(T+1, M) market prices",
    "market_names": "(M,) str",
    "agents": "(N,) str: each bank's agent kind",
}
"""Arrays of ``network.npz`` (currency units unless said): T steps, N banks, M markets."""


# ---------------------------------------------------------------------------- --agents
@dataclass(frozen=True)
class AgentPlan:
    """Who plays which bank: ``population`` for ``record_rollout``, ``kinds`` for the record."""

    population: Population
    kinds: tuple[str, ...]
    """(N,) the kind of each bank (a checkpoint's path as given)."""


def _bank(raw: str, n: int, entry: str) -> int:
    text = raw.strip()
    m = re.fullmatch(r"(?:bank_)?(\d+)", text)
    if m is None or int(m.group(1)) >= n:
        raise ConfigError(
            f"--agents entry {entry!r}: bank {text!r} is not a bank: expected an index in "
            f"0..{n - 1} or a name like 'bank_3'"
        )
    return int(m.group(1))


def _share(raw: str, entry: str) -> float:
    try:
        share = float(raw)
    except ValueError:
        share = float("nan")
    if not 0.0 < share <= 1.0:  # also NaN
        raise ConfigError(
            f"--agents entry {entry!r}: share {raw!r} is not allowed: expected a number in (0, 1]"
        )
    return share


def _known(kind: str) -> bool:
    return kind.strip() in AGENT_KINDS or Path(kind.strip()).is_file()


def is_number(text: str) -> bool:
    """``text`` reads as a number (a share in ``KIND:SHARE``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _kind(raw: str, entry: str) -> str:
    kind = raw.strip()
    if _known(kind):
        return kind
    if "/" in kind or "\\" in kind or kind.endswith(CHECKPOINT_SUFFIXES):
        raise ConfigError(f"--agents entry {entry!r}: checkpoint file {kind!r} does not exist")
    close = difflib.get_close_matches(kind, AGENT_KINDS, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"--agents entry {entry!r}: unknown agent kind {kind!r}{hint}; allowed: "
        f"{', '.join(AGENT_KINDS)}, or a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})"
    )


def _entries(spec: str, n: int) -> tuple[dict[int, str], list[tuple[str, float | None]]]:
    """``({bank: kind}, [(kind, share or None), ...])`` of a SPEC, each entry checked."""
    named: dict[int, str] = {}
    shared: list[tuple[str, float | None]] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            raise ConfigError(
                f"--agents {spec!r} has an empty entry: expected KIND, KIND:SHARE or BANK=KIND "
                "separated by commas, e.g. 'equilibrium:0.8,random:0.2'"
            )
        bank, eq, rest = entry.partition("=")
        if eq:
            idx = _bank(bank, n, entry)
            if idx in named:
                raise ConfigError(f"--agents names bank {idx} twice (entry {entry!r})")
            named[idx] = _kind(rest, entry)
            continue
        head, colon, tail = entry.rpartition(":")
        if colon and (_known(head) or is_number(tail)):
            shared.append((_kind(head, entry), _share(tail, entry)))
        else:
            shared.append((_kind(entry, entry), None))
    return named, shared


def _counts(shares: list[float], total: int) -> np.ndarray:
    """Largest-remainder split of ``total`` banks by ``shares`` (summing to 1); ties go to the
    earlier entry."""
    exact = np.array(shares) * total
    counts = np.floor(exact + 1e-9).astype(int)
    left = total - counts.sum()
    order = np.lexsort((np.arange(len(shares)), -(exact - counts)))
    counts[order[:left]] += 1
    return counts


def _split_shares(shared: list[tuple[str, float | None]], spec: str) -> list[tuple[str, float]]:
    """Shares summing to 1: the share-less kind (at most one) takes ``1 - sum``."""
    rest = [kind for kind, share in shared if share is None]
    if len(rest) > 1:
        raise ConfigError(
            f"--agents {spec!r} has {len(rest)} kinds without a share ({', '.join(rest)}): at "
            "most one kind may take the rest of the banks"
        )
    total = sum(share for _, share in shared if share is not None)
    if total > 1 + 1e-9 or (not rest and shared and abs(total - 1) > 1e-6):
        allowed = "at most 1 (a kind without a share takes the rest)" if rest else "1"
        raise ConfigError(f"--agents {spec!r}: the shares sum to {total:.6g}; allowed: {allowed}")
    return [(kind, max(0.0, 1.0 - total) if share is None else share) for kind, share in shared]


def _build(kind: str, seed: int, params: Params) -> Agent:
    if kind in AGENT_KINDS:
        return make_agent(kind, seed, params)  # the heuristic acts without an EnvView
    return TorchPolicyAgent.load(kind, seed=seed)


def parse_agents(spec: str, config: EnvConfig, seed: int = 0) -> AgentPlan:
    """The population of a ``--agents`` SPEC (module docstring) for the banks of ``config``.

    Raises:
        ConfigError: naming the entry and what is allowed (unknown kind, missing checkpoint,
            share outside (0, 1] or shares not summing to 1, bad or repeated bank, banks left
            without an agent).
    """
    num_banks = config.num_banks
    named, shared = _entries(spec, num_banks)
    kinds: list[str | None] = [named.get(i) for i in range(num_banks)]
    others = np.array([i for i in range(num_banks) if i not in named], dtype=np.int64)
    if len(others) and not shared:
        raise ConfigError(
            f"--agents {spec!r} leaves banks {others.tolist()} without an agent: add a kind for "
            f"the rest, e.g. --agents '{spec},heuristic'"
        )
    if shared:
        split = _split_shares(shared, spec)
        drawn = np.random.default_rng(seed).permutation(others)
        bounds = np.concatenate([[0], np.cumsum(_counts([s for _, s in split], len(others)))])
        for (kind, _), lo, hi in zip(split, bounds[:-1], bounds[1:], strict=True):
            for i in drawn[lo:hi].tolist():
                kinds[i] = kind
    params = Params.from_config(config)
    agents = {kind: _build(kind, seed, params) for kind in dict.fromkeys(kinds)}  # one per kind
    population = Population({i: agents[k] for i, k in enumerate(kinds)})
    return AgentPlan(population=population, kinds=tuple(str(k) for k in kinds))


# ---------------------------------------------------------------------------- the record
@dataclass
class EpisodeTrace:
    """Balance sheets and network of one env at every step: ``observe(env)`` after the reset and
    after every step (``record_rollout``'s ``on_step``)."""

    records: list[dict[str, np.ndarray]] = field(default_factory=list)
    env: RudraParallelEnv | None = None
    """The env observed last (its ``event_log`` is the episode's)."""

    def observe(self, env: RudraParallelEnv) -> None:
        s = env.core_state
        bs = balance_sheet(s)
        self.env = env
        self.records.append(
            {
                "step": np.int64(s.t[0]),
                "loans": s.loans[0].copy(),
                "cash": s.cash[0].copy(),
                "external": s.external[0].copy(),
                "deposits": s.deposits[0].copy(),
                "assets": bs["assets"][0].copy(),
                "liabilities": bs["liabilities"][0].copy(),
                "equity": bs["equity"][0].copy(),
                "alive": s.alive[0].copy(),
                "price": s.price[0].copy(),
            }
        )

    def arrays(self, kinds: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Every field of ``NETWORK_FIELDS``, stacked over the records."""
        if not self.records or self.env is None:
            raise ConfigError("the trace is empty: observe the env after its reset first")
        out = {key: np.stack([r[key] for r in self.records]) for key in self.records[0]}
        out["market_names"] = np.array(self.env.params.market_names, dtype=str)
        out["agents"] = np.array(kinds or [""] * out["cash"].shape[1], dtype=str)
        return out

    def write_events(self, path: Path) -> int:
        """The env's event log as JSON Lines; returns the number of events."""
        events = self.env.event_log if self.env is not None else []
        path.write_text("".join(e.to_json() + "\n" for e in events))
        return len(events)


@dataclass(frozen=True)
class RecordedNetwork:
    """One step of a recorded ``network.npz``."""

    loans: np.ndarray
    """(N, N) ``loans[i, j]``: what bank i lent bank j."""
    equity: np.ndarray
    """(N,)"""
    assets: np.ndarray
    """(N,)"""
    alive: np.ndarray
    """(N,) bool"""
    step: int
    """The episode's step."""
    source: Path
    """The npz file."""


def read_network(path: str | Path, step: int = -1) -> RecordedNetwork:
    """Step ``step`` of a recording (Python indexing: -1 is the last step; ``path`` a rollout
    directory holding ``network.npz``, or the npz file), loaded with ``allow_pickle=False``."""
    p = Path(path)
    file = p / "network.npz" if p.is_dir() else p
    if not file.is_file():
        raise ConfigError(
            f"--network {str(path)!r}: no such file: expected a rollout directory holding "
            "network.npz (written by rudra rollout) or an .npz file"
        )
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("step", "loans", "equity", "assets", "alive")}
    except KeyError as exc:
        raise ConfigError(
            f"--network {str(file)!r} lacks the array {exc.args[0]!r}: expected the arrays "
            f"{', '.join(NETWORK_FIELDS)} written by rudra rollout"
        ) from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"--network {str(file)!r} is not a readable .npz file: {exc}") from None
    t = len(arrays["step"])
    if not -t <= step < t:
        raise ConfigError(
            f"--step {step} is not allowed: {file} holds {t} records, steps 0..{t - 1} "
            f"(or -{t}..-1 from the end)"
        )
    return RecordedNetwork(
        loans=arrays["loans"][step],
        equity=arrays["equity"][step],
        assets=arrays["assets"][step],
        alive=arrays["alive"][step].astype(bool),
        step=int(arrays["step"][step]),
        source=file,
    )


# ---------------------------------------------------------------------------- summary figure
def episode_figure(arrays: Mapping[str, np.ndarray], title: str = "") -> Any:
    """A matplotlib ``Figure`` of an episode (``EpisodeTrace.arrays()``): each bank's equity
    (coloured by its agent kind; a cross where it defaulted), defaults per step with their
    running total, and market prices."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps, equity, alive = arrays["step"], arrays["equity"], arrays["alive"]
    fig = Figure(figsize=(9.0, 9.0), dpi=100)
    FigureCanvasAgg(fig)
    ax_eq, ax_def, ax_px = fig.subplots(3, 1, sharex=True)
    kinds = arrays["agents"].tolist()
    palette = {kind: f"C{k % 10}" for k, kind in enumerate(dict.fromkeys(kinds))}
    fell = alive[:-1] & ~alive[1:]  # (T, N): defaulted at step t + 1
    for i, kind in enumerate(kinds):
        last = int(np.argmax(fell[:, i])) + 1 if fell[:, i].any() else len(steps) - 1
        ax_eq.plot(steps[: last + 1], equity[: last + 1, i], color=palette[kind], lw=0.9)
        if fell[:, i].any():
            ax_eq.plot(steps[last], equity[last, i], "x", color="black", ms=6)
    for kind, color in palette.items():
        ax_eq.plot([], [], color=color, label=kind or "bank")
    ax_eq.axhline(0.0, color="grey", lw=0.5)
    ax_eq.set_ylabel("equity")
    ax_eq.legend(fontsize=8, loc="best")
    per_step = np.concatenate([[0], fell.sum(axis=1)])
    ax_def.bar(steps, per_step, color="#c0392b", label="defaults this step")
    ax_def.step(steps, np.cumsum(per_step), where="post", color="black", label="defaults so far")
    ax_def.set_ylabel("banks")
    ax_def.legend(fontsize=8, loc="upper left")
    for m, name in enumerate(arrays["market_names"].tolist()):
        ax_px.plot(steps, arrays["price"][:, m], label=name)
    ax_px.set_ylabel("price")
    ax_px.set_xlabel("step")
    ax_px.legend(fontsize=8, loc="best")
    fig.suptitle(title or "episode", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- the rollout
@dataclass(frozen=True)
class RolloutResult:
    """What ``rollout`` wrote."""

    logdir: Path
    steps: int
    """Steps the episode lasted."""
    events: int
    """Events in ``events.jsonl``."""
    metrics: dict[str, float]
    """``record_rollout``'s final metrics (``env.summary()`` plus ``mean_return``)."""
    kinds: tuple[str, ...]
    """Each bank's agent kind."""


def _fresh_dir(logdir: Path) -> Path:
    if logdir.exists() and (not logdir.is_dir() or any(logdir.iterdir())):
        raise ConfigError(
            f"--logdir {str(logdir)!r} is not allowed: it exists and is not an empty "
            "directory (a rollout does not mix its files with another run's): choose a new one"
        )
    logdir.mkdir(parents=True, exist_ok=True)
    return logdir


def rollout(
    config: EnvConfig,
    logdir: str | Path,
    agents: str = "heuristic",
    seed: int = 0,
    *,
    frame_every: int = 1,
    max_frames: int = 100,
    progress: bool = True,
    title: str = "",
) -> RolloutResult:
    """Play and record one episode of ``config`` (module docstring: files and ``agents``).

    Args:
        config: the env config (overrides already applied).
        logdir: a new or empty directory.
        agents: the ``--agents`` SPEC.
        seed: the env's reset seed; also seeds the agents and the draw of shares.
        frame_every, max_frames: network images every ``frame_every`` steps, at most
            ``max_frames`` (plus the last step).
        progress: a tqdm bar over the steps on stderr (shown on a terminal only).
        title: the summary figure's title.
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from training.tensorboard import record_rollout

    plan = parse_agents(agents, config, seed)
    out = _fresh_dir(Path(logdir))
    trace = EpisodeTrace()
    bar = tqdm(total=config.max_steps, desc="rollout", unit="step", disable=not progress or None)

    def on_step(env: RudraParallelEnv) -> None:
        if trace.records:  # a step (the first call follows the reset)
            bar.update(1)
        trace.observe(env)

    with SummaryWriter(log_dir=str(out / "tb")) as writer, bar:
        metrics = record_rollout(
            writer,
            config,
            plan.population,
            seed,
            frame_every=frame_every,
            max_frames=max_frames,
            on_step=on_step,
        )
    arrays = trace.arrays(plan.kinds)
    np.savez_compressed(out / "network.npz", **arrays)
    n_events = trace.write_events(out / "events.jsonl")
    episode_figure(arrays, title).savefig(out / "summary.png")
    (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    steps = int(arrays["step"][-1])
    run = {
        "env_id": RudraParallelEnv.metadata["name"],
        "seed": seed,
        "agents": agents,
        "bank_agents": {f"bank_{i}": kind for i, kind in enumerate(plan.kinds)},
        "steps": steps,
        "events": n_events,
        "metrics": metrics,
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return RolloutResult(out, steps, n_events, metrics, plan.kinds)
