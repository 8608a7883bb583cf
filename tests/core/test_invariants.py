"""Accounting invariants under arbitrary action sequences (hypothesis).

* Money is conserved: ``sum(cash) + outside`` never changes, and every movement of money across
  the banking system's boundary is carried by an event's ``outside_flow``.
* Balance sheets balance and stay well-formed: no negative holdings, no live bank with negative
  equity or cash once the cascade has run, defaulted banks hold and owe nothing, interbank assets
  of the system equal its interbank liabilities.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudra_env.config import EnvConfig, load_variants
from rudra_env.core import balance_sheet, initial_state, step
from rudra_env.core.params import Params
from tests.conftest import ROOT

BASE = {
    "bank_run": load_variants(ROOT / "configs/env/bank_run.yaml")["default"],
    "market_crash": load_variants(ROOT / "configs/env/market_crash.yaml")["default"],
    "ring": load_variants(ROOT / "configs/env/ring_vs_complete.yaml")["ring"],
}


def _configs() -> st.SearchStrategy[EnvConfig]:
    over = st.fixed_dictionaries(
        {
            "num_banks": st.integers(3, 12),
            "interest_rate": st.sampled_from([0.0, 0.001, 0.05]),
            "contagion.alpha": st.sampled_from([1.0, 0.7]),
            "contagion.beta": st.sampled_from([1.0, 0.8]),
            "profit_booking_interval": st.integers(1, 4),
            "topology.kind": st.sampled_from(
                ["erdos_renyi", "ring", "complete", "core_periphery", "barabasi_albert"]
            ),
        }
    )
    return st.tuples(st.sampled_from(sorted(BASE)), over).map(
        lambda t: BASE[t[0]].with_overrides({**t[1], "scenario": _scaled_scenario(t)})
    )


def _scaled_scenario(t):
    """Keep the preset's shocks, moved early so short episodes reach them, banks in range."""
    sc = BASE[t[0]].scenario
    n = t[1]["num_banks"]
    shocks = [
        {
            "type": s.type,
            "magnitude": s.magnitude,
            "start": 2,
            "duration": s.duration,
            "targets": [b for b in s.targets if isinstance(b, str) or b < n],
        }
        for s in sc.shocks
    ]
    ivs = [
        {"type": i.type, "step": 3, "bank": min(i.bank, n - 1), "amount": i.amount}
        for i in sc.interventions
    ]
    return {"name": sc.name, "shocks": shocks, "interventions": ivs}


def _check_state(s, tol=1e-7):
    bs = balance_sheet(s)
    scale = max(1.0, float(np.abs(bs["assets"]).sum()))
    for name in ("loans", "units", "external", "deposits", "basis"):
        arr = getattr(s, name)
        assert (arr >= -tol * scale).all(), f"{name} went negative: {arr.min()}"
    assert (s.price > 0).all()
    dead = ~s.alive
    assert np.all(s.cash[dead] == 0) and np.all(s.units[dead] == 0)
    assert all(np.all(s.loans[w][:, dead[w]] == 0) for w in range(s.shape[0])), "dead bank owed"
    assert np.all(s.loans.transpose(0, 2, 1)[dead] == 0) and np.all(s.loans[dead] == 0)
    assert (s.cash[s.alive] >= -tol * scale).all()
    assert np.isclose(bs["ib_assets"].sum(), bs["ib_liab"].sum(), rtol=1e-12, atol=1e-9)
    eq = bs["assets"] - bs["liabilities"]
    assert np.allclose(eq, bs["equity"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=_configs(),
    seed=st.integers(0, 2**31 - 1),
    raw=st.lists(st.integers(0, 10**6), min_size=8, max_size=8),
)
def test_money_conserved_and_every_flow_evented(cfg, seed, raw):
    p = Params.from_config(cfg)
    rng = np.random.default_rng(seed)
    s = initial_state(cfg, rng, worlds=2)
    total0 = s.cash.sum(axis=1) + s.outside
    act_rng = np.random.default_rng(raw[0])
    for t in range(8):
        # Any action in the space, legal or not (masked ones become HOLD).
        acts = act_rng.integers(0, p.layout.n, size=(2, cfg.num_banks))
        if raw[t] % 3 == 0:  # sometimes pile onto one kind to stress calls and runs
            acts[:] = raw[t] % p.layout.n
        before_outside = s.outside.copy()
        s, out = step(s, acts, p, rng)
        total = s.cash.sum(axis=1) + s.outside
        assert np.allclose(total, total0, rtol=1e-10, atol=1e-8), (total, total0)
        for w in range(2):
            flows = sum(e.data.get("outside_flow", 0.0) for e in out.record.events(w))
            assert np.isclose(flows, s.outside[w] - before_outside[w], rtol=1e-9, atol=1e-8)
        _check_state(s)
        assert s.in_sync(), "derived interbank arrays drifted from the loans"
        assert not (out.defaulted & s.alive).any()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 5))
def test_interbank_transfers_change_no_total(seed, k):
    """LEND and BORROW only move money between banks: with no market holdings (so a call is
    never met by selling units to the outside), cash enough to meet every call (60% of assets,
    10% lent), no interest, no margin and no booking, total cash is unchanged by any number of
    lend/call steps, and the outside never moves."""
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 6,
            "banks": {"cash_ratio": 0.6, "interbank_ratio": 0.1, "market_ratio": 0.0},
            "interest_rate": 0.0,
            "profit_booking_interval": 1000,
            "markets": [{"name": "A", "volatility": 0.0, "impact": 0.0}],
            "margin": {"enabled": False},
            "topology": {"kind": "complete"},
        }
    )
    p = Params.from_config(cfg)
    rng = np.random.default_rng(seed)
    s = initial_state(cfg, rng)
    cash0 = s.cash.sum()
    lay = p.layout
    interbank = [a for a in range(lay.n) if lay.decode(a)[0] in (1, 2)]
    for _ in range(k):
        acts = rng.choice(interbank, size=(1, 6))
        s, out = step(s, acts, p, rng)
        assert s.alive.all()
    assert np.isclose(s.cash.sum(), cash0, rtol=1e-12)
    assert s.outside[0] == 0.0
