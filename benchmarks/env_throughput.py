"""Throughput of the PettingZoo env and of the batched core.

    python benchmarks/env_throughput.py            # full run, best of 3 (a few minutes)
    python benchmarks/env_throughput.py --quick    # fewer steps

Prints a Markdown table and writes ``benchmarks/results/env_throughput.json``.

* PettingZoo env (``parallel_env``, B = 1): masked-random actions for every live bank,
  N = 10, 100, 1000 (erdos_renyi with mean degree ~8, K = 8). Episodes restart when all banks
  default or at the horizon; resets are outside the timed region.
* Batched core (``rudra_env.core.step`` + ``observe`` + ``action_masks``, i.e. what a
  parameter-shared trainer needs each step), N = 100, B = 1, 64, 1024, masked-random actions;
  B = 1024 also with ``workers=2`` (two threads, one chunk of worlds each), and the transition
  alone ("core (step only)": ``step`` without building observations and masks).

bank-steps/s = worlds x banks x steps / s. Timed: the env's own work (``env.step`` for
PettingZoo; ``step`` + ``observe`` + ``action_masks`` for the core); the benchmark's own action
sampling is outside the timed region.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import rudra_env
from rudra_env.config import EnvConfig
from rudra_env.core import action_masks, initial_state, observe, step
from rudra_env.core.params import Params

RESULTS = Path(__file__).resolve().parent / "results" / "env_throughput.json"


def _config(n: int, max_steps: int = 200) -> EnvConfig:
    return EnvConfig.from_dict(
        {
            "num_banks": n,
            "max_steps": max_steps,
            "max_counterparties": 8,
            "topology": {"kind": "erdos_renyi", "p": min(1.0, 8.0 / n)},
        }
    )


def _masked_random(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One legal action per row of (..., A) masks, uniformly among the legal ones."""
    scores = rng.random(masks.shape) * masks
    return scores.argmax(axis=-1)


def bench_pettingzoo(n: int, steps: int, seed: int = 0) -> dict:
    env = rudra_env.parallel_env(_config(n))
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    done_steps, elapsed = 0, 0.0
    while done_steps < steps:
        if not env.agents:
            obs, _ = env.reset()
        agents = env.agents
        masks = np.stack([obs[a]["action_mask"] for a in agents])
        acts = dict(zip(agents, _masked_random(masks, rng).tolist(), strict=True))
        t0 = time.perf_counter()
        obs, *_ = env.step(acts)
        elapsed += time.perf_counter() - t0
        done_steps += 1
    return {
        "backend": "pettingzoo",
        "N": n,
        "B": 1,
        "steps": steps,
        "seconds": elapsed,
        "env_steps_per_s": steps / elapsed,
        "bank_steps_per_s": steps * n / elapsed,
    }


def bench_core(
    n: int, b: int, steps: int, seed: int = 0, workers: int = 1, observe_too: bool = True
) -> dict:
    cfg = _config(n, max_steps=10**6)
    p = Params.from_config(cfg)
    rng = np.random.default_rng(seed)
    s = initial_state(cfg, rng, worlds=b)
    masks = action_masks(s, p)
    elapsed = 0.0
    for _ in range(steps):
        acts = _masked_random(masks, rng)
        t0 = time.perf_counter()
        s, out = step(s, acts, p, rng, inplace=True, workers=workers)
        if observe_too:
            observe(s, p, out.balance)
            masks = action_masks(s, p, out.balance)
            elapsed += time.perf_counter() - t0
        else:
            elapsed += time.perf_counter() - t0
            masks = action_masks(s, p, out.balance)
    return {
        "backend": "core" if observe_too else "core (step only)",
        "N": n,
        "B": b,
        "workers": workers,
        "steps": steps,
        "seconds": elapsed,
        "env_steps_per_s": steps * b / elapsed,
        "bank_steps_per_s": steps * b * n / elapsed,
        "alive_at_end": float(s.alive.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per row; the table shows the best (the machine is shared and "
        "noisy), the JSON keeps every run",
    )
    args = ap.parse_args()
    q = 0.2 if args.quick else 1.0
    jobs = [
        (bench_pettingzoo, (n, max(20, int(steps * q))), {})
        for n, steps in ((10, 3000), (100, 2000), (1000, 200))
    ]
    jobs += [
        (bench_core, (100, b, max(5, int(steps * q))), {"workers": workers})
        for b, steps, workers in ((1, 2000, 1), (64, 400, 1), (1024, 40, 1), (1024, 40, 2))
    ]
    jobs += [
        (bench_core, (100, 1024, max(5, int(40 * q))), {"workers": workers, "observe_too": False})
        for workers in (1, 2)
    ]
    rows = []
    for fn, fargs, kwargs in jobs:
        runs = [fn(*fargs, **kwargs) for _ in range(max(1, args.repeat))]
        best = max(runs, key=lambda r: r["bank_steps_per_s"])
        rows.append({**best, "runs_bank_steps_per_s": [r["bank_steps_per_s"] for r in runs]})
    print(f"best of {args.repeat} runs per row")
    print("| backend | N | B | threads | steps | env-steps/s | bank-steps/s | worst run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['N']} | {r['B']} | {r.get('workers', 1)} | {r['steps']} | "
            f"{r['env_steps_per_s']:,.0f} | {r['bank_steps_per_s']:,.0f} | "
            f"{min(r['runs_bank_steps_per_s']):,.0f} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "processor": platform.machine(),
                    "numpy": np.__version__,
                },
                "quick": args.quick,
                "repeat": args.repeat,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
