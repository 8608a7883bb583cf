"""How each env preset plays out under simple populations: does play decide the outcome?

    python benchmarks/scenario_outcomes.py                  # every preset, 30 worlds each
    python benchmarks/scenario_outcomes.py --worlds 60 --config configs/env/market_crash.yaml

For every YAML in ``configs/env`` (each variant), three populations play whole episodes in the
batched core (``agents.run_episodes``), on the same worlds and the same random draws (common
random numbers):

* ``hold``: every bank HOLDs (``agents.HoldAgent``);
* ``random``: uniform over legal actions (``agents.RandomAgent``);
* ``heuristic``: the target-leverage rule (``agents.HeuristicAgent``).

Per population: the share of banks that defaulted by the end, and the mean per-bank episode
utility (sum of rewards), each as the mean over worlds with a 95% interval (t quantile).
Prints a Markdown table and writes ``benchmarks/results/scenario_outcomes.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import HeuristicAgent, HoldAgent, RandomAgent, run_episodes  # noqa: E402
from agents.stats import mean_interval  # noqa: E402
from rudra_env.config import load_variants  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scenario_outcomes.json"
POPULATIONS = {
    "hold": HoldAgent,
    "random": lambda: RandomAgent(seed=0),
    "heuristic": HeuristicAgent,
}


def interval(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval (``agents.stats.mean_interval``)."""
    iv = mean_interval(x)
    return iv.mean, iv.half


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=30, help="worlds (seeds) per preset")
    ap.add_argument("--config", action="append", help="only these YAMLs (repeatable)")
    args = ap.parse_args()
    paths = (
        [Path(c) for c in args.config]
        if args.config
        else sorted((ROOT / "configs" / "env").glob("*.yaml"))
    )
    rows = []
    print("| preset | population | default rate (95% CI) | mean utility per bank (95% CI) |")
    print("|---|---|---|---|")
    for path in paths:
        for name, cfg in load_variants(path).items():
            label = path.stem if name == "default" else f"{path.stem}:{name}"
            for pop, factory in POPULATIONS.items():
                res = run_episodes(cfg, factory(), args.worlds)
                d, dci = interval(res.default_rate)
                u, uci = interval(res.utility)
                rows.append(
                    {
                        "preset": label,
                        "population": pop,
                        "default_rate": d,
                        "default_rate_ci": dci,
                        "utility": u,
                        "utility_ci": uci,
                        "worlds": args.worlds,
                    }
                )
                print(
                    f"| {label} | {pop} | {d:.1%} ± {dci:.1%} | {u:.2f} ± {uci:.2f} |", flush=True
                )
    if not args.config:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
