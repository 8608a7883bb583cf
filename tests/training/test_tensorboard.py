"""TensorBoard output (training/tensorboard.py): the metrics on hand-built states, the callback's
window on chosen actions, and a tiny MaskablePPO run whose event files are read back with
tensorboard's ``EventAccumulator``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="TensorBoard logging needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="TensorBoard logging needs the `train` extra")
pytest.importorskip("tensorboard", reason="TensorBoard logging needs the `train` extra")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from rudra_env.actions import BORROW, DIVEST, INVEST, KIND_NAMES, LEND, ActionLayout  # noqa: E402
from rudra_env.core import NetworkState  # noqa: E402
from rudra_env.core.events import Event  # noqa: E402
from rudra_env.errors import ConfigError  # noqa: E402
from training.tensorboard import (  # noqa: E402
    ModelAgent,
    RolloutRecorder,
    SystemicMetricsCallback,
    action_kind_shares,
    custom_scalars_layout,
    default_rate,
    events_markdown,
    log_hparams,
    solvency_ratios,
    tensorboard_writer,
    total_equity,
)
from training.vec_env import RudraVecEnv  # noqa: E402

SMALL = Path(__file__).resolve().parents[2] / "configs" / "env" / "small.yaml"
ALL = {"scalars": 0, "images": 0, "histograms": 0, "tensors": 0}


def hand_state() -> NetworkState:
    """Two worlds of three banks, one market at price 2 (every number chosen by hand).

    World 0: bank 0 has cash 10, lent 5 to bank 1, holds 1 unit, owes depositors 12: assets 17,
    equity 5; bank 1 has cash 4, external assets 6 and borrowed 5: assets 10, equity 5; bank 2
    has defaulted. World 1: equities 3 - 1 = 2, 1 and 2 - 3 = -1 (insolvent but not yet
    resolved), all alive.
    """
    b, n, m, k = 2, 3, 1, 2
    loans = np.zeros((b, n, n))
    loans[0, 0, 1] = 5.0
    units = np.zeros((b, n, m))
    units[0, 0, 0] = 1.0
    slots = np.tile(np.array([[1, 2], [0, 2], [0, 1]]), (b, 1, 1))
    return NetworkState(
        cash=np.array([[10.0, 4.0, 0.0], [3.0, 1.0, 2.0]]),
        loans=loans,
        units=units,
        basis=units * 2.0,
        external=np.array([[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]]),
        deposits=np.array([[12.0, 0.0, 0.0], [1.0, 0.0, 3.0]]),
        alive=np.array([[True, True, False], [True, True, True]]),
        price=np.full((b, m), 2.0),
        price0=np.full((b, m), 2.0),
        depth=np.full((b, m), 100.0),
        last_return=np.zeros((b, m)),
        vol2=np.zeros((b, m)),
        slots=slots,
        belief=np.full((b, n, k), 0.05),
        equity0=np.ones((b, n)),
        equity_prev=np.ones((b, n)),
        target_leverage=np.full((b, n), 10.0),
        risk_factor=np.full((b, n), 0.5),
        default_step=np.array([[-1, -1, 3], [-1, -1, -1]]),
        outside=np.zeros(b),
        t=np.array([4, 4]),
    )


def test_state_metrics_on_a_hand_built_state() -> None:
    s = hand_state()
    assert default_rate(s) == pytest.approx(1 / 6, abs=1e-15)
    # world 0: 5 + 5 (bank 2 defaulted); world 1: 2 + 1 - 1; mean over worlds
    assert total_equity(s) == pytest.approx((10.0 + 2.0) / 2, abs=1e-12)
    ratio, leverage = solvency_ratios(s)
    np.testing.assert_allclose(ratio, [5 / 17, 5 / 10, 2 / 3, 1 / 1, -1 / 2], atol=1e-15)
    np.testing.assert_allclose(leverage, [17 / 5, 10 / 5, 3 / 2, 1 / 1], atol=1e-15)


def test_action_kind_shares_count_masked_actions_as_hold() -> None:
    layout = ActionLayout(2, 1, 2)  # K = 2 slots, M = 1 market, S = 2 sizes: A = 13
    actions = np.array(
        [
            0,
            layout.encode(LEND, 0, 1),
            layout.encode(LEND, 1, 0),
            layout.encode(INVEST, 0, 0),
            layout.encode(DIVEST, 0, 1),
            layout.encode(BORROW, 1, 1),
        ]
    )
    legal = np.ones((6, layout.n), dtype=bool)
    legal[5, actions[5]] = False  # the BORROW is masked out: executed as HOLD
    shares, invalid = action_kind_shares(actions, layout, legal)
    assert shares == {"HOLD": 2 / 6, "LEND": 2 / 6, "BORROW": 0.0, "INVEST": 1 / 6, "DIVEST": 1 / 6}
    assert invalid == 1 / 6
    shares, invalid = action_kind_shares(actions, layout)
    assert shares["BORROW"] == 1 / 6 and shares["HOLD"] == 1 / 6 and invalid == 0.0
    assert action_kind_shares(np.zeros(0, np.int64), layout) == (
        dict.fromkeys(KIND_NAMES, 0.0),
        0.0,
    )


def test_callback_window_is_exact_on_chosen_actions(tmp_path: Path) -> None:
    """Drive the callback by hand over two vec-env steps of chosen actions: the recorded
    values are the means over the window's live slots and steps."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import configure

    venv = RudraVecEnv(SMALL, worlds=2, seed=3)
    model = MaskablePPO("MlpPolicy", venv, n_steps=8, batch_size=16, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    venv.reset()
    cb = SystemicMetricsCallback(groups={"even": [0, 2, 4, 6, 8], "odd": ["bank_1", 3, 5, 7, 9]})
    cb.init_callback(model)
    cb.on_training_start({}, {})
    layout, rng = venv.params.layout, np.random.default_rng(0)
    sent, got, equity, default_share = [], [], [], []
    for _ in range(2):
        masks = venv.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in masks])
        obs, rewards, dones, infos = venv.step(actions)
        sent.append(actions)
        got.append(rewards)
        equity.append(total_equity(venv.state))
        default_share.append(default_rate(venv.state))
        cb.update_locals({"actions": actions, "rewards": rewards, "infos": infos})
        cb.on_step()
    cb.on_rollout_end()
    logged = model.logger.name_to_value
    shares, invalid = action_kind_shares(np.concatenate(sent), layout)
    for kind in KIND_NAMES:
        assert logged[f"rudra/actions/{kind}"] == pytest.approx(shares[kind], abs=1e-12)
    assert logged["rudra/invalid_action_share"] == 0.0
    rewards = np.stack(got).astype(
        np.float64
    )  # (2 steps, 20 slots): slot w * 10 + i is bank i of world w
    assert logged["rudra/mean_utility"] == pytest.approx(rewards.mean(), abs=1e-9)
    assert logged["rudra/utility/even"] == pytest.approx(rewards[:, 0::2].mean(), abs=1e-9)
    assert logged["rudra/utility/odd"] == pytest.approx(rewards[:, 1::2].mean(), abs=1e-9)
    assert logged["rudra/total_equity"] == pytest.approx(np.mean(equity), abs=1e-9)
    assert logged["rudra/default_rate"] == pytest.approx(np.mean(default_share), abs=1e-12)
    assert set(logged) >= {"rudra/cascade_size", "rudra/price/BANK_INDEX"}


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="log_every = 0"):
        SystemicMetricsCallback(log_every=0)
    with pytest.raises(ConfigError, match="every = -5"):
        RolloutRecorder(SMALL, every=-5)


