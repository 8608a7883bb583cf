"""Seconds per population decision of the EquilibriumAgent, with iterations and epsilon.

    python benchmarks/equilibrium_speed.py             # N = 10, 30, 100; 20 decisions each
    python benchmarks/equilibrium_speed.py --quick     # 2 decisions each

Prints a Markdown table and writes ``benchmarks/results/equilibrium_speed.json``.

Setting: the default topology (``configs/env/default.yaml``: Barabási–Albert, m = 2, K = 8,
two markets, three size levels, so A = 61) with ``num_banks`` set to N. One decision = one
``EquilibriumAgent.act(observations, EnvView.from_env(env))`` for every live bank: build the
one-step game at the env's state, iterate best responses to a pure equilibrium (or the mixed
fallback), report epsilon. The agent plays its own decisions, so decisions 2.. are taken at the
states its equilibrium play leads to. Timed: ``act`` only (``env.step`` is outside).

Floor (issue #3): N = 100 in at most 2 s per decision on the project's 2-core CPU machine;
``floor_ok`` in the JSON checks the slowest N = 100 decision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import rudra_env
from agents import EnvView, EquilibriumAgent

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "equilibrium_speed.json"
FLOOR_N, FLOOR_S = 100, 2.0


def bench(n: int, decisions: int, seed: int, agent_kwargs: dict) -> dict:
    cfg = rudra_env.EnvConfig.from_yaml(ROOT / "configs" / "env" / "default.yaml")
    env = rudra_env.parallel_env(cfg.with_overrides({"num_banks": n}))
    obs, _ = env.reset(seed=seed)
    agent = EquilibriumAgent(seed=seed, **agent_kwargs)
    rows = []
    for d in range(decisions):
        if not env.agents:
            break
        live = {a: obs[a] for a in env.agents}
        view = EnvView.from_env(env)
        t0 = time.perf_counter()
        acts = agent.act(live, view)
        seconds = time.perf_counter() - t0
        res, game = agent.last_result, agent.last_game
        rows.append(
            {
                "decision": d,
                "seconds": seconds,
                "live_banks": len(live),
                "candidates": int(game.valid.sum()),
                "worlds": game.worlds,
                "core_calls": game.calls,
                **res.summary(),
            }
        )
        obs, *_ = env.step(acts)
    sec = np.array([r["seconds"] for r in rows])
    return {
        "N": n,
        "decisions": len(rows),
        "seconds_median": float(np.median(sec)),
        "seconds_mean": float(sec.mean()),
        "seconds_max": float(sec.max()),
        "iterations_mean": float(np.mean([r["iterations"] for r in rows])),
        "iterations_max": int(max(r["iterations"] for r in rows)),
        "epsilon_max": float(max(r["epsilon"] for r in rows)),
        "converged": int(sum(r["converged"] for r in rows)),
        "worlds_mean": float(np.mean([r["worlds"] for r in rows])),
        "us_per_world": float(sec.sum() / sum(r["worlds"] for r in rows) * 1e6),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100])
    ap.add_argument("--decisions", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="2 decisions per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", choices=["previous", "hold", "heuristic"], default="previous")
    ap.add_argument("--noise", choices=["median", "sample"], default="median")
    ap.add_argument("--max-sweeps", type=int, default=None, help="agent default if omitted")
    ap.add_argument("--mixed-samples", type=int, default=None, help="agent default if omitted")
    ap.add_argument("--block-worlds", type=int, default=None, help="agent default if omitted")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    decisions = 2 if args.quick else args.decisions
    kwargs = {"start": args.start, "noise": args.noise}
    for key in ("max_sweeps", "mixed_samples", "block_worlds"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    results = [bench(n, decisions, args.seed, kwargs) for n in args.sizes]

    print(
        f"EquilibriumAgent({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}), default "
        f"topology, {decisions} decisions per N, seed {args.seed}\n"
    )
    print(
        "| N | s/decision median | mean | max | iterations mean (max) | epsilon max | "
        "converged | worlds/decision | us/world |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['N']} | {r['seconds_median']:.3f} | {r['seconds_mean']:.3f} | "
            f"{r['seconds_max']:.3f} | {r['iterations_mean']:.1f} ({r['iterations_max']}) | "
            f"{r['epsilon_max']:.2e} | {r['converged']}/{r['decisions']} | "
            f"{r['worlds_mean']:.0f} | {r['us_per_world']:.0f} |"
        )
    floor = next((r for r in results if r["N"] == FLOOR_N), None)
    floor_ok = None if floor is None else floor["seconds_max"] <= FLOOR_S
    if floor is not None:
        print(
            f"\nfloor: N = {FLOOR_N} in <= {FLOOR_S} s per decision: "
            f"{'OK' if floor_ok else 'MISSED'} (slowest {floor['seconds_max']:.3f} s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "equilibrium_speed",
                "agent": kwargs,
                "seed": args.seed,
                "decisions_per_size": decisions,
                "floor": {"N": FLOOR_N, "seconds": FLOOR_S, "ok": floor_ok},
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "numpy": np.__version__,
                },
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
