"""A demo rollout: one episode per config variant, a per-step summary, final systemic metrics.

    python -m rudra_env.demo --config configs/env/small.yaml --seed 0
    python -m rudra_env.demo --config configs/env/ring_vs_complete.yaml   # both variants

Banks act with a seeded masked-random policy (uniform over the actions their mask allows), so
the run shows the environment's own dynamics: scheduled shocks, defaults, cascades, prices.
Writes nothing unless ``--events PATH`` is given (the event log as JSON Lines).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rudra_env.config import load_variants
from rudra_env.environment import RudraParallelEnv


def run_episode(env: RudraParallelEnv, seed: int, quiet: bool = False) -> dict[str, float]:
    """Play one episode with masked-random actions; return its systemic metrics."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    equity0 = env.summary()["total_equity"]
    names = env.params.market_names
    prices = [np.array([env.summary()[f"price/{m}"] for m in names])]
    cascade_sizes, belief_cascades, invalid = [], 0, 0
    if not quiet:
        head = " ".join(f"{m[:12]:>12}" for m in names)
        print(f"{'step':>4} {'alive':>5} {'fell':>4} {'rounds':>6} {'equity':>10} {head}  events")
    while env.agents:
        acts = {}
        for a in env.agents:
            legal = np.flatnonzero(obs[a]["action_mask"])
            acts[a] = int(rng.choice(legal))
        obs, _rew, term, _trunc, infos = env.step(acts)
        invalid += sum(i["invalid_action"] for i in infos.values())
        events = env.last_events
        fell = sum(1 for e in events if e.type == "default")
        rounds = max((e.data["round"] for e in events if e.type == "cascade"), default=0)
        belief_cascades += any(e.type == "belief_cascade" for e in events)
        cascade_sizes.append(fell)
        summ = env.summary()
        prices.append(np.array([summ[f"price/{m}"] for m in names]))
        if not quiet:
            kinds = sorted(
                {e.type for e in events}
                - {"step_start", "step_end", "transaction", "profit_booking"}
            )
            px = " ".join(f"{summ[f'price/{m}']:12.2f}" for m in names)
            print(
                f"{summ['step']:>4} {summ['alive']:>5} {fell:>4} {rounds:>6} "
                f"{summ['total_equity']:10.2f} {px}  {','.join(kinds)}"
            )
    path = np.stack(prices)
    drawdown = 1.0 - (path / np.maximum.accumulate(path, axis=0)).min(axis=0)
    final = env.summary()
    metrics = {
        "steps": final["step"],
        "default_rate": final["default_rate"],
        "defaults": env.config.num_banks - final["alive"],
        "max_defaults_in_a_step": max(cascade_sizes, default=0),
        "total_equity_start": equity0,
        "total_equity_end": final["total_equity"],
        "equity_change_pct": 100.0 * (final["total_equity"] / equity0 - 1.0),
        "belief_cascades": belief_cascades,
        "invalid_actions": invalid,
        "money_left_system": float(env.core_state.outside[0]),
    }
    for m, name in enumerate(names):
        metrics[f"drawdown_pct/{name}"] = 100.0 * float(drawdown[m])
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rudra_env.demo", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--config", default="configs/env/small.yaml", help="env YAML")
    ap.add_argument("--seed", type=int, default=0, help="episode seed")
    ap.add_argument("--quiet", action="store_true", help="only the final table")
    ap.add_argument("--events", type=Path, help="write the event log here as JSON Lines")
    args = ap.parse_args(argv)
    variants = load_variants(args.config)
    results = {}
    for name, cfg in variants.items():
        print(
            f"\n== {args.config} [{name}]: {cfg.num_banks} banks, {cfg.topology.kind}, "
            f"scenario {cfg.scenario.name}, seed {args.seed}"
        )
        env = RudraParallelEnv(cfg)
        results[name] = run_episode(env, args.seed, args.quiet)
        if args.events:
            out = (
                args.events
                if len(variants) == 1
                else args.events.with_name(f"{args.events.stem}_{name}{args.events.suffix}")
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w") as fh:
                for e in env.event_log:
                    fh.write(json.dumps(e.to_dict()) + "\n")
            print(f"event log: {out}")
    keys = list(next(iter(results.values())))
    print("\n| metric | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for k in keys:
        cells = []
        for r in results.values():
            v = r[k]
            cells.append(f"{v:,.2f}" if isinstance(v, float) else str(v))
        print(f"| {k} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
