"""The ``rudra`` command (``python -m training`` too): ``rudra train CONFIG [--set a.b=c ...]``
and ``rudra train --resume RUN_DIR``.

Subcommands are argparse subparsers; each has a ``_run_<name>(args) -> int`` function. Exit
status: 0 when the run is complete, 2 for a bad config or command line (the message names the
field), 128 + the signal number (130, 143) when SIGINT or SIGTERM stopped a run after its
final checkpoint.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from rudra_env.errors import ConfigError

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
    return parser


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
    print(
        f"done: {result.timesteps} timesteps in {result.elapsed_s:.1f} s"
        + (" (time budget spent)" if result.stopped_by == "time budget" else "")
        + f"\n{finals}\nTensorBoard: tensorboard --logdir {result.run_dir / 'tb'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"rudra {args.command}: error: {exc}", file=sys.stderr)
        return 2
