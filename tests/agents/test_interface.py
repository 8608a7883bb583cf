"""The one agent interface: RandomAgent, HeuristicAgent, EnvView and mixed Populations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rudra_env
from agents import (
    Agent,
    EnvView,
    EquilibriumAgent,
    HeuristicAgent,
    Population,
    RandomAgent,
)
from rudra_env.actions import BORROW, DIVEST, INVEST, LEND, ActionLayout
from rudra_env.core import action_masks, observe
from rudra_env.core.network import initial_state
from rudra_env.core.params import Params
from rudra_env.errors import ConfigError, InputError

SMALL = "configs/env/small.yaml"


def test_random_agent_respects_masks_and_seed():
    rng = np.random.default_rng(0)
    masks = (rng.random((1, 5, 37)) < 0.2).astype(np.int8)
    masks[..., 0] = 1
    masks[0, 4] = 0  # a dead bank: nothing legal
    draws = np.stack([RandomAgent(seed=s).act_arrays(None, masks, None)[0] for s in range(300)])
    for i in range(4):
        legal = set(np.flatnonzero(masks[0, i]))
        assert set(draws[:, i]) == legal, "every legal action is drawn, and only those"
    assert (draws[:, 4] == 0).all()
    a, b = RandomAgent(seed=7), RandomAgent(seed=7)
    np.testing.assert_array_equal(a.act_arrays(None, masks, None), b.act_arrays(None, masks, None))


def _obs(
    layout: ActionLayout,
    *,
    lev=1.0,
    liq=0.1,
    beliefs=(0.0,) * 4,
    lent=(0.1,) * 4,
    returns=(0.0, 0.0),
) -> np.ndarray:
    """A hand-made observation (layout of rudra_env.core.observe) for K = 4, M = 2."""
    k, m = layout.K, layout.M
    o = np.zeros(10 + 5 * k + 2 * m + 2, dtype=np.float32)
    o[0], o[1], o[2] = 1.0, lev, liq
    for s in range(k):
        o[10 + 5 * s : 15 + 5 * s] = [1, 1, lent[s], 0.0, beliefs[s]]
    o[10 + 5 * k : 10 + 5 * k + m] = 1.0
    o[10 + 5 * k + m : 10 + 5 * k + 2 * m] = returns
    return o


def test_heuristic_rules_by_hand():
    """Each rule of the HeuristicAgent table on a hand-made observation (floor 0.05)."""
    lay = ActionLayout(K=4, M=2, S=3)
    full = np.ones(lay.n, dtype=np.int8)
    cases = {
        # rule 1: slots 1 and 2 are distrusted (>= 0.5); call back from the worst, largest size
        "call": (_obs(lay, beliefs=(0.1, 0.6, 0.7, 0.0)), full, lay.encode(BORROW, 2, 2)),
        # rule 2: leverage 20% over target; divest the market with the worst last return
        "divest": (_obs(lay, lev=1.2, returns=(1.0, -3.0)), full, lay.encode(DIVEST, 1, 2)),
        # rule 3: under target and liquid (0.2 >= 1.5 * 0.05): lend to the most trusted slot
        "lend": (
            _obs(lay, lev=0.9, liq=0.2, beliefs=(0.1, 0.05, 0.3, 0.15)),
            full,
            lay.encode(LEND, 1, 0),
        ),
        # rule 4: cash above its floor: invest in the market with the best last return
        "invest": (_obs(lay, liq=0.06, returns=(1.0, -3.0)), full, lay.encode(INVEST, 0, 0)),
        # rule 5: at the floor: hold
        "hold": (_obs(lay, liq=0.04), full, 0),
    }
    # rule 1 falls to the next distrusted slot when calling slot 2 is masked (nothing lent)
    no_call2 = full.copy()
    no_call2[lay.encode(BORROW, 2, 2)] = 0
    cases["call_masked"] = (
        _obs(lay, beliefs=(0.1, 0.6, 0.7, 0.0)),
        no_call2,
        lay.encode(BORROW, 1, 2),
    )
    # no cash: lending and investing are masked, so an under-levered bank holds
    no_cash = full.copy()
    no_cash[lay.offsets[LEND] : lay.offsets[BORROW]] = 0
    no_cash[lay.offsets[INVEST] : lay.offsets[DIVEST]] = 0
    cases["no_cash"] = (_obs(lay, lev=0.9, liq=0.2), no_cash, 0)
    obs = np.stack([c[0] for c in cases.values()])[None]
    masks = np.stack([c[1] for c in cases.values()])[None]
    got = HeuristicAgent(layout=lay, liquidity_floor=0.05).act_arrays(obs, masks, None)[0]
    want = [c[2] for c in cases.values()]
    assert dict(zip(cases, got.tolist(), strict=True)) == dict(zip(cases, want, strict=True))


def test_heuristic_act_and_act_batch_agree_and_are_legal():
    env = rudra_env.parallel_env(SMALL)
    obs, _ = env.reset(seed=1)
    h = HeuristicAgent()
    for _ in range(5):
        view = EnvView.from_env(env)
        acts = h.act(obs, view)
        batch = h.act_batch(view.state, view.params)[0]
        assert acts == {a: int(batch[view.index(a)]) for a in obs}
        assert all(obs[a]["action_mask"][v] == 1 for a, v in acts.items())
        obs, *_ = env.step(acts)
    with pytest.raises(InputError, match="layout"):
        HeuristicAgent().act(obs)
    with pytest.raises(ConfigError, match="call_belief = 2"):
        HeuristicAgent(call_belief=2)
    with pytest.raises(ConfigError, match="lend_size = 5 is not a size level"):
        HeuristicAgent(lend_size=5).act(obs, EnvView.from_env(env))


def test_env_view_is_read_only_and_current():
    env = rudra_env.parallel_env(SMALL)
    env.reset(seed=0)
    view = EnvView.from_env(env)
    with pytest.raises(ValueError):
        view.state.cash[0, 0] = 1.0
    assert view.params is env.params and view.agents == tuple(env.possible_agents)
    assert view.index("bank_3") == 3
    with pytest.raises(InputError, match="'bank_x' is not an agent"):
        view.index("bank_x")
    copy = view.state.copy()
    copy.cash[0, 0] += 1.0  # copies are ordinary arrays
    assert copy.cash[0, 0] != env.core_state.cash[0, 0]
    assert view.with_fixed({"bank_2": 5}).fixed_array()[0, 2] == 5
    assert view.fixed_array()[0, 2] == -1


class SpyEquilibrium(EquilibriumAgent):
    """Records what the population showed it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen: list[tuple[set[str], dict[str, int]]] = []

    def act(self, observations, view=None):
        self.seen.append((set(observations), dict(view.fixed)))
        return super().act(observations, view)


