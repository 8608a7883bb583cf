"""How long a tournament takes: ``rudra evaluate`` of ``configs/evaluate/tournament_small.yaml``.

    python benchmarks/evaluate_tournament.py              # the default tournament (30 seeds)
    python benchmarks/evaluate_tournament.py --seeds 10   # a third of it

Prints a Markdown table (seconds per population x scenario, of which the equilibrium gap; the
cross-play cells per scenario; the total) and writes
``benchmarks/results/evaluate_tournament.json``. Nothing is written to ``runs/`` (the result
files are not the point here); TensorBoard writing is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from training.evaluate import TournamentConfig, evaluate

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "evaluate" / "tournament_small.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "evaluate_tournament.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG), help="tournament YAML")
    parser.add_argument("--seeds", type=int, default=None, help="override seeds")
    parser.add_argument("--out", default=str(RESULTS), help="JSON output")
    args = parser.parse_args()
    tour = TournamentConfig.from_yaml(args.config)
    if args.seeds is not None:
        tour = tour.with_overrides({"seeds": args.seeds})
    result = evaluate(tour, progress=True)
    rows = []
    print("| scenario | N | T | population | seconds | of which gap | gap core calls |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for (pop, scen), cell in result.cells.items():
        env = result.env_configs[scen]
        rows.append(
            {
                "scenario": scen,
                "population": pop,
                "N": env.num_banks,
                "T": env.max_steps,
                "seconds": cell.seconds,
                "gap_seconds": cell.gap_seconds,
                "gap_core_calls": cell.gap_calls,
                "gap_worlds": cell.gap_worlds,
                "utility_mean": float(np.mean(cell.values["utility"])),
            }
        )
        print(
            f"| {scen} | {env.num_banks} | {env.max_steps} | {pop} | {cell.seconds:.1f} | "
            f"{cell.gap_seconds:.1f} | {cell.gap_calls} |"
        )
    for scen, seconds in result.cross_seconds.items():
        cells = len(tour.populations) ** 2
        print(f"| {scen} | | | cross-play ({cells} cells) | {seconds:.1f} | | |")
    print(f"\ntotal {result.seconds:.1f} s for {tour.seeds} seeds")
    data = {
        "benchmark": "evaluate_tournament",
        "config": str(Path(args.config).resolve().relative_to(ROOT)),
        "seeds": tour.seeds,
        "worlds_per_batch": tour.worlds_per_batch,
        "seconds_total": result.seconds,
        "cross_play_seconds": result.cross_seconds,
        "cells": rows,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "load_average": os.getloadavg(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
