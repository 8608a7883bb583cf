"""Sampling throughput of the training backends on configs/env/default.yaml (30 banks).

    python benchmarks/rllib_throughput.py            # 3 repeats of ~12,000 timesteps each
    python benchmarks/rllib_throughput.py --quick    # 1 repeat

Prints a Markdown table and writes ``benchmarks/results/rllib_throughput.json``. Needs the
``[train]`` and ``[distributed]`` extras.

What is timed: collecting experience with an untrained policy (network forward, action
sampling, env steps, the trainer's bookkeeping), not the gradient updates. A timestep is one
learning bank's step in one world (every bank learns here), the unit of ``total_timesteps``.

* **SB3** (``backend: sb3``): MaskablePPO's ``collect_rollouts`` on ``RudraVecEnv`` with 8
  worlds in one process: every step is one batched core call for all 8 worlds and one policy
  forward for all 240 slots.
* **RLlib, R runners** (``backend: rllib``): ``MultiAgentEnvRunner.sample`` on R remote env
  runners in parallel (``EnvRunnerGroup.foreach_env_runner``), each with 8 / R
  ``RudraMultiAgentEnv`` worlds (one PettingZoo env each, stepped one after the other),
  the ``MaskedMLPModule`` forward batched over the runner's agents. A local Ray instance of
  R + 1 CPUs; wall time of the parallel call, the best of the repeats.

Both use the [64, 64] tanh MLP and sample the same number of timesteps per repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "rllib_throughput.json"
ENV = ROOT / "configs" / "env" / "default.yaml"
WORLDS = 8
N_STEPS = 50  # per world: 50 x 8 worlds x 30 banks = 12,000 timesteps per repeat


def _config(runners: int):
    from training.config import TrainConfig

    return TrainConfig.from_dict(
        {
            "env": str(ENV),
            "backend": "rllib",
            "algorithm": "ppo",
            "worlds": WORLDS,
            "ray": {"num_env_runners": runners, "num_cpus": runners + 1},
            "hyperparameters": {"n_steps": N_STEPS, "net_arch": [64, 64]},
            "progress_bar": False,
        }
    )


def sb3(repeats: int) -> dict:
    """Timesteps per second of MaskablePPO's rollout collection on the vector env."""
    from sb3_contrib import MaskablePPO

    from training.train import fixed_agent
    from training.vec_env import RudraVecEnv

    config = _config(0)
    env = RudraVecEnv(config.env_config(), worlds=WORLDS, seed=0, fixed_agent=fixed_agent(config))
    model = MaskablePPO("MlpPolicy", env, n_steps=N_STEPS, seed=0, device="cpu")
    model.policy.set_training_mode(False)
    _, callback = model._setup_learn(10**9, None)
    callback.on_training_start(locals(), globals())
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        model.collect_rollouts(model.env, callback, model.rollout_buffer, N_STEPS)
        times.append(time.perf_counter() - t0)
    steps = N_STEPS * env.num_envs
    return {"timesteps": steps, "seconds": min(times[1:]), "per_s": steps / min(times[1:])}


def rllib(runners: int, repeats: int) -> dict:
    """Timesteps per second of ``runners`` RLlib env runners sampling in parallel."""
    import ray

    from training.rllib import ppo_config

    config = _config(runners)
    ray.init(num_cpus=runners + 1, include_dashboard=False, log_to_driver=False)
    try:
        algo = ppo_config(config).build_algo()
        per_runner = N_STEPS * (WORLDS // runners)  # env steps per runner and repeat

        def sample(runner) -> int:
            episodes = runner.sample(num_timesteps=per_runner * 30, random_actions=False)
            return sum(e.agent_steps() for e in episodes)

        times, steps = [], 0
        for _ in range(repeats + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            counts = algo.env_runner_group.foreach_env_runner(sample, local_env_runner=False)
            times.append(time.perf_counter() - t0)
            steps = sum(counts)
        algo.stop()
    finally:
        ray.shutdown()
    best = min(times[1:])
    return {"timesteps": steps, "seconds": best, "per_s": steps / best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    rows = {"SB3 (1 process, 8 worlds batched)": sb3(repeats)}
    for r in (1, 2):
        rows[f"RLlib, {r} env runner{'s' if r > 1 else ''} ({WORLDS // r} worlds each)"] = rllib(
            r, repeats
        )
    print(f"default.yaml (30 banks), untrained [64, 64] policy, {os.cpu_count()} CPUs\n")
    print("| sampler | timesteps | seconds | timesteps/s |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['timesteps']} | {r['seconds']:.2f} | {r['per_s']:,.0f} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "repeats": repeats,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
