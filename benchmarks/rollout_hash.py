"""A fingerprint of the model's behaviour: hashes of seeded rollouts over every env YAML.

    python benchmarks/rollout_hash.py                 # print the hashes, compare with the JSON
    python benchmarks/rollout_hash.py --write         # record them as the new reference

A refactoring of the core must leave every hash unchanged; a deliberate change to the model
(dynamics, rewards, events) changes them, and the commit that makes it records the new ones with
``--write``. Two rollouts per config variant:

* PettingZoo ``parallel_env`` (B = 1), 40 steps of masked-random actions, with an unmasked action
  now and then (exercises the invalid-action path): rewards, terminations, infos, every event
  and the final state;
* the batched core (B = 64 worlds), 25 steps of uniformly random actions (many masked out):
  rewards, defaults, executed actions, expanded events of a few worlds, the final state; for
  ``bank_run`` also B = 256 stepped on two threads (``workers=2``).

Floats are hashed by their exact bytes, so any change in the last bit shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rudra_env  # noqa: E402
from rudra_env.config import load_variants  # noqa: E402
from rudra_env.core import initial_state, step  # noqa: E402
from rudra_env.core.params import Params  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rollout_hash.json"


class _Hasher:
    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def add(self, x: object) -> None:
        if isinstance(x, np.ndarray):
            self.h.update(str(x.dtype).encode() + str(x.shape).encode())
            self.h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                self.add(str(k))
                self.add(x[k])
        elif isinstance(x, list | tuple):
            for v in x:
                self.add(v)
        elif isinstance(x, float | np.floating):
            self.h.update(np.float64(x).tobytes())
        else:
            self.h.update(repr(x).encode())

    def hexdigest(self) -> str:
        return self.h.hexdigest()[:16]


def _state_fields(s) -> dict:
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}


def pettingzoo_hash(cfg, seed: int = 7, steps: int = 40) -> str:
    env = rudra_env.parallel_env(cfg)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    h = _Hasher()
    for t in range(steps):
        if not env.agents:
            break
        acts = {}
        for a in env.agents:
            mask = obs[a]["action_mask"]
            if t % 7 == 3:
                acts[a] = int(rng.integers(len(mask)))
            else:
                acts[a] = int(rng.choice(np.flatnonzero(mask)))
        obs, rew, term, trunc, info = env.step(acts)
        h.add([obs, rew, term, trunc, info])
    for e in env.event_log:
        h.add([e.type, e.step, e.world, e.data])
    h.add(_state_fields(env.core_state))
    return h.hexdigest()


def core_hash(cfg, seed: int = 11, worlds: int = 64, steps: int = 25, workers: int = 1) -> str:
    p = Params.from_config(cfg)
    rng = np.random.default_rng(seed)
    s = initial_state(cfg, rng, worlds=worlds)
    h = _Hasher()
    for _ in range(steps):
        acts = rng.integers(0, p.layout.n, size=(worlds, cfg.num_banks))
        s, out = step(s, acts, p, rng, inplace=True, workers=workers)
        h.add(
            [
                out.rewards,
                out.defaulted,
                out.invalid,
                out.executed,
                out.cascade_rounds,
                out.belief_cascade,
            ]
        )
        for w in (0, 1, worlds - 1):
            for e in out.record.events(w):
                h.add([e.type, e.step, e.world, e.data])
    h.add(_state_fields(s))
    return h.hexdigest()


def all_hashes() -> dict[str, str]:
    out = {}
    for path in sorted((ROOT / "configs" / "env").glob("*.yaml")):
        for name, cfg in load_variants(path).items():
            key = f"{path.stem}:{name}"
            out[f"{key}:pettingzoo"] = pettingzoo_hash(cfg)
            out[f"{key}:core"] = core_hash(cfg)
            if path.stem == "bank_run":  # the threaded path: two chunks of 128 worlds
                out[f"{key}:core-threads"] = core_hash(cfg, worlds=256, steps=10, workers=2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="record the hashes as the reference")
    args = ap.parse_args()
    hashes = all_hashes()
    ref = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    changed = 0
    for k, v in hashes.items():
        mark = "" if ref.get(k) == v else "  <- differs from the reference"
        changed += bool(mark)
        print(f"{k:40s} {v}{mark}")
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(hashes, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    elif changed:
        print(f"{changed} of {len(hashes)} hashes differ from {RESULTS.name}")
        return 1
    else:
        print(f"all {len(hashes)} hashes equal the reference")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
