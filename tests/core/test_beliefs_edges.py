"""Step 8 at its edges: which banks count as distressed at the boundaries of equity / assets,
a signal uniform equal to q, a reliability of exactly 1 (capped at 1 - 1e-9), a shift equal to
``cascade_shift`` and a world with one live bank. Numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, events, params, run, state

R = 1e-12


def _beliefs(**over):
    base = {
        "prior": 0.05,
        "signal_reliability": 0.8,
        "distress_threshold": 0.05,
        "leak": 0.0,
        "contagion_weight": 0.3,
        "cascade_shift": 0.05,
        "cascade_fraction": 1.0,
    }
    return {**base, **over}


def test_distress_at_zero_assets_small_assets_and_the_threshold():
    # q = 0.8, u = 0.1 < q: every signal tells the truth; leak 0; all beliefs 0.2.
    #   bank 1: nothing at all (assets 0, equity 0): ratio taken as 0 < 0.05 -> distressed;
    #   bank 2: cash 0.5 only: ratio 0.5 / 0.5 = 1 -> healthy (assets below 1 still count);
    #   bank 3: cash 10, deposits 9.5: ratio 0.5 / 10 = 0.05, not below 0.05 -> healthy.
    # "Distressed" from 0.2: 0.2 * 4 / (1 + 0.2 * 3) = 0.5; "healthy": 0.05 / 0.85.
    p = params(config(n=4, beliefs=_beliefs()))
    s = state(
        p,
        cash=[10.0, 0.0, 0.5, 10.0],
        external=[10.0, 0.0, 0.0, 0.0],
        deposits=[0.0, 0.0, 0.0, 9.5],
        belief=[[0.2, 0.2, 0.2]] * 4,
    )
    assert 0.5 / 10.0 == 0.05
    s2, out = run(s, p, u=0.1)
    assert s2.alive[0].all()
    # slots of bank 0: [1, 2, 3]
    assert s2.belief[0, 0].tolist() == pytest.approx([0.5, 0.05 / 0.85, 0.05 / 0.85], rel=R)


def test_a_uniform_equal_to_q_is_a_wrong_signal():
    # q = 0.75 and u = 0.75 (exact in float32): u < q fails, so the signal lies: it says
    # "distressed" about the healthy counterparty. LR = 0.75 / 0.25 = 3:
    # 0.2 * 3 / (1 + 0.2 * 2) = 3 / 7.
    p = params(config(n=2, beliefs=_beliefs(signal_reliability=0.75)))
    s = state(p, cash=[10.0, 10.0], external=[10.0, 10.0], belief=[[0.2], [0.2]])
    s2, _ = run(s, p, u=0.75)
    assert s2.belief[0, :, 0].tolist() == pytest.approx([3.0 / 7.0, 3.0 / 7.0], rel=R)


def test_a_perfectly_reliable_signal_is_capped_just_below_one():
    # q = 1 is used as qc = 1 - 1e-9, LR = qc / (1 - qc) ~ 1e9: finite beliefs, not 0 / 0.
    # Bank 1 is distressed (equity 3 of assets 100), bank 0 healthy; u = 0.5 < q: truthful.
    #   about bank 1: 0.2 LR / (1 + 0.2 (LR - 1)) = 1 / (1 + 4 / LR)       ~ 1 - 4e-9;
    #   about bank 0: 0.2 / LR / (1 + 0.2 (1 / LR - 1)) = 1 / (1 + 4 LR)   ~ 2.5e-10.
    p = params(config(n=2, beliefs=_beliefs(signal_reliability=1.0)))
    s = state(
        p,
        cash=[10.0, 1.0],
        external=[10.0, 99.0],
        deposits=[0.0, 97.0],
        belief=[[0.2], [0.2]],
    )
    s2, _ = run(s, p, u=0.5)
    qc = 1.0 - 1e-9
    lr = qc / (1.0 - qc)
    assert np.isfinite(s2.belief).all()
    assert s2.belief[0, 0, 0] == pytest.approx(1.0 / (1.0 + 4.0 / lr), rel=1e-12)
    assert s2.belief[0, 1, 0] == pytest.approx(1.0 / (1.0 + 4.0 * lr), rel=1e-6)
    assert s2.belief[0, 1, 0] > 0.0


def test_a_shift_equal_to_cascade_shift_is_not_a_shift():
    # q = 0.5: LR = 1 and leak 0, so beliefs stay at 0.5 exactly (0.5 / (1 + 0.5 - 0.5)):
    # every shift is 0, which is not more than cascade_shift = 0: no belief cascade even with
    # cascade_fraction 1.
    p = params(config(n=3, beliefs=_beliefs(signal_reliability=0.5, cascade_shift=0.0)))
    s = state(p, cash=[10.0] * 3, external=[10.0] * 3, belief=[[0.5, 0.5]] * 3)
    s2, out = run(s, p, u=0.1)
    assert s2.belief[0].tolist() == [[0.5, 0.5]] * 3
    assert out.belief_cascade.tolist() == [False]
    assert events(out, "belief_cascade") == []


def test_one_live_bank_is_the_whole_share_of_a_cascade():
    # Bank 1 is dead: bank 0's belief about it goes 0.5 -> 1 (shift 0.5 > 0.05). One live bank,
    # one shifted: share 1 / 1 = 1 >= cascade_fraction 0.75 -> a belief cascade (counting the
    # dead bank in the denominator would give 1 / 2 < 0.75).
    p = params(config(n=2, beliefs=_beliefs(cascade_fraction=0.75)))
    s = state(
        p,
        cash=[10.0, 0.0],
        external=[10.0, 0.0],
        belief=[[0.5], [0.5]],
        alive=[True, False],
    )
    s2, out = run(s, p, u=0.1)
    assert s2.belief[0, 0, 0] == 1.0
    assert out.belief_cascade.tolist() == [True]
    (ev,) = events(out, "belief_cascade")
    assert ev["share_shifted"] == 1.0
