"""``rudra evaluate``: the tournament YAML (every one in configs/evaluate/ loads; errors name the
field, the value and what is allowed, with did-you-mean), ``--set`` overrides, a trained
population through a checkpoint alias, the files and TensorBoard logs read back, the same
numbers on a second run."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from rudra_env.errors import ConfigError
from training.cli import main
from training.evaluate import TournamentConfig

ROOT = Path(__file__).resolve().parents[2]
SMALL = str(ROOT / "configs" / "env" / "small.yaml")
TOURNAMENTS = sorted((ROOT / "configs" / "evaluate").glob("*.yaml"))
BASE = {
    "populations": {"heuristic": "heuristic", "random": "random"},
    "scenarios": {"calm": {"file": SMALL, "overrides": {"num_banks": 6, "max_steps": 3}}},
    "seeds": 2,
    "worlds_per_batch": 2,
    "progress_bar": False,
}


def config(**extra) -> TournamentConfig:
    return TournamentConfig.from_dict({**BASE, **extra})


@pytest.mark.parametrize("path", TOURNAMENTS, ids=[p.stem for p in TOURNAMENTS])
def test_every_tournament_yaml_loads_and_round_trips(path: Path) -> None:
    tour = TournamentConfig.from_yaml(path)
    assert tour.name == path.stem and tour.seeds == 30
    assert TournamentConfig.from_dict(tour.to_dict()) == tour
    for env in tour.env_configs().values():
        assert env.num_banks >= 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sedes": 3}, r"unknown key 'sedes'; did you mean 'seeds'\?"),
        ({"seeds": 1}, r"seeds = 1 is not allowed: expected an integer >= 2"),
        ({"populations": {}}, r"populations = \{\} is not allowed: expected a non-empty mapping"),
        ({"populations": {"a/b": "hold"}}, r"populations.a/b = 'a/b' is not allowed"),
        (
            {"populations": {"h": "heuristc"}},
            r"populations.h \(scenario calm\): --agents entry 'heuristc': unknown agent kind "
            r"'heuristc' \(did you mean 'heuristic'\?\)",
        ),
        ({"cross_play": {"share": 1.0}}, r"cross_play.share = 1.0 is not allowed"),
        ({"cross_play": {"shares": 0.3}}, r"unknown key 'cross_play.shares'; did you mean 'share'"),
        ({"equilibrium_gap": {"banks": "some"}}, r"equilibrium_gap.banks = 'some'"),
        ({"equilibrium_gap": {"every": 0}}, r"equilibrium_gap.every = 0 is not allowed"),
        ({"checkpoints": {"trained": "no/such.zip"}}, r"checkpoints.trained = .*no/such.zip"),
        ({"checkpoints": {"random": SMALL}}, r"checkpoints.random = 'random' is not allowed"),
        ({"level": 1.0}, r"level = 1.0 is not allowed"),
        ({"overrides": {"num_bank": 3}}, r"overrides \(scenario calm\): unknown key 'num_bank'"),
        (
            {"scenarios": {"calm": {"file": SMALL, "variant": "ring"}}},
            r"scenarios.calm: variant = 'ring' is not allowed: expected one of \['default'\]",
        ),
    ],
)
def test_bad_config_names_field_value_and_allowed(extra, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**extra)


def test_overrides_reach_scenarios_populations_and_options() -> None:
    tour = config().with_overrides(
        {
            "scenarios.calm.num_banks": 5,
            "scenarios.big": {"file": SMALL},
            "overrides.max_steps": 2,
            "populations.mix": "heuristic:0.5,random",
            "equilibrium_gap.every": 3,
            "cross_play": None,
        }
    )
    envs = tour.env_configs()
    assert envs["calm"].num_banks == 5 and envs["big"].num_banks == 10
    assert envs["calm"].max_steps == envs["big"].max_steps == 2
    assert list(tour.populations) == ["heuristic", "random", "mix"]
    assert tour.equilibrium_gap.every == 3 and tour.cross_play is None
    with pytest.raises(ConfigError, match=r"unknown key 'scenarios.clam'; did you mean 'calm'"):
        tour.with_overrides({"scenarios.clam.num_banks": 3})
    with pytest.raises(ConfigError, match=r"unknown key 'equilibrium_gap.evry'"):
        tour.with_overrides({"equilibrium_gap.evry": 3})
    on_again = tour.with_overrides({"cross_play.share": 0.25})  # it was null
    assert on_again.cross_play.share == 0.25
    with pytest.raises(ConfigError, match=r"unknown key 'cross_play.shar'; did you mean 'share'"):
        tour.with_overrides({"cross_play.shar": 0.25})


# ---------------------------------------------------------------------------- a trained policy
torch = pytest.importorskip("torch", reason="trained policies and TensorBoard: the `train` extra")
pytest.importorskip("tensorboard", reason="TensorBoard logs: the `train` extra")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from agents import TorchPolicyAgent  # noqa: E402
from rudra_env.config import EnvConfig  # noqa: E402
from rudra_env.core import Params  # noqa: E402
from rudra_env.core.observe import ObservationLayout  # noqa: E402


def policy_file(folder: Path, num_banks: int = 6, max_counterparties: int = 4) -> Path:
    """A small random MLP policy saved as ``policy.pt`` + sidecar, for the env's sizes."""
    env = EnvConfig.from_yaml(SMALL).with_overrides(
        {"num_banks": num_banks, "max_counterparties": max_counterparties}
    )
    p = Params.from_config(env)
    d = ObservationLayout(p.K, p.M).size
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, p.layout.n)
    )
    arch = {"obs_dim": d, "hidden_sizes": [8], "n_actions": p.layout.n}
    folder.mkdir(parents=True, exist_ok=True)
    return TorchPolicyAgent.from_state_dict(net.state_dict(), arch).save(folder / "policy.pt")


