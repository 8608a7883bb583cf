"""``rudra rollout`` and ``rudra analyze`` through ``training.cli.main``: the files a rollout
writes (JSON Lines, network.npz, summary PNG, TensorBoard images and scalars read back with
``EventAccumulator``), determinism for a seed, analysis of a recorded step, the ``--agents``
syntax and the errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="rollouts write TensorBoard logs: the `train` extra")
pytest.importorskip("torch", reason="rollouts write TensorBoard logs with torch's SummaryWriter")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from agents import EquilibriumAgent, HeuristicAgent, RandomAgent, TorchPolicyAgent  # noqa: E402
from rudra_env.config import EnvConfig  # noqa: E402
from rudra_env.errors import ConfigError  # noqa: E402
from training.cli import main  # noqa: E402
from training.rollout import NETWORK_FIELDS, parse_agents, read_network  # noqa: E402

SMALL = str(Path(__file__).resolve().parents[2] / "configs" / "env" / "small.yaml")
SHORT = ["--set", "max_steps=4", "--quiet"]


def banks(n: int) -> EnvConfig:
    return EnvConfig.from_yaml(SMALL).with_overrides({"num_banks": n})


def run_rollout(logdir: Path, *extra: str, seed: int = 0) -> int:
    return main(["rollout", SMALL, "--logdir", str(logdir), "--seed", str(seed), *SHORT, *extra])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("rollout") / "run"
    assert run_rollout(logdir, "--agents", "heuristic:0.5,random", seed=3) == 0
    return logdir


# ---------------------------------------------------------------------------- the files
def test_rollout_writes_events_network_figure_and_run_record(recorded: Path) -> None:
    events = [json.loads(line) for line in (recorded / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "init" and events[-1]["type"] == "complete"
    assert {e["step"] for e in events} == set(range(5))
    with np.load(recorded / "network.npz", allow_pickle=False) as data:
        assert set(data.files) == set(NETWORK_FIELDS)
        assert data["loans"].shape == (5, 10, 10) and data["step"].tolist() == [0, 1, 2, 3, 4]
        np.testing.assert_allclose(data["equity"], data["assets"] - data["liabilities"])
        assert sorted(data["agents"].tolist()) == ["heuristic"] * 5 + ["random"] * 5
    assert (recorded / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = json.loads((recorded / "run.json").read_text())
    assert run["seed"] == 3 and run["steps"] == 4 and run["agents"] == "heuristic:0.5,random"
    assert (recorded / "config.yaml").read_text().startswith("num_banks: 10")


def test_rollout_tensorboard_has_network_images_and_scalars_per_step(recorded: Path) -> None:
    (run,) = (recorded / "tb").iterdir()
    acc = EventAccumulator(str(recorded / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert run.name.startswith("events.out.tfevents")
    images = acc.Images("rollout/network")
    assert [im.step for im in images] == [0, 1, 2, 3, 4]
    assert images[0].width > 300 and images[0].height > 300
    tags = acc.Tags()["scalars"]
    for tag in (
        "rollout/default_rate",
        "rollout/total_equity",
        "rollout/alive",
        "rollout/defaults",
        "rollout/mean_utility",
        "rollout/price/BANK_INDEX",
    ):
        assert tag in tags, tag
    assert [s.step for s in acc.Scalars("rollout/total_equity")] == [0, 1, 2, 3, 4]
    assert [s.value for s in acc.Scalars("rollout/alive")][0] == 10


def test_same_seed_same_episode_and_another_seed_differs(recorded: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    assert run_rollout(again, "--agents", "heuristic:0.5,random", seed=3) == 0
    assert run_rollout(other, "--agents", "heuristic:0.5,random", seed=4) == 0
    first = (recorded / "events.jsonl").read_text()
    assert (again / "events.jsonl").read_text() == first
    assert (other / "events.jsonl").read_text() != first
    with np.load(recorded / "network.npz") as a, np.load(again / "network.npz") as b:
        for key in NETWORK_FIELDS:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_rollout_refuses_a_used_logdir(recorded: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_rollout(recorded) == 2
    assert "--logdir" in capsys.readouterr().err


# ---------------------------------------------------------------------------- analyze
def test_analyze_a_recorded_step_and_the_config_agree_at_step_0(
    recorded: Path, tmp_path: Path
) -> None:
    assert main(["analyze", "--network", str(recorded), "--step", "0", "--quiet"]) == 0
    from_record = json.loads((recorded / "analysis_step0" / "analysis.json").read_text())
    out = tmp_path / "cfg"
    assert main(["analyze", SMALL, "--seed", "3", "--out", str(out), "--quiet"]) == 0
    from_config = json.loads((out / "analysis.json").read_text())
    assert from_record["banks"] == from_config["banks"]
    assert from_record["system"] == from_config["system"]
    assert (out / "analysis.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "analysis.md").read_text().startswith("# Network analysis")


def test_read_network_takes_python_indices(recorded: Path) -> None:
    last = read_network(recorded)
    assert last.step == 4 and last.loans.shape == (10, 10)
    assert read_network(recorded / "network.npz", -5).step == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--step", "9"], "--step 9 is not allowed"),
        (["--step", "-6"], "steps 0..4"),
        ([SMALL], "not allowed with --network"),
    ],
)
def test_analyze_bad_recorded_input(
    recorded: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["analyze", "--network", str(recorded), *argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "--network", "nowhere/run"], "--network 'nowhere/run': no such file"),
        (["analyze"], "needs CONFIG"),
        (["analyze", "configs/env/nowhere.yaml"], "nowhere.yaml"),
        (["analyze", SMALL, "--step", "2"], "--step is only allowed with --network"),
        (["analyze", SMALL, "--threshold", "2"], "threshold = 2.0 is not allowed"),
        (["analyze", SMALL, "--top", "0"], "--top 0 is not allowed"),
        (["analyze", SMALL, "--seed", "-1"], "--seed -1 is not allowed"),
        (["rollout", SMALL, "--set", "num_bank=3"], "did you mean 'num_banks'"),
        (["rollout", SMALL, "--agents", "heuristc"], "(did you mean 'heuristic'?)"),
    ],
)
def test_cli_errors_name_the_field(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    extra = ["--out", str(tmp_path / "a")] if argv[0] == "analyze" else []
    extra = ["--logdir", str(tmp_path / "r")] if argv[0] == "rollout" else extra
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith(f"rudra {argv[0]}: error:")
    assert not (tmp_path / "r").exists()  # nothing written before the input is checked


def test_analyze_without_bottlenecks(tmp_path: Path) -> None:
    argv = ["analyze", SMALL, "--out", str(tmp_path), "--quiet", "--no-bottlenecks"]
    assert main(argv) == 0
    data = json.loads((tmp_path / "analysis.json").read_text())
    assert "bottleneck_distress" not in data["banks"][0] and data["options"]["bottlenecks"] is False


# ---------------------------------------------------------------------------- --agents
def test_one_kind_plays_every_bank() -> None:
    plan = parse_agents("heuristic", banks(4))
    assert plan.kinds == ("heuristic",) * 4
    assert isinstance(plan.population.agent_of("bank_2", 2), HeuristicAgent)


def test_shares_split_the_banks_by_largest_remainder_drawn_from_the_seed() -> None:
    plan = parse_agents("equilibrium:0.8,random:0.2", banks(10), seed=0)
    assert plan.kinds.count("equilibrium") == 8 and plan.kinds.count("random") == 2
    assert parse_agents("equilibrium:0.8,random:0.2", banks(10), seed=0).kinds == plan.kinds
    draws = {parse_agents("equilibrium:0.8,random:0.2", banks(10), seed=s).kinds for s in range(5)}
    assert len(draws) > 1
    thirds = parse_agents("hold:0.34,random:0.33,heuristic:0.33", banks(10)).kinds
    assert [thirds.count(k) for k in ("hold", "random", "heuristic")] == [4, 3, 3]
    rest = parse_agents("equilibrium:0.25,heuristic", banks(10)).kinds  # 2.5 and 7.5: a tie goes to
    assert rest.count("equilibrium") == 3 and rest.count("heuristic") == 7  # the first entry
    pop = parse_agents("equilibrium:0.5,random", banks(4)).population
    kinds = {type(pop.agent_of(f"bank_{i}", i)) for i in range(4)}
    assert kinds == {EquilibriumAgent, RandomAgent}


def test_named_banks_first_then_the_rest(tmp_path: Path) -> None:
    plan = parse_agents("bank_0=equilibrium,3=random,heuristic", banks(5))
    assert plan.kinds == ("equilibrium", "heuristic", "heuristic", "random", "heuristic")


def test_a_checkpoint_path_plays_a_torch_policy(tmp_path: Path) -> None:
    import rudra_env

    torch = pytest.importorskip("torch")
    env = rudra_env.parallel_env(SMALL)
    d = env.observation_space("bank_0")["observation"].shape[0]
    n_act = env.action_space("bank_0").n
    net = torch.nn.Sequential(torch.nn.Linear(d, 4), torch.nn.Tanh(), torch.nn.Linear(4, n_act))
    arch = {"obs_dim": d, "hidden_sizes": [4], "n_actions": n_act, "activation": "tanh"}
    path = TorchPolicyAgent.from_state_dict(net.state_dict(), arch).save(tmp_path / "p.pt")
    plan = parse_agents(f"bank_1={path},hold", banks(10))
    assert isinstance(plan.population.agent_of("bank_1", 1), TorchPolicyAgent)
    assert plan.kinds[1] == str(path)
    assert run_rollout(tmp_path / "run", "--agents", f"{path}:0.5,heuristic") == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("greedy", "unknown agent kind 'greedy'; allowed: hold, random, heuristic, equilibrium"),
        ("equilibrum:0.5,random", "'equilibrum' (did you mean 'equilibrium'?)"),
        ("runs/none/final_model.zip", "checkpoint file 'runs/none/final_model.zip' does not exist"),
        ("random:0", "share '0' is not allowed: expected a number in (0, 1]"),
        ("random:1.5", "share '1.5' is not allowed"),
        ("random:abc,hold", "share 'abc' is not allowed"),
        ("random:0.5,hold:0.4", "the shares sum to 0.9; allowed: 1"),
        ("random:0.7,hold:0.4,heuristic", "sum to 1.1; allowed: at most 1"),
        ("random,hold", "2 kinds without a share (random, hold)"),
        ("bank_10=random,hold", "bank 'bank_10' is not a bank: expected an index in 0..9"),
        ("x=random,hold", "bank 'x' is not a bank"),
        ("1=random,bank_1=hold,hold", "names bank 1 twice"),
        ("0=random", "leaves banks [1, 2, 3, 4, 5, 6, 7, 8, 9] without an agent"),
        ("random,,hold", "has an empty entry"),
    ],
)
def test_bad_agents_spec_names_the_entry_and_what_is_allowed(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_agents(spec, banks(10))
    assert message in str(info.value)
