"""Validated, frozen configuration of a training run (``rudra train CONFIG``).

Like ``rudra_env.config.EnvConfig`` (whose helpers it calls): frozen dataclasses with a
docstring per field, built from plain mappings (YAML, ``--set a.b=c``); an unknown key is an
error that suggests the closest allowed name, and a bad value names the field, the value and what
is allowed — before anything runs.

A train YAML (``configs/train/ppo_shared_small.yaml``)::

    env: ../env/small.yaml          # or {file: ..., overrides: {...}} or {config: {...}}
    algorithm: maskable_ppo
    hyperparameters: {n_steps: 64, batch_size: 256, net_arch: [64, 64]}
    learners: all                   # or [0, 3, "bank_5"] or 0.2 (a share of the banks)
    fixed_agent: heuristic          # acts for the banks that do not learn
    total_timesteps: 50000
    worlds: 8

One policy per bank group instead of one shared policy (``configs/train/ppo_groups.yaml``)::

    sharing: groups
    groups: {core: [0, 1, 2], periphery: [3, 4, 5, 6, 7, 8, 9]}

Ray RLlib instead of stable-baselines3 (``configs/train/rllib_ppo_shared.yaml``; the
``[distributed]`` extra; ``training.rllib``)::

    backend: rllib
    ray: {address: null, num_env_runners: 2, num_cpus: 3}   # address: a Ray cluster's

``TrainConfig.from_yaml(path)`` reads it (``yaml.safe_load``; ``env.file`` is resolved relative
to the YAML's folder); ``with_overrides({"a.b": value})`` applies CLI ``--set`` keys, where
``env.<key>`` is short for ``env.overrides.<key>`` (``--set env.num_banks=20``).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.registry import AGENT_KINDS
from rudra_env.config import (
    EnvConfig,
    YAMLConfigError,
    build,
    check,
    check_number,
    fail,
    missing_file,
    to_plain,
    unknown_key,
)
from rudra_env.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "BACKENDS",
    "DEVICES",
    "RLLIB_HYPERPARAMETERS",
    "FIXED_AGENTS",
    "SHARING",
    "EnvSpec",
    "RayOptions",
    "TrainConfig",
    "algorithm_class",
]

ALGORITHMS = ("maskable_ppo", "ppo", "a2c")
SHARING = ("shared", "groups")
FIXED_AGENTS = AGENT_KINDS  # the built-in policies, by name
DEVICES = ("cpu", "cuda", "auto")
BACKENDS = ("sb3", "rllib")
RLLIB_HYPERPARAMETERS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "clip_range",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "net_arch",
)
"""The hyperparameters ``backend: rllib`` understands: SB3's names, translated to RLlib's PPO
(``training.rllib.ppo_config``); ``net_arch`` is a list of widths (policy and value function
each get their own MLP of that shape)."""

# Constructor arguments that other fields set (field that sets it, for the error message).
_RESERVED = {
    "policy": "the vector env's spaces (always 'MlpPolicy')",
    "env": "env",
    "seed": "seed",
    "device": "device",
    "tensorboard_log": "run_dir (logs go to <run_dir>/tb)",
    "verbose": "the trainer",
    "_init_setup_model": "the trainer",
}
# Known numeric hyperparameters: (lo, hi, lo_open, integer).
_NUMERIC: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "learning_rate": (0.0, None, True, False),
    "n_steps": (1, None, False, True),
    "batch_size": (1, None, False, True),
    "n_epochs": (1, None, False, True),
    "gamma": (0.0, 1.0, False, False),
    "gae_lambda": (0.0, 1.0, False, False),
    "clip_range": (0.0, None, True, False),
    "ent_coef": (0.0, None, False, False),
    "vf_coef": (0.0, None, False, False),
    "max_grad_norm": (0.0, None, True, False),
    "stats_window_size": (1, None, False, True),
}
# Open mappings: ``with_overrides`` may add keys under them.
_OPEN = ("env.overrides", "env.config", "hyperparameters", "groups")


def algorithm_class(name: str) -> type:
    """The stable-baselines3 class of ``algorithm`` (imports torch)."""
    if name == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    if name == "ppo":
        from stable_baselines3 import PPO

        return PPO
    if name == "a2c":
        from stable_baselines3 import A2C

        return A2C
    fail("algorithm", name, f"one of {ALGORITHMS}")


@dataclass(frozen=True)
class EnvSpec:
    """Where the env's config comes from: a YAML file or an inline mapping, plus overrides.

    YAML forms: ``env: path.yaml`` (short for ``{file: path.yaml}``), ``env: {file: path.yaml,
    overrides: {num_banks: 20, topology.kind: ring}}``, ``env: {config: {num_banks: 10, ...}}``.
    """

    file: str | None = None
    """Env YAML path; a relative path is read from the train YAML's folder (from ``from_dict``:
    from ``base_dir``, by default the current directory). Stored absolute."""
    variant: str | None = None
    """One of the env YAML's ``variants`` (e.g. ``ring`` of ``ring_vs_complete.yaml``)."""
    config: dict[str, Any] | None = None
    """An inline env config (``EnvConfig`` keys) instead of ``file``; neither: the defaults."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Env keys applied on top (dotted keys allowed: ``topology.kind``)."""

    def env_config(self) -> EnvConfig:
        """The ``EnvConfig`` this spec names (raises ``ConfigError`` for a bad one)."""
        if self.file is not None:
            cfg = EnvConfig.from_yaml(self.file, self.variant)
        else:
            cfg = EnvConfig.from_dict(self.config)
        return cfg.with_overrides(self.overrides) if self.overrides else cfg

    def validate(self, where: str = "env") -> None:
        """Check the spec; messages name fields under ``where`` (``env.file``, or
        ``scenarios.small.file`` for a tournament's scenario)."""
        check(
            self.file is None or isinstance(self.file, str),
            f"{where}.file",
            self.file,
            "a YAML path",
        )
        if self.file is not None and self.config is not None:
            fail(
                where,
                {"file": self.file, "config": "..."},
                f"{where}.file or {where}.config, not both",
            )
        check(
            self.config is None or isinstance(self.config, Mapping),
            f"{where}.config",
            self.config,
            "a mapping of env config keys",
        )
        if self.variant is not None and self.file is None:
            fail(f"{where}.variant", self.variant, f"a variant only together with {where}.file")
        check(
            isinstance(self.overrides, Mapping),
            f"{where}.overrides",
            self.overrides,
            "a mapping {env.key: value}",
        )
        try:
            self.env_config()
        except ConfigError as exc:
            raise type(exc)(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class RayOptions:
    """Where ``backend: rllib`` runs: a Ray cluster or a local Ray instance."""

    address: str | None = None
    """A running cluster's address for ``ray.init(address=...)`` (``auto``, ``10.0.0.5:6379``
    or ``ray://head:10001``); None: start a local Ray instance with ``num_cpus``."""
    num_env_runners: int = 1
    """RLlib env runners (processes sampling in parallel, one CPU each); 0 samples in the
    driver."""
    num_cpus: int | None = None
    """CPUs of the local Ray instance (address None); None: ``num_env_runners + 1``."""

    def validate(self) -> None:
        check(
            self.address is None or (isinstance(self.address, str) and bool(self.address)),
            "ray.address",
            self.address,
            "null (a local Ray instance) or a cluster address such as 'auto' or 'head:6379'",
        )
        check_number("ray.num_env_runners", self.num_env_runners, 0, 1024, integer=True)
        if self.num_cpus is not None:
            check_number("ray.num_cpus", self.num_cpus, 1, integer=True)

    def local_cpus(self) -> int:
        """CPUs of a local instance: ``num_cpus``, or one per env runner plus the driver."""
        return self.num_cpus if self.num_cpus is not None else self.num_env_runners + 1


@dataclass(frozen=True)
class TrainConfig:
    """One training run: env, algorithm, who learns, budget, checkpoints and where it all goes."""

    env: EnvSpec = field(default_factory=EnvSpec)
    """The environment (see ``EnvSpec``)."""
    backend: str = "sb3"
    """sb3: stable-baselines3 on one machine (``training.train``); rllib: Ray RLlib's PPO
    (new API stack) with parallel env runners, locally or on a Ray cluster
    (``training.rllib``; the ``[distributed]`` extra). With rllib, ``algorithm`` is ppo or
    maskable_ppo (both: PPO whose module masks illegal actions), ``hyperparameters`` takes
    the names of ``RLLIB_HYPERPARAMETERS``, and ``device``, ``eval_every`` and
    ``compare_against`` are not used."""
    ray: RayOptions = field(default_factory=RayOptions)
    """backend = rllib: the Ray cluster or local instance and the env runners (``RayOptions``)."""
    name: str = ""
    """Run name, used in the default ``run_dir``; empty: the train YAML's file stem (``train``
    for a config built from a mapping)."""
    algorithm: str = "maskable_ppo"
    """maskable_ppo (sb3-contrib's MaskablePPO: never samples a masked action), ppo or a2c
    (stable-baselines3; masked actions sampled and executed as HOLD)."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the algorithm's constructor (``learning_rate``, ``n_steps`` — steps
    per slot per rollout, so a rollout is ``n_steps * worlds * learners`` timesteps —
    ``batch_size``, ``gamma``, ``ent_coef``, ``policy_kwargs``...), plus ``net_arch`` as short
    for ``policy_kwargs: {net_arch: ...}``. Names are checked against the constructor."""
    sharing: str = "shared"
    """shared: one policy for every learning bank (parameter sharing); groups: one policy (one
    model of ``algorithm``) per bank group of ``groups``, trained in lock-step on the same
    worlds (``training.lockstep``)."""
    groups: dict[str, Any] = field(default_factory=dict)
    """sharing = groups: ``{group name: [banks]}`` (indices or ``bank_i`` names); every learner
    in exactly one group. Names are letters, digits, ``_`` and ``-`` (they name files and
    TensorBoard runs). Every group uses ``hyperparameters``; group k's model gets seed
    ``seed + k``."""
    learners: Any = "all"
    """The banks that learn: ``all``, a list of banks (indices or ``bank_i``), or a share in
    (0, 1] — ``max(1, round(share * N))`` banks drawn without replacement with
    ``default_rng(seed)`` (the same banks for the same seed)."""
    fixed_agent: str = "heuristic"
    """The ``agents`` policy of the banks that do not learn: random, heuristic, equilibrium or
    hold (ignored when every bank learns)."""
    total_timesteps: int | None = 100_000
    """Training length in timesteps (one timestep = one learning bank's step in one world); SB3
    rounds up to whole rollouts. None: only ``time_budget_s`` ends the run."""
    time_budget_s: float | None = None
    """Wall-clock budget of training in seconds, summed over resumed segments (time since the
    last checkpoint of a killed segment is not counted); None: no budget."""
    worlds: int = 8
    """B: parallel worlds of the batched core; the vector env has B * learners slots."""
    seed: int = 0
    """Seed of everything: world i draws from ``default_rng(seed + i)``; SB3 and torch get
    ``seed``; the fixed agent gets ``seed``."""
    device: str = "auto"
    """Torch device: cpu, cuda (an error without a visible GPU) or auto (cuda when visible)."""
    checkpoint_every: int = 10_000
    """Checkpoint interval in timesteps (written at the first rollout boundary past each
    multiple); a killed run loses at most this much, plus one rollout."""
    keep_checkpoints: int = 2
    """How many of the latest checkpoints to keep, >= 1."""
    eval_every: int | None = None
    """Evaluation interval in timesteps for evaluation callbacks attached through
    ``training.train.extra_callbacks``; None: no evaluation. The trainer itself runs none yet."""
    progress_bar: bool = True
    """Show a tqdm progress bar (ETA, mean episode reward per bank) on stderr."""
    hold_bias: float = 0.0
    """Added to the fresh policy's HOLD logit: the untrained policy starts near "do nothing"
    (e.g. 3.0: HOLD e^3 = 20 times as likely as any other legal action) instead of uniform over
    the legal actions, whose play is itself a crisis (frequent calls and fire sales)."""
    team_reward: float = 0.0
    """w in [0, 1]: each learner is trained on ``(1 - w) * its utility + w * the mean utility of
    its world's banks`` that step (0: selfish, the env's own reward; 1: a team reward). What is
    reported (episode returns, evaluation) is always the env's own utility."""
    compare_against: list[str] = field(default_factory=list)
    """At the end of a finished run, play the trained policy and each of these baselines
    (random, heuristic, equilibrium, hold) in the learners' seats on ``compare_worlds`` common
    evaluation worlds and write ``comparison.md``/``.csv`` (``training.compare``); empty: none."""
    compare_worlds: int = 30
    """Evaluation worlds of the end-of-run comparison (>= 2)."""
    run_dir: str | None = None
    """Output folder; None: ``runs/<name>-<YYYYmmdd-HHMMSS>`` under the current directory."""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        self.env.validate()
        n = self.env_config().num_banks
        check(isinstance(self.name, str), "name", self.name, "a string")
        check(self.algorithm in ALGORITHMS, "algorithm", self.algorithm, f"one of {ALGORITHMS}")
        check(self.backend in BACKENDS, "backend", self.backend, f"one of {BACKENDS}")
        self.ray.validate()
        if self.backend == "rllib":
            check(
                self.algorithm in ("ppo", "maskable_ppo"),
                "algorithm",
                self.algorithm,
                "ppo or maskable_ppo with backend = 'rllib' (RLlib's PPO, actions masked)",
            )
            check(
                not self.compare_against,
                "compare_against",
                self.compare_against,
                "[] with backend = 'rllib' (compare the exported final_model.pt with "
                "rudra evaluate)",
            )
        self._validate_hyperparameters()
        check(self.sharing in SHARING, "sharing", self.sharing, f"one of {SHARING}")
        learners = self.learner_indices(n)
        self._validate_groups(n, learners)
        check(
            self.fixed_agent in FIXED_AGENTS,
            "fixed_agent",
            self.fixed_agent,
            f"one of {FIXED_AGENTS}",
        )
        if self.total_timesteps is None and self.time_budget_s is None:
            fail("total_timesteps", None, "an integer >= 1 when time_budget_s is None")
        if self.total_timesteps is not None:
            check_number("total_timesteps", self.total_timesteps, 1, integer=True)
        if self.time_budget_s is not None:
            check_number("time_budget_s", self.time_budget_s, 0.0, lo_open=True)
        check_number("worlds", self.worlds, 1, 1_000_000, integer=True)
        check_number("seed", self.seed, 0, 2**32 - 1 - self.worlds, integer=True)
        check(self.device in DEVICES, "device", self.device, f"one of {DEVICES}")
        if self.device == "cuda":
            import torch

            check(
                torch.cuda.is_available(),
                "device",
                self.device,
                "'cpu' or 'auto': torch sees no CUDA GPU on this machine "
                "(torch.cuda.is_available() is False)",
            )
        check_number("checkpoint_every", self.checkpoint_every, 1, integer=True)
        check_number("keep_checkpoints", self.keep_checkpoints, 1, integer=True)
        if self.eval_every is not None:
            check_number("eval_every", self.eval_every, 1, integer=True)
        check(isinstance(self.progress_bar, bool), "progress_bar", self.progress_bar, "a bool")
        check(
            isinstance(self.compare_against, list)
            and all(a in FIXED_AGENTS for a in self.compare_against),
            "compare_against",
            self.compare_against,
            f"a list of baselines from {FIXED_AGENTS}",
        )
        check_number("compare_worlds", self.compare_worlds, 2, integer=True)
        check_number("team_reward", self.team_reward, 0.0, 1.0)
        check_number("hold_bias", self.hold_bias, -20.0, 20.0)
        check(
            self.run_dir is None or isinstance(self.run_dir, str),
            "run_dir",
            self.run_dir,
            "a folder path or null",
        )

    def _validate_hyperparameters(self) -> None:
        hp = self.hyperparameters
        check(isinstance(hp, Mapping), "hyperparameters", hp, "a mapping {name: value}")
        if self.backend == "rllib":
            allowed = list(RLLIB_HYPERPARAMETERS)
        else:
            params = inspect.signature(algorithm_class(self.algorithm).__init__).parameters
            allowed = [p for p in params if p not in ("self", *_RESERVED)] + ["net_arch"]
        for key, value in hp.items():
            path = f"hyperparameters.{key}"
            if key in _RESERVED:
                fail(path, value, f"no value here: it is set by {_RESERVED[key]}")
            if key not in allowed:
                unknown_key(path, key, allowed)
            if key in _NUMERIC:
                lo, hi, lo_open, integer = _NUMERIC[key]
                if integer and isinstance(value, float) and value.is_integer():
                    value = int(value)
                check_number(path, value, lo, hi, lo_open=lo_open, integer=integer)
        check(
            isinstance(hp.get("policy_kwargs", {}), Mapping),
            "hyperparameters.policy_kwargs",
            hp.get("policy_kwargs"),
            "a mapping of policy keyword arguments",
        )
        if "net_arch" in hp:
            arch = hp["net_arch"]
            ok_list = isinstance(arch, Sequence) and not isinstance(arch, str)
            ok_list = ok_list and all(_positive_int(u) for u in arch)
            ok_map = isinstance(arch, Mapping) and set(arch) <= {"pi", "vf"}
            if ok_map:
                ok_map = all(
                    isinstance(v, Sequence) and all(_positive_int(u) for u in v)
                    for v in arch.values()
                )
            check(
                ok_list or ok_map,
                "hyperparameters.net_arch",
                arch,
                "a list of layer widths (e.g. [64, 64]) or {pi: [...], vf: [...]}",
            )
            if "net_arch" in hp.get("policy_kwargs", {}):
                fail(
                    "hyperparameters.net_arch",
                    arch,
                    "net_arch or policy_kwargs.net_arch, not both",
                )

    def _validate_groups(self, n: int, learners: np.ndarray) -> None:
        check(isinstance(self.groups, Mapping), "groups", self.groups, "a mapping {name: banks}")
        if self.sharing == "shared":
            check(not self.groups, "groups", self.groups, "no groups when sharing = 'shared'")
            return
        check(bool(self.groups), "groups", self.groups, "at least one group {name: [banks]}")
        owner: dict[int, str] = {}
        for name, banks in self.groups.items():
            path = f"groups.{name}"
            check(
                isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-]+", name) is not None,
                "groups",
                name,
                "group names of letters, digits, '_' and '-' (e.g. core, periphery)",
            )
            check(
                isinstance(banks, Sequence) and not isinstance(banks, str) and len(banks) > 0,
                path,
                banks,
                "a non-empty list of banks",
            )
            for k, b in enumerate(banks):
                i = _bank_index(b, n, f"{path}[{k}]")
                if i in owner:
                    fail(f"{path}[{k}]", b, f"a bank in no other group (it is in {owner[i]!r})")
                check(i in learners, f"{path}[{k}]", b, "a learning bank (see learners)")
                owner[i] = str(name)
        missing = sorted(set(learners.tolist()) - set(owner))
        check(not missing, "groups", missing, "every learning bank in a group; these are not")

    # ------------------------------------------------------------------ derived values
    def env_config(self) -> EnvConfig:
        """The resolved ``EnvConfig``."""
        return self.env.env_config()

    def reached(self, timesteps: int, spent_s: float) -> bool:
        """A run that trained ``timesteps`` in ``spent_s`` seconds is done: it reached
        ``total_timesteps`` or spent ``time_budget_s``."""
        total, budget = self.total_timesteps, self.time_budget_s
        return (total is not None and timesteps >= total) or (
            budget is not None and spent_s >= budget
        )

    def learner_indices(self, n: int) -> np.ndarray:
        """(L,) sorted int64 indices of the learning banks among ``n`` banks."""
        x = self.learners
        if x == "all":
            return np.arange(n, dtype=np.int64)
        if isinstance(x, float) and not isinstance(x, bool):
            check_number("learners", x, 0.0, 1.0, lo_open=True)
            k = max(1, round(x * n))
            return np.sort(np.random.default_rng(self.seed).choice(n, k, replace=False))
        if isinstance(x, Sequence) and not isinstance(x, str):
            check(len(x) > 0, "learners", x, "at least one learning bank")
            out = [_bank_index(b, n, f"learners[{k}]") for k, b in enumerate(x)]
            check(len(set(out)) == len(out), "learners", list(x), "each bank at most once")
            return np.array(sorted(out), dtype=np.int64)
        fail("learners", x, "'all', a list of banks (indices or 'bank_i'), or a share in (0, 1]")

    def sb3_kwargs(self) -> dict[str, Any]:
        """The algorithm's constructor keywords from ``hyperparameters`` (``net_arch`` moved
        into ``policy_kwargs``; YAML lists of ``net_arch`` become Python lists)."""
        kwargs = dict(self.hyperparameters)
        if "net_arch" in kwargs:
            arch = kwargs.pop("net_arch")
            arch = (
                {k: list(v) for k, v in arch.items()} if isinstance(arch, Mapping) else list(arch)
            )
            kwargs["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), "net_arch": arch}
        return kwargs

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, base_dir: str | Path | None = None
    ) -> TrainConfig:
        """Build from a plain mapping; a relative ``env.file`` is read from ``base_dir``
        (default: the current directory). Raises ``ConfigError``."""
        data = dict(data or {})
        if "env" in data:
            data["env"] = _env_mapping(data["env"], Path(base_dir or Path.cwd()))
        return build(cls, data, "")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Load a train YAML (``yaml.safe_load``); ``env.file`` is relative to its folder and
        ``name`` defaults to its stem."""
        return from_yaml_file(cls, path)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that ``from_dict`` turns back into an equal config."""
        return to_plain(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """A copy with dotted keys set (``hyperparameters.n_steps``, ``env.overrides.num_banks``
        or short ``env.num_banks``). Keys under ``hyperparameters``, ``groups``, ``env.config``
        and ``env.overrides`` may be new; elsewhere an unknown key suggests the closest."""
        data = copy.deepcopy(self.to_dict())
        env_fields = [f.name for f in dataclasses.fields(EnvSpec)]
        for key, value in overrides.items():
            parts = str(key).split(".")
            if parts[0] == "env" and len(parts) > 1 and parts[1] not in env_fields:
                parts = ["env", "overrides", ".".join(parts[1:])]
            _set_key(data, parts, value)
        return TrainConfig.from_dict(data)

    def resolved(self, run_dir: str | Path) -> TrainConfig:
        """The config of an actual run: env inlined (its full config; no file needed to
        resume), ``name`` filled in, ``run_dir`` set (absolute)."""
        name = self.name or "train"
        env = EnvSpec(config=self.env_config().to_dict())
        return dataclasses.replace(self, env=env, name=name, run_dir=str(Path(run_dir).resolve()))

    @staticmethod
    def resumed_run_dir(resume: str | Path) -> Path:
        """The run directory ``--resume`` names, refused unless ``rudra train`` wrote it."""
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(
                f"resume = {str(run_dir)!r} is not allowed: expected a run directory (one "
                f"with a config.yaml written by rudra train)"
            )
        return run_dir

    def new_run_dir(self) -> Path:
        """The run directory of a fresh run (``default_run_dir`` with the time now), refused
        when it already holds files (a run to ``--resume`` instead)."""
        run_dir = self.default_run_dir(time.strftime("%Y%m%d-%H%M%S"))
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(
                f"run_dir = {str(run_dir)!r} is not allowed: expected a new or empty folder "
                f"(continue that run with --resume {run_dir})"
            )
        return run_dir

    def default_run_dir(self, stamp: str) -> Path:
        """``run_dir``, or ``runs/<name>-<stamp>``."""
        if self.run_dir is not None:
            return Path(self.run_dir)
        return Path("runs") / f"{self.name or 'train'}-{stamp}"


# --------------------------------------------------------------------------- helpers
def from_yaml_file(cls: Any, path: str | Path) -> Any:
    """``cls.from_dict`` of a YAML file (``load_yaml_mapping``): paths in it are relative to its
    folder, and ``name`` defaults to the file's stem."""
    p = Path(path)
    data = load_yaml_mapping(p)
    data.setdefault("name", p.stem)
    return cls.from_dict(data, base_dir=p.resolve().parent)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a config YAML (``yaml.safe_load``); ``ConfigError`` naming the
    file (and the line, for a YAML error) otherwise."""
    if not path.is_file():
        missing_file(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).replace("\n", " ")
        raise YAMLConfigError(f"config file {str(path)!r}{where}: YAML error: {problem}") from exc
    if not isinstance(data, Mapping):
        fail(str(path), type(data).__name__, "a YAML mapping at the top level")
    return dict(data)


def _positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _bank_index(x: Any, n: int, path: str) -> int:
    """A bank index from an index or a ``bank_i`` name."""
    idx: Any = x
    if isinstance(x, str) and x.startswith("bank_") and x[5:].isdigit():
        idx = int(x[5:])
    ok = isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < n
    check(ok, path, x, f"a bank: an index in [0, {n - 1}] or a name like 'bank_3'")
    return int(idx)


def _env_mapping(raw: Any, base_dir: Path) -> Any:
    """``env`` as a mapping of ``EnvSpec`` fields, ``file`` made absolute from ``base_dir``."""
    if isinstance(raw, str):
        raw = {"file": raw}
    if not isinstance(raw, Mapping):
        return raw  # build names the field and what is allowed
    raw = dict(raw)
    if isinstance(raw.get("file"), str):
        raw["file"] = str((base_dir / raw["file"]).resolve())
    return raw


def _set_key(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``data[parts[0]][parts[1]]... = value``; under an open mapping (``_OPEN``) the rest
    of the key is one new or existing key."""
    node: Any = data
    for k, part in enumerate(parts):
        here = ".".join(parts[: k + 1])
        if here in _OPEN:
            if node.get(part) is None:
                node[part] = {}
            rest = ".".join(parts[k + 1 :])
            if not rest:
                node[part] = value
            else:
                node[part][rest] = value
            return
        if part not in node:
            unknown_key(here, part, list(node))
        if k == len(parts) - 1:
            node[part] = value
            return
        if not isinstance(node[part], dict):
            fail(here, node[part], "a section (mapping) to set a key in")
        node = node[part]