def write_yaml(folder: Path, **extra) -> Path:
    policy_file(folder / "ckpt")
    data = {
        **BASE,
        "name": "cli",
        "populations": {
            "trained": "trained",
            "trained_half": "trained:0.5,heuristic",
            "random": "random",
        },
        "checkpoints": {"trained": "ckpt/policy.pt"},  # relative to the YAML
        "equilibrium_gap": {"every": 2, "banks": 3},
        **extra,
    }
    path = folder / "tournament.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("evaluate")
    path = write_yaml(folder)
    out = folder / "out"
    assert main(["evaluate", str(path), "--out", str(out), "--quiet"]) == 0
    return path, out


def test_cli_writes_tables_per_world_values_and_resolved_config(ran) -> None:
    path, out = ran
    for name in ("results.md", "results.csv", "cross_play.md", "cross_play.csv", "per_world.csv"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert [r["population"] for r in rows] == ["trained", "trained_half", "random"]
    assert {"utility_mean", "utility_half", "equilibrium_gap_mean", "debtrank_half"} <= set(rows[0])
    per_world = list(csv.DictReader(io.StringIO((out / "per_world.csv").read_text())))
    trained = [float(r["utility"]) for r in per_world if r["population"] == "trained"]
    assert float(rows[0]["utility_mean"]) == pytest.approx(np.mean(trained), rel=1e-5)
    cross = list(csv.DictReader(io.StringIO((out / "cross_play.csv").read_text())))
    assert len(cross) == 9 and {r["share"] for r in cross} == {"0.5"}
    resolved = TournamentConfig.from_yaml(out / "config.yaml")
    assert resolved.checkpoints["trained"] == str((path.parent / "ckpt/policy.pt").resolve())
    assert "| trained_half |" in (out / "results.md").read_text()


def test_cli_tensorboard_has_a_run_per_population_with_metrics_and_episode_paths(ran) -> None:
    _, out = ran
    assert sorted(p.name for p in (out / "tb").iterdir()) == [
        "random",
        "tournament",
        "trained",
        "trained_half",
    ]
    acc = EventAccumulator(str(out / "tb" / "trained"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("calm/utility", "calm/utility_half", "calm/equilibrium_gap", "calm/debtrank"):
        assert tag in tags, tag
    assert [s.step for s in acc.Scalars("calm/utility")] == [2]
    assert [s.step for s in acc.Scalars("calm/episode/total_equity")] == [0, 1, 2, 3]
    assert "calm/cross_play/random" in tags
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert acc.Scalars("calm/utility")[0].value == pytest.approx(
        float(rows[0]["utility_mean"]), rel=1e-5
    )
    text = EventAccumulator(str(out / "tb" / "tournament"), size_guidance={"tensors": 0})
    text.Reload()
    assert "tournament/results/text_summary" in text.Tags()["tensors"]


def test_cli_second_run_gives_the_same_numbers_and_refuses_a_used_folder(ran, capsys) -> None:
    path, out = ran
    again = path.parent / "again"
    sets = ["--set", "tensorboard=false"]
    assert main(["evaluate", str(path), "--out", str(again), *sets]) == 0
    printed = capsys.readouterr().out
    assert "# Tournament `cli`" in printed and "equilibrium gap:" in printed
    for name in ("results.csv", "per_world.csv", "cross_play.csv"):
        assert (again / name).read_text() == (out / name).read_text(), name
    assert not (again / "tb").exists()
    assert main(["evaluate", str(path), "--out", str(out), "--quiet"]) == 2
    assert "is not an empty directory" in capsys.readouterr().err


def test_cli_bad_input_exits_2_naming_the_field(tmp_path, capsys) -> None:
    path = write_yaml(tmp_path)
    assert main(["evaluate", str(path), "--set", "seeds=1", "--quiet"]) == 2
    assert "seeds = 1 is not allowed" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "tournamnt.yaml"), "--quiet"]) == 2
    assert "did you mean" in capsys.readouterr().err  # tournament.yaml
    # a checkpoint built for another observation size fails before anything runs
    policy_file(tmp_path / "other", max_counterparties=2)
    sets = ["--set", f"checkpoints.trained={tmp_path / 'other' / 'policy.pt'}"]
    assert main(["evaluate", str(path), *sets, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "populations.trained cannot play scenario calm" in err
    assert not (tmp_path / "x").exists()
