"""The ``rudra`` command (``python -m training`` too): ``rudra train CONFIG [--set a.b=c ...]``,
``rudra train --resume RUN_DIR``, ``rudra evaluate CONFIG [--set ...]`` (a tournament of
populations on common worlds, ``training.evaluate``), ``rudra rollout CONFIG --agents SPEC
--logdir DIR`` (one recorded episode, ``training.rollout``) and ``rudra analyze CONFIG`` or
``rudra analyze --network DIR --step K`` (network analysis, ``rudra_env.analysis``).

Subcommands are argparse subparsers; each has a ``_run_<name>(args) -> int`` function. Exit
status: 0 when the run is complete, 2 for a bad config or command line (the message names the
field), 128 + the signal number (130, 143) when SIGINT or SIGTERM stopped a run after its
final checkpoint.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rudra_env.errors import ConfigError, InputError

__all__ = ["main", "parse_sets"]


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=c", ...]`` -> ``{"a.b": yaml.safe_load("c")}`` (so ``3`` is an int, ``[64, 64]``
    a list, ``null`` None, ``ring`` a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not allowed: expected KEY=VALUE, e.g. seed=3")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML: {exc}") from exc
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rudra", description="RUDRA: train bank policies on the interbank network env."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "train",
        help="train policies from a train YAML (configs/train/)",
        description="Train from a train YAML, or continue a run with --resume RUN_DIR.",
    )
    p.add_argument("config", nargs="?", metavar="CONFIG", help="train YAML (configs/train/...)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted; VALUE read as YAML), e.g. --set worlds=4 "
        "--set env.num_banks=20 --set hyperparameters.n_steps=32; repeatable",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint (to the same total)",
    )
    p.set_defaults(run=_run_train)
    _evaluate_parser(commands)
    _rollout_parser(commands)
    _analyze_parser(commands)
    _exploit_parser(commands)
    return parser


def _add_env_arguments(p: argparse.ArgumentParser, config_required: bool = True) -> None:
    """CONFIG (an env YAML), --variant, --seed and --set, shared by rollout and analyze."""
    p.add_argument(
        "config",
        nargs=None if config_required else "?",
        metavar="CONFIG",
        help="env YAML (configs/env/...)",
    )
    p.add_argument("--variant", help="one of the YAML's variants (default: its first)")
    p.add_argument("--seed", type=int, default=0, help="the env's reset seed (default 0)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an env key (dotted; VALUE read as YAML), e.g. --set num_banks=20 "
        "--set topology.kind=ring; repeatable",
    )


def _run_train(args: argparse.Namespace) -> int:
    from training.config import TrainConfig
    from training.train import train

    sets = parse_sets(args.sets)
    if args.resume is not None:
        if args.config is not None:
            raise ConfigError(
                f"CONFIG = {args.config!r} is not allowed with --resume: the run's own config "
                "is used (change it with --set)"
            )
        config = None
        if sets:
            from training.train import run_config

            config = run_config(args.resume).with_overrides(sets)
        result = train(config, resume=args.resume)
    else:
        if args.config is None:
            raise ConfigError("rudra train needs CONFIG (a train YAML) or --resume RUN_DIR")
        config = TrainConfig.from_yaml(args.config)
        if sets:
            config = config.with_overrides(sets)
        result = train(config)
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        print(
            f"stopped by {result.stopped_by} at {result.timesteps} timesteps; checkpoint "
            f"{result.checkpoint}\ncontinue with: rudra train --resume {result.run_dir}"
        )
        return 128 + int(signal.Signals[result.stopped_by])
    if result.final_model is not None or not result.final_models:
        finals = f"final model: {result.final_model}"
    else:  # one model per bank group
        finals = "\n".join(f"final model ({g}): {p}" for g, p in result.final_models.items())
    share = "" if result.env_time_share is None else f" (env: {result.env_time_share:.0%})"
    print(
        f"done: {result.timesteps} timesteps in {result.elapsed_s:.1f} s{share}"
        + (" (time budget spent)" if result.stopped_by == "time budget" else "")
        + f"\n{finals}"
    )
    if result.comparison is not None:
        print("\n" + result.comparison.markdown())
        print(f"(also in {result.run_dir / 'comparison.md'} and comparison.csv)")
    print(
        f"\nTensorBoard: tensorboard --logdir {result.run_dir / 'tb'}  (then open "
        "http://127.0.0.1:6006; add --samples_per_plugin images=100 to keep every network frame)"
    )
    return 0


# ---------------------------------------------------------------------------- evaluate
def _evaluate_parser(commands: Any) -> None:
    p = commands.add_parser(
        "evaluate",
        help="a tournament: populations x scenarios on common worlds, cross-play, TensorBoard",
        description="Play every population of a tournament YAML (configs/evaluate/) on every "
        "scenario over the same Monte Carlo worlds and write results.md, results.csv, "
        "cross_play.md, cross_play.csv, per_world.csv, config.yaml and tb/ to the output "
        "directory.",
    )
    p.add_argument("config", metavar="CONFIG", help="tournament YAML (configs/evaluate/...)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key (dotted; VALUE read as YAML), e.g. --set seeds=10 --set "
        "overrides.max_steps=20 --set populations.mixed=equilibrium:0.2,random "
        "--set checkpoints.trained=runs/x/final_model.zip; repeatable",
    )
    p.add_argument(
        "--out", metavar="DIR", help="a new or empty directory (default: out_dir, else runs/)"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="play the cells' batches as Ray tasks: on a local Ray instance (no ADDRESS) or on "
        "the cluster at ADDRESS (auto, head:6379, ray://head:10001); the same numbers as "
        "without --ray. Needs the [distributed] extra",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table printed")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import TournamentConfig, evaluate, summary

    config = TournamentConfig.from_yaml(args.config)
    sets = parse_sets(args.sets)
    if sets:
        config = config.with_overrides(sets)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or config.out_dir or f"runs/evaluate-{config.name}-{stamp}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        flag = "--out" if args.out else "out_dir"
        raise ConfigError(
            f"{flag} = {str(out)!r} is not allowed: it exists and is not an empty directory "
            "(a tournament does not mix its files with another run's): choose a new one"
        )
    result = evaluate(config, progress=False if args.quiet else None, ray=args.ray)
    result.write(out)
    text = summary(result)
    print(text if not args.quiet else text.splitlines()[-1])
    print(
        f"files: {out}/{{results.md, results.csv, cross_play.md, cross_play.csv, "
        f"per_world.csv, config.yaml}}"
        + (f"\nTensorBoard: tensorboard --logdir {out / 'tb'}" if config.tensorboard else "")
    )
    return 0


# ---------------------------------------------------------------------------- rollout, analyze
def _env_config(args: argparse.Namespace) -> Any:
    """The env config of CONFIG (its --variant) with the --set overrides, checked."""
    from rudra_env.config import EnvConfig

    config = EnvConfig.from_yaml(args.config, variant=args.variant)
    sets = parse_sets(args.sets)
    return config.with_overrides(sets) if sets else config


def _seed(value: int) -> int:
    if value < 0:
        raise ConfigError(f"--seed {value} is not allowed: expected an integer >= 0")
    return value


def _run_name(args: argparse.Namespace) -> str:
    """``<config stem>[-<variant>]``, for default output directories and titles."""
    stem = Path(args.config).stem
    return f"{stem}-{args.variant}" if args.variant else stem


def _rollout_parser(commands: Any) -> None:
    p = commands.add_parser(
        "rollout",
        help="record one episode (events, network, TensorBoard, summary figure)",
        description="Play one episode of an env YAML and record it: events.jsonl, network.npz "
        "(every step), summary.png, config.yaml, run.json and TensorBoard logs under tb/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="--agents SPEC: comma-separated entries KIND (every other bank), KIND:SHARE (a "
        "share of the banks, drawn from the seed) or BANK=KIND (bank_3=... or 3=...); KIND is "
        "hold, random, heuristic, equilibrium or a checkpoint file (.zip, .pt, .pth).\n"
        "e.g. --agents heuristic | equilibrium:0.8,random:0.2 | bank_0=runs/x/final_model.zip,"
        "heuristic",
    )
    _add_env_arguments(p)
    p.add_argument("--agents", default="heuristic", metavar="SPEC", help="who plays which bank")
    p.add_argument(
        "--logdir", metavar="DIR", help="a new directory (default runs/rollout-<config>-<time>)"
    )
    p.add_argument("--frame-every", type=int, default=1, help="draw the network every K steps")
    p.add_argument("--max-frames", type=int, default=100, help="network images at most")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_rollout)


def _run_rollout(args: argparse.Namespace) -> int:
    from training.rollout import rollout

    config = _env_config(args)
    seed = _seed(args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = Path(args.logdir or f"runs/rollout-{_run_name(args)}-{stamp}")
    result = rollout(
        config,
        logdir,
        args.agents,
        seed,
        frame_every=args.frame_every,
        max_frames=args.max_frames,
        progress=not args.quiet,
        title=f"{_run_name(args)}, seed {seed}, agents {args.agents}",
    )
    m = result.metrics
    print(
        f"recorded {result.steps} steps, {result.events} events: {int(m['alive'])}/"
        f"{config.num_banks} banks alive, total equity {m['total_equity']:.2f}, mean return "
        f"{m['mean_return']:.3f}\nfiles: {logdir}/{{events.jsonl, network.npz, summary.png, "
        f"run.json, config.yaml}}\nTensorBoard: tensorboard --logdir {logdir} "
        f"--samples_per_plugin images=100\nanalyze a step: rudra analyze --network {logdir} "
        "--step K"
    )
    return 0


def _analyze_parser(commands: Any) -> None:
    p = commands.add_parser(
        "analyze",
        help="network analysis: centralities, DebtRank ranking, contagion paths, bottlenecks",
        description="Analyse the initial network of an env YAML (drawn with --seed, as "
        "rollout's reset) or a recorded one (--network DIR --step K): analysis.md, "
        "analysis.json and analysis.png in --out.",
    )
    _add_env_arguments(p, config_required=False)
    p.add_argument("--network", metavar="PATH", help="a rollout directory or its network.npz")
    p.add_argument("--step", type=int, default=None, help="recorded step (default -1: the last)")
    p.add_argument("--out", metavar="DIR", help="output directory (default under runs/ or PATH)")
    p.add_argument("--top", type=int, default=20, help="banks in the Markdown table")
    p.add_argument(
        "--threshold", type=float, default=0.1, help="least probability of a contagion path"
    )
    p.add_argument("--paths-from", type=int, default=3, help="paths from the K most systemic")
    p.add_argument("--no-bottlenecks", action="store_true", help="skip the bottleneck scores")
    p.add_argument(
        "--bottleneck-top",
        type=int,
        default=None,
        metavar="K",
        help="remove only the K banks of highest betweenness (default: every bank)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table printed")
    p.set_defaults(run=_run_analyze)


def _analysis_input(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """The arrays to analyse (``loans``, ``equity``, ``assets``, ``alive``), where they come from
    (``source``, a title, with the recorded step, or the seed and the resolved config) and the
    default output directory."""
    if args.network is not None:
        from training.rollout import read_network

        if args.config is not None or args.sets or args.variant:
            raise ConfigError(
                "CONFIG, --variant and --set are not allowed with --network: the recording "
                "holds its network (its config.yaml is beside it)"
            )
        rec = read_network(args.network, -1 if args.step is None else args.step)
        arrays = {"loans": rec.loans, "equity": rec.equity, "assets": rec.assets}
        arrays["alive"] = rec.alive
        source = {"source": f"{rec.source} step {rec.step}", "step": rec.step}
        return arrays, source, rec.source.parent / f"analysis_step{rec.step}"
    if args.config is None:
        raise ConfigError("rudra analyze needs CONFIG (an env YAML) or --network PATH")
    if args.step is not None:
        raise ConfigError("--step is only allowed with --network (CONFIG gives step 0)")
    import numpy as np

    from rudra_env.core import balance_sheet, initial_state

    seed, config = _seed(args.seed), _env_config(args)
    state = initial_state(config, np.random.default_rng(seed))  # as the env's reset(seed)
    bs = balance_sheet(state)
    arrays = {"loans": state.loans[0], "equity": bs["equity"][0], "assets": bs["assets"][0]}
    arrays["alive"] = state.alive[0]
    source = {"source": f"{_run_name(args)}, seed {seed}, step 0", "seed": seed, "step": 0}
    source["config"] = config.to_dict()
    return arrays, source, Path("runs") / f"analyze-{_run_name(args)}-seed{seed}"


def _run_analyze(args: argparse.Namespace) -> int:
    import json
    from functools import partial

    from tqdm import tqdm

    from rudra_env.analysis import analysis_markdown, analyze_network
    from rudra_env.render import draw_analysis

    arrays, source, default_out = _analysis_input(args)
    title = source["source"]
    for name in ("top", "paths_from", "bottleneck_top"):
        value = getattr(args, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} {value} is not allowed: expected an integer >= 1")
    bar = partial(tqdm, desc="bottlenecks", unit="bank", disable=args.quiet or None)
    result = analyze_network(
        **arrays,
        threshold=args.threshold,
        paths_from=args.paths_from,
        with_bottlenecks=not args.no_bottlenecks,
        bottleneck_top=args.bottleneck_top,
        progress=bar,
    )
    out = Path(args.out) if args.out else default_out
    out.mkdir(parents=True, exist_ok=True)
    text = analysis_markdown(result, title, top=args.top)
    (out / "analysis.md").write_text(text)
    data = {**source, **result.to_dict()}
    (out / "analysis.json").write_text(json.dumps(data, indent=2) + "\n")
    draw_analysis(result, title).savefig(out / "analysis.png")
    if not args.quiet:
        print(text)
    print(f"wrote {out}/analysis.md, analysis.json, analysis.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, InputError) as exc:
        print(f"rudra {args.command}: error: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------- exploit
def _exploit_parser(commands: Any) -> None:
    p = commands.add_parser(
        "exploit",
        help="learned exploitability: train best responses of sampled banks to a population",
        description="Freeze the population of --agents, train a best response for each of "
        "--banks sampled banks (or the --bank given) and report each one's gain over its "
        "population policy on common evaluation worlds: exploitability.md and .csv in --out.",
    )
    _add_env_arguments(p)
    p.add_argument(
        "--agents",
        required=True,
        metavar="SPEC",
        help="the population, as for rollout: e.g. equilibrium, heuristic:0.5,random, or a "
        "trained model zip",
    )
    p.add_argument("--banks", type=int, default=3, help="banks to sample (default 3)")
    p.add_argument(
        "--bank", type=int, action="append", default=None, help="a bank to test (repeatable)"
    )
    p.add_argument("--timesteps", type=int, default=50_000, help="training per best response")
    p.add_argument("--worlds", type=int, default=8, help="parallel training worlds")
    p.add_argument("--eval-worlds", type=int, default=30, help="evaluation worlds (default 30)")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/exploit-...)")
    p.set_defaults(run=_run_exploit)


def _run_exploit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from training.exploit import exploitability
    from training.rollout import parse_agents

    config = _env_config(args)
    seed = _seed(args.seed)
    population = parse_agents(args.agents, config, seed).population
    banks = args.bank if args.bank else args.banks
    total = len(banks) if isinstance(banks, list) else banks
    out = Path(args.out) if args.out else Path("runs") / f"exploit-{_run_name(args)}-seed{seed}"
    with tqdm(total=total, unit="bank", file=sys.stderr) as bar:
        result = exploitability(
            config,
            population,
            banks=banks,
            timesteps=args.timesteps,
            worlds=args.worlds,
            eval_worlds=args.eval_worlds,
            seed=seed,
            progress=lambda done, _total, bank: bar.update(1),
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "exploitability.md").write_text(result.markdown(), encoding="utf-8")
    (out / "exploitability.csv").write_text(result.csv(), encoding="utf-8")
    print(result.markdown())
    print(f"written: {out / 'exploitability.md'}, {out / 'exploitability.csv'}")
    return 0