def test_mixed_population_episode():
    """Trained-like, equilibrium and heuristic banks in one episode: each bank is answered by its
    own agent, and the equilibrium agent sees the others' actions as fixed."""
    env = rudra_env.parallel_env(SMALL, max_steps=6)
    obs, _ = env.reset(seed=2)
    eq = SpyEquilibrium(seed=0)
    rnd = RandomAgent(seed=0)
    heur = HeuristicAgent()
    pop = Population({"bank_0": eq, "bank_1": eq, 2: rnd, "bank_3": rnd}, default=heur)
    assert pop.needs_view and pop.members() == [eq, rnd, heur]
    assert isinstance(pop, Agent)
    steps = 0
    while env.agents:
        live = {a: obs[a] for a in env.agents}
        view = EnvView.from_env(env)
        expected_heur = heur.act(
            {a: live[a] for a in live if a not in ("bank_0", "bank_1", "bank_2", "bank_3")}, view
        )
        acts = pop.act(live, view)
        assert set(acts) == set(live)
        assert {a: acts[a] for a in expected_heur} == expected_heur
        names, fixed = eq.seen[-1]
        assert names == {"bank_0", "bank_1"} & set(live)
        assert fixed == {a: acts[a] for a in live if a not in names}
        assert eq.last_result.actions[0] == acts["bank_0"]
        obs, _, _, _, info = env.step(acts)
        assert not any(i["invalid_action"] for i in info.values())
        steps += 1
    assert steps == 6


def test_population_act_batch_matches_members():
    cfg = rudra_env.EnvConfig.from_yaml(SMALL)
    params = Params.from_config(cfg)
    state = initial_state(cfg, np.random.default_rng(9), worlds=3)
    heur = HeuristicAgent()
    pop = Population({0: EquilibriumAgent(seed=4), 1: EquilibriumAgent(seed=4)}, default=heur)
    acts = pop.act_batch(state, params)
    h = heur.act_batch(state, params)
    np.testing.assert_array_equal(acts[:, 2:], h[:, 2:])
    # Model-based members act in order: bank 0's agent sees banks 2.. fixed; bank 1's agent
    # also sees bank 0's choice.
    fixed = np.where(np.arange(cfg.num_banks) >= 2, h, -1)
    first = EquilibriumAgent(seed=4).act_batch(state, params, fixed)
    np.testing.assert_array_equal(acts[:, 0], first[:, 0])
    fixed[:, 0] = acts[:, 0]
    second = EquilibriumAgent(seed=4).act_batch(state, params, fixed)
    np.testing.assert_array_equal(acts[:, 1], second[:, 1])
    masks = action_masks(state, params)
    assert (np.take_along_axis(masks, acts[..., None], axis=2) == 1).all()
    assert observe(state, params).shape[:2] == acts.shape


def test_population_errors():
    with pytest.raises(ConfigError, match=r"assignment\['bank_0'\] = 3"):
        Population({"bank_0": 3})
    env = rudra_env.parallel_env(SMALL)
    obs, _ = env.reset(seed=0)
    with pytest.raises(InputError, match="'bank_1' .* has no agent"):
        Population({"bank_0": RandomAgent()}).act(obs, EnvView.from_env(env))
    with pytest.raises(InputError, match="needs view"):
        Population({}, default=EquilibriumAgent()).act(obs)


def test_agents_import_without_torch():
    """torch is optional: agents imports without it, and only building a TorchPolicyAgent asks
    for it."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import agents\n"
        "try:\n"
        "    agents.TorchPolicyAgent([], agents.PolicyArch(2, (), 2))\n"
        "except ImportError as e:\n"
        "    print('needs torch:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "needs torch: TorchPolicyAgent needs torch" in out
