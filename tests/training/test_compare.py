"""``training.compare``: the trained policy against baselines in the learners' seats, its numbers
recomputed here independently from ``agents.run_episodes``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="training needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="training needs the `train` extra")

from agents import HoldAgent, Population, RandomAgent, TorchPolicyAgent, run_episodes  # noqa: E402
from agents.stats import t_quantile  # noqa: E402
from rudra_env.errors import ConfigError  # noqa: E402
from training.compare import EVAL_SEED_OFFSET, compare  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "env": {"file": str(ROOT / "configs" / "env" / "small.yaml"), "overrides": {"max_steps": 6}},
    "worlds": 1,
    "total_timesteps": 80,
    "checkpoint_every": 80,
    "progress_bar": False,
    "device": "cpu",
    "hyperparameters": {"n_steps": 8, "batch_size": 40, "n_epochs": 1, "net_arch": [8]},
}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two tiny trained runs: every bank learns; banks 0 and 3 learn among hold banks."""
    out = {}
    for name, extra in [
        ("all", {}),
        ("some", {"learners": [0, 3], "fixed_agent": "hold"}),
    ]:
        run_dir = tmp_path_factory.mktemp(name)
        config = TrainConfig.from_dict({**TINY, **extra, "run_dir": str(run_dir)})
        result = train(config)
        out[name] = (config, result.final_model)
    return out


def _by_hand(config, agent, learners, worlds, seed):
    """(per-world mean utility of the learners, their default share) straight from run_episodes."""
    stats = run_episodes(config.env_config(), agent, worlds, seed)
    return stats.rewards[:, learners].mean(axis=1), float(stats.dead[:, learners].mean())


def test_every_bank_learning(tiny_runs):
    config, model = tiny_runs["all"]
    table = compare(config, model, against=("random", "hold"), worlds=5)
    assert table.seed == config.seed + EVAL_SEED_OFFSET
    assert [r.candidate for r in table.rows] == ["trained", "trained, greedy", "random", "hold"]
    learners = np.arange(10)
    sampled = TorchPolicyAgent.load(model, deterministic=False, seed=table.seed)
    trained, _ = _by_hand(config, sampled, learners, 5, table.seed)
    greedy, _ = _by_hand(config, TorchPolicyAgent.load(model), learners, 5, table.seed)
    assert table.rows[0].utility.mean == pytest.approx(trained.mean(), abs=1e-12)
    assert table.rows[1].utility.mean == pytest.approx(greedy.mean(), abs=1e-12)
    rand, rand_dead = _by_hand(config, RandomAgent(seed=table.seed), learners, 5, table.seed)
    row = table.rows[2]
    assert row.utility.mean == pytest.approx(rand.mean(), abs=1e-12)
    half = t_quantile(0.95, 4) * rand.std(ddof=1) / np.sqrt(5)
    assert row.utility.half == pytest.approx(half, rel=1e-9)
    d = rand - trained  # paired by world
    assert row.vs_trained.mean == pytest.approx(d.mean(), abs=1e-12)
    assert row.vs_trained.half == pytest.approx(
        t_quantile(0.95, 4) * d.std(ddof=1) / np.sqrt(5), rel=1e-9
    )
    assert row.default_rate == pytest.approx(rand_dead)
    assert table.rows[0].vs_trained is None


def test_learners_among_fixed_banks(tiny_runs):
    config, model = tiny_runs["some"]
    table = compare(config, model, against=("random",), worlds=4)
    learners = np.array([0, 3])
    rand = RandomAgent(seed=table.seed)
    pop = Population({0: rand, 3: rand}, default=HoldAgent())
    want, _ = _by_hand(config, pop, learners, 4, table.seed)
    assert table.rows[2].utility.mean == pytest.approx(want.mean(), abs=1e-12)
    assert table.learners == 2


def test_tables_and_files(tiny_runs, tmp_path):
    config, model = tiny_runs["all"]
    table = compare(config, model, against=("hold",), worlds=3)
    again = compare(config, model, against=("hold",), worlds=3)
    assert table.markdown() == again.markdown()  # deterministic
    md = table.markdown()
    assert "| trained |" in md and "| hold |" in md and "3 worlds" in md
    rows = list(csv.DictReader(io.StringIO(table.csv())))
    assert [r["candidate"] for r in rows] == ["trained", "trained, greedy", "hold"]
    assert float(rows[2]["utility_mean"]) == pytest.approx(table.rows[2].utility.mean, rel=1e-5)
    md_path, csv_path = table.write(tmp_path)
    assert md_path.read_text() == md and csv_path.read_text() == table.csv()


def test_bad_input(tiny_runs):
    config, model = tiny_runs["all"]
    with pytest.raises(ConfigError, match="against = 'nash'.*expected one of"):
        compare(config, model, against=("nash",))
    with pytest.raises(ConfigError, match="worlds = 1"):
        compare(config, model, worlds=1)


def test_a_finished_run_compares_and_times_itself(tmp_path):
    config = TrainConfig.from_dict(
        {
            **TINY,
            "run_dir": str(tmp_path / "run"),
            "compare_against": ["hold"],
            "compare_worlds": 3,
        }
    )
    result = train(config)
    assert [r.candidate for r in result.comparison.rows] == ["trained", "trained, greedy", "hold"]
    assert (tmp_path / "run" / "comparison.md").read_text() == result.comparison.markdown()
    assert (tmp_path / "run" / "comparison.csv").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "tb" / "comparison"))
    acc.Reload()
    assert any("rudra/comparison" in tag for tag in acc.Tags()["tensors"])
    import json

    timing = json.loads((tmp_path / "run" / "run.json").read_text())["timing"]
    assert 0 < timing["env_s"] < timing["wall_s"]
    assert timing["env_time_share"] == pytest.approx(result.env_time_share, rel=0.05)
    assert 0 < result.env_time_share < 1


def test_compare_fields_are_checked():
    with pytest.raises(ConfigError, match="compare_against = \\['nash'\\]"):
        TrainConfig.from_dict({**TINY, "compare_against": ["nash"]})
    with pytest.raises(ConfigError, match="compare_worlds"):
        TrainConfig.from_dict({**TINY, "compare_worlds": 1})


def test_hold_bias_raises_holds_initial_probability(tmp_path):
    import torch

    from training.train import _build_model
    from training.vec_env import RudraVecEnv

    venv = RudraVecEnv(TINY["env"]["file"], worlds=1)
    obs = torch.as_tensor(venv.reset())
    probs = {}
    for bias in (0.0, 3.0):
        config = TrainConfig.from_dict({**TINY, "hold_bias": bias})
        model = _build_model(config, venv, tmp_path / "tb", 0)
        with torch.no_grad():
            dist = model.policy.get_distribution(obs)
        probs[bias] = dist.distribution.probs[:, 0].mean().item()  # HOLD is action 0
    # the same seed gives the same weights but for HOLD's bias: its odds rise by e^3
    assert probs[3.0] > probs[0.0]
    odds = lambda q: q / (1 - q)  # noqa: E731
    assert odds(probs[3.0]) / odds(probs[0.0]) == pytest.approx(np.exp(3.0), rel=0.25)
    with pytest.raises(ConfigError, match="hold_bias"):
        TrainConfig.from_dict({**TINY, "hold_bias": "high"})
