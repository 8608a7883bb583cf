"""Step 8: beliefs, numbers worked out by hand.

Per counterparty slot, a signal says "distressed" with probability q = 0.8 if the counterparty
is distressed (equity / assets < 0.04, or dead) and 1 - q otherwise; with the signal uniform u
it says "distressed" when ``(u < q) == truth``. Bayes in odds form with LR = q / (1 - q) = 4 (or
1/4): ``post = b * LR / (1 + b * (LR - 1))``; then the leak pulls towards the prior,
``post = (1 - leak) * post + leak * prior`` (leak 0.1, prior 0.05); beliefs about neighbours of
a bank that fell move ``contagion_weight`` (0.3) of the way to 1; beliefs about the dead are 1.
"""

from __future__ import annotations

import pytest
from tiny import config, events, params, run, state

R = 1e-12
BELIEFS = {
    "prior": 0.05,
    "signal_reliability": 0.8,
    "distress_threshold": 0.04,
    "leak": 0.1,
    "contagion_weight": 0.3,
    "cascade_shift": 0.05,
    "cascade_fraction": 0.5,
}
# From b = 0.2: a "distressed" signal gives 0.2 * 4 / (1 + 0.2 * 3) = 0.5, then the leak
# 0.9 * 0.5 + 0.1 * 0.05 = 0.455; a "healthy" one 0.2 * 0.25 / (1 - 0.2 * 0.75) = 0.05 / 0.85,
# then 0.9 * 0.05 / 0.85 + 0.005.
UP = 0.455
DOWN = 0.9 * 0.05 / 0.85 + 0.005


def _distress_world(u: float):
    # Banks 0 and 1 healthy (cash 10, external 10: equity ratio 1); bank 2 distressed (cash 1,
    # external 99, deposits 97: equity / assets = 3 / 100 = 0.03 < 0.04). All beliefs 0.2.
    # Slots: 0 -> [1, 2], 1 -> [0, 2], 2 -> [0, 1].
    p = params(config(beliefs=BELIEFS))
    s = state(
        p,
        cash=[10.0, 10.0, 1.0],
        external=[10.0, 10.0, 99.0],
        deposits=[0.0, 0.0, 97.0],
        belief=[[0.2, 0.2]] * 3,
    )
    return run(s, p, u=u)


def test_bayes_update_and_leak_towards_the_prior():
    # u = 0.1 < q: the signal says "distressed" exactly about the distressed bank 2.
    s2, _ = _distress_world(0.1)
    assert s2.belief[0].tolist() == [
        pytest.approx([DOWN, UP], rel=R),
        pytest.approx([DOWN, UP], rel=R),
        pytest.approx([DOWN, DOWN], rel=R),
    ]


def test_a_misleading_signal_moves_beliefs_the_other_way():
    # u = 0.9 >= q: every signal lies: "distressed" about healthy banks, "healthy" about bank 2.
    s2, _ = _distress_world(0.9)
    assert s2.belief[0].tolist() == [
        pytest.approx([UP, DOWN], rel=R),
        pytest.approx([UP, DOWN], rel=R),
        pytest.approx([UP, UP], rel=R),
    ]


def test_default_pushes_beliefs_about_neighbours_and_the_dead_to_one():
    # bank 1 (external 1, deposits 5) is insolvent and owes bank 0 a loan of 1: bank 0 is its
    # neighbour. Bank 0 stays healthy (cash 10 + 1/6 recovered + external 89, no debt).
    # u = 0.1: "healthy" about the healthy, so without contagion every belief is DOWN.
    # bank 2's belief about bank 0: DOWN + 0.3 * (1 - DOWN); about bank 1 (dead): 1.
    # bank 0's belief about bank 1 (dead): 1; about bank 2 (not linked to bank 1): DOWN.
    p = params(config(beliefs=BELIEFS))
    s = state(
        p,
        cash=[10.0, 0.0, 10.0],
        loans=[[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        external=[89.0, 1.0, 10.0],
        deposits=[0.0, 5.0, 0.0],
        belief=[[0.2, 0.2]] * 3,
    )
    s2, out = run(s, p, u=0.1)
    assert out.defaulted[0].tolist() == [False, True, False]
    assert s2.belief[0, 0].tolist() == [1.0, pytest.approx(DOWN, rel=R)]
    assert s2.belief[0, 2].tolist() == [pytest.approx(DOWN + 0.3 * (1 - DOWN), rel=R), 1.0]


def _prior_world(u: float):
    # Three healthy banks, every belief at the prior 0.05, no leak.
    p = params(config(beliefs={**BELIEFS, "leak": 0.0}))
    s = state(p, cash=[10.0, 10.0, 10.0], external=[10.0, 10.0, 10.0])
    return run(s, p, u=u)


def test_belief_cascade_when_enough_banks_shift_together():
    # u = 0.9: "distressed" about everyone: 0.05 * 4 / (1 + 0.05 * 3) = 0.2 / 1.15; every
    # bank's mean belief moves by 0.2 / 1.15 - 0.05 = 0.1239 > 0.05: share 1 >= 0.5.
    s2, out = _prior_world(0.9)
    assert s2.belief[0].ravel().tolist() == pytest.approx([0.2 / 1.15] * 6, rel=R)
    assert out.belief_cascade[0]
    (ev,) = events(out, "belief_cascade")
    assert ev["share_shifted"] == 1.0
    assert ev["mean_belief"] == pytest.approx(0.2 / 1.15, rel=R)


def test_no_belief_cascade_when_shifts_are_small():
    # u = 0.1: "healthy": 0.05 * 0.25 / (1 - 0.05 * 0.75) = 0.0125 / 0.9625; the shift
    # 0.05 - 0.012987 = 0.037 < 0.05: no bank shifts, no cascade.
    s2, out = _prior_world(0.1)
    assert s2.belief[0].ravel().tolist() == pytest.approx([0.0125 / 0.9625] * 6, rel=R)
    assert not out.belief_cascade[0]
    assert events(out, "belief_cascade") == []
