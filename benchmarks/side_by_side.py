"""Throughput of this checkout against another revision, measured side by side in one run.

    python benchmarks/side_by_side.py --base <rev>        # e.g. the commit before a refactor
    python benchmarks/side_by_side.py --base <rev> --this <rev2> --rounds 5

Checks out ``<rev>`` (and ``<rev2>``, else this checkout) into temporary git worktrees and runs
the same two measurements of
``benchmarks/env_throughput.py`` in each tree, alternating (base, this, base, this, ...) in fresh
subprocesses so that load on the shared machine hits both alike:

* PettingZoo ``parallel_env`` at N = 100 (env-steps/s), 600 steps;
* the batched core, N = 100, B = 1024, the transition alone (bank-steps/s), 12 steps.

Prints each tree's median and best over the rounds, the ratio of medians and the median of the
rounds' paired ratios (each round's two measurements run back to back, so a drift in the
machine's speed hits both), and writes
``benchmarks/results/side_by_side.json``. Both trees use this checkout's virtual environment.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "side_by_side.json"

_PROBE = """
import json, sys
sys.path.insert(0, "benchmarks")
from env_throughput import bench_core, bench_pettingzoo
pz = bench_pettingzoo(100, int(sys.argv[1]))["env_steps_per_s"]
core = bench_core(100, 1024, 12, observe_too=False)["bank_steps_per_s"]
print(json.dumps({"pettingzoo_n100_env_steps_per_s": pz, "core_n100_b1024_bank_steps_per_s": core}))
"""


def _measure(tree: Path, pz_steps: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(pz_steps)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _short(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _worktree(path: Path, rev: str) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True
    )
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--this", help="git revision to measure instead of this checkout")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument(
        "--pz-steps", type=int, default=600, help="PettingZoo steps per measurement (default 600)"
    )
    args = ap.parse_args()
    base_rev = _short(args.base)
    this_rev = _short(args.this) if args.this else "this checkout"
    runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = _worktree(Path(tmp) / "base", base_rev)
        this = _worktree(Path(tmp) / "this", this_rev) if args.this else ROOT
        try:
            for k in range(args.rounds):
                runs["base"].append(_measure(base, args.pz_steps))
                runs["this"].append(_measure(this, args.pz_steps))
                print(
                    f"round {k + 1}/{args.rounds}: base {runs['base'][-1]}, this "
                    f"{runs['this'][-1]}",
                    file=sys.stderr,
                )
        finally:
            for tree in {base, this} - {ROOT}:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
                )
    summary = {
        "base": base_rev,
        "this": this_rev,
        "rounds": args.rounds,
        "pz_steps": args.pz_steps,
        "figures": {},
    }
    print(
        f"| measure | {base_rev} (median / best) | {this_rev} (median / best) | ratio of "
        "medians | median of paired ratios |"
    )
    print("|---|---|---|---|---|")
    for key in runs["base"][0]:
        b = [r[key] for r in runs["base"]]
        t = [r[key] for r in runs["this"]]
        ratio = statistics.median(t) / statistics.median(b)
        paired = statistics.median(x / y for x, y in zip(t, b, strict=True))
        summary["figures"][key] = {
            "base": b,
            "this": t,
            "ratio_of_medians": ratio,
            "median_paired_ratio": paired,
        }
        print(
            f"| {key} | {statistics.median(b):,.0f} / {max(b):,.0f} | "
            f"{statistics.median(t):,.0f} / {max(t):,.0f} | {ratio:.3f} | {paired:.3f} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