def test_events_markdown_keeps_systemic_events_when_capped() -> None:
    events = [Event("transaction", 1, 0, {"bank": i, "amount": 0.5}) for i in range(5)]
    events.insert(3, Event("default", 1, 0, {"bank": 7, "round": 1}))
    events.append(Event("step_end", 1, 0, {}))
    table = events_markdown(events, max_rows=3)
    rows = [line for line in table.splitlines() if line.startswith("| 1 |")]
    assert rows[0].startswith("| 1 | transaction | bank=0")
    assert rows[2] == "| 1 | default | bank=7; round=1 |"
    assert len(rows) == 3 and "3 of 6 events not shown" in table


# ---------------------------------------------------------------------- a tiny training run
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MaskablePPO, 2 worlds x 10 banks, 2 rollouts of 16 steps (640 timesteps), with both
    callbacks (the recorder every rollout: 2 recordings) and log_hparams at the end."""
    from sb3_contrib import MaskablePPO

    tb = tmp_path_factory.mktemp("tb")
    venv = RudraVecEnv(SMALL, worlds=2, seed=0)
    model = MaskablePPO(
        "MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, tensorboard_log=str(tb)
    )
    metrics = SystemicMetricsCallback(groups={"core": [0, 1, 2], "rest": range(3, 10)})
    recorder = RolloutRecorder(venv.config, every=16, seed=0, frame_every=5, max_event_rows=50)
    model.learn(640, callback=[metrics, recorder])
    final = {"mean_utility": model.logger.name_to_value.get("rudra/mean_utility", -1.0)}
    config = {"algo": {"name": "MaskablePPO", "n_steps": 16, "net_arch": [64, 64]}, "seed": 0}
    log_hparams(tensorboard_writer(model.logger), config, final, model.num_timesteps)
    assert len(recorder.runs) == 2
    return Path(model.logger.dir)


def accumulate(path: Path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance=ALL)
    acc.Reload()
    return acc


def test_training_run_has_the_systemic_scalars_and_histograms(run_dir: Path) -> None:
    acc = accumulate(run_dir)
    tags = acc.Tags()
    expected = {
        "rudra/default_rate",
        "rudra/cascade_size",
        "rudra/total_equity",
        "rudra/price/BANK_INDEX",
        "rudra/price/FIN_SERVICES",
        "rudra/mean_utility",
        "rudra/utility/core",
        "rudra/utility/rest",
        "rudra/invalid_action_share",
        "train/loss",  # SB3's own scalars land in the same run
        *(f"rudra/actions/{k}" for k in KIND_NAMES),
    }
    assert expected <= set(tags["scalars"]), expected - set(tags["scalars"])
    assert [e.step for e in acc.Scalars("rudra/default_rate")] == [320, 640]
    shares = sum(acc.Scalars(f"rudra/actions/{k}")[-1].value for k in KIND_NAMES)
    assert shares == pytest.approx(1.0, abs=1e-6)
    assert {"rudra/hist/equity_ratio", "rudra/hist/leverage"} <= set(tags["histograms"])


def test_training_run_has_layout_and_hparams(run_dir: Path) -> None:
    from tensorboard.plugins.custom_scalar import layout_pb2

    acc = accumulate(run_dir)
    layout = layout_pb2.Layout()
    layout.ParseFromString(acc.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    titles = [c.title for c in layout.category]
    assert titles == list(custom_scalars_layout()) == ["Systemic", "Markets", "Utility", "Actions"]
    hparams = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert b"algo.n_steps" in hparams["_hparams_/session_start_info"]
    assert acc.Scalars("final/mean_utility")[0].step == 640


def test_recorded_rollouts_have_images_events_and_metrics(run_dir: Path) -> None:
    runs = sorted(run_dir.glob("rollout_t*"))
    assert [r.name for r in runs] == ["rollout_t000000320", "rollout_t000000640"]
    acc = accumulate(runs[-1])
    images = acc.Images("rollout/network")
    assert [i.step for i in images] == list(range(0, 51, 5))  # small.yaml: 50 steps
    assert images[0].width == images[0].height == 480
    text = acc.Tensors("rollout/events/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text.startswith("| step | type | details |") and "| 0 | init |" in text
    scalars = set(acc.Tags()["scalars"])
    assert {"rollout/default_rate", "rollout/total_equity", "rollout/price/BANK_INDEX"} <= scalars
    assert len(acc.Scalars("rollout/default_rate")) == 51


def test_model_agent_acts_for_a_batch_of_banks_within_their_masks() -> None:
    from sb3_contrib import MaskablePPO

    import rudra_env

    venv = RudraVecEnv(SMALL, worlds=1, seed=0)
    agent = ModelAgent(MaskablePPO("MlpPolicy", venv, seed=0))
    env = rudra_env.parallel_env(SMALL)
    obs, _ = env.reset(seed=1)
    actions = agent.act(obs)
    assert list(actions) == env.agents
    assert all(obs[a]["action_mask"][actions[a]] for a in actions)
    venv.reset()
    batch = agent.act_batch(venv.state, venv.params)
    masks = venv.action_masks()
    assert batch.shape == (1, 10) and masks[np.arange(10), batch[0]].all()


def test_cascade_size_from_the_state_and_from_a_step_output(tmp_path: Path) -> None:
    """Without ``last_output`` a world-step's defaults count as one round (``default_step ==
    t``); with it, defaults over the core's cascade rounds."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import configure

    from rudra_env.core import StepOutput

    venv = RudraVecEnv(SMALL, worlds=2, seed=0)
    model = MaskablePPO("MlpPolicy", venv, n_steps=8, batch_size=16, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    venv.reset()
    cb = SystemicMetricsCallback()
    cb.init_callback(model)
    cb.on_training_start({}, {})
    hold = np.zeros(venv.num_envs, dtype=np.int64)
    venv.step(hold)
    venv.last_output = None  # as a vec env that does not expose its step's output
    s = venv.state
    s.alive[0, [1, 2, 3]] = False  # three banks of world 0 fell this step, one of world 1
    s.default_step[0, [1, 2, 3]] = s.t[0]
    s.alive[1, 4] = False
    s.default_step[1, 4] = s.t[1]
    cb.update_locals({"actions": hold, "rewards": np.zeros(venv.num_envs), "infos": []})
    cb.on_step()
    cb.on_rollout_end()
    assert model.logger.name_to_value["rudra/cascade_size"] == 4 / 2
    assert model.logger.name_to_value["rudra/default_rate"] == 4 / 20

    defaulted = np.zeros((2, 10), dtype=bool)
    defaulted[0, :6] = True
    venv.last_output = StepOutput(  # what a vec env exposing its last step would give
        rewards=np.zeros((2, 10)),
        defaulted=defaulted,
        invalid=np.zeros((2, 10), dtype=bool),
        executed=np.zeros((2, 10), dtype=np.int64),
        cascade_rounds=np.array([3, 0]),
        belief_cascade=np.zeros(2, dtype=bool),
        record=None,
        balance={},
    )
    cb.update_locals({"actions": hold, "rewards": np.zeros(venv.num_envs), "infos": []})
    cb.on_step()
    cb.on_rollout_end()
    assert model.logger.name_to_value["rudra/cascade_size"] == 6 / 3
