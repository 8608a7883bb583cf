"""One rule for action values (``check_action``), the same on every path of ``step``."""

from __future__ import annotations

import enum

import numpy as np
import pytest

import rudra_env
from rudra_env import ActionError
from rudra_env.environment import check_action

N_ACTIONS = 61  # defaults: K = 8, M = 2, S = 3


@pytest.fixture
def env():
    env = rudra_env.parallel_env(num_banks=5)
    env.reset(seed=0)
    assert env.action_space("bank_0").n == N_ACTIONS
    return env


class Kind(enum.IntEnum):
    LEND_SLOT0 = 1


ACCEPTED = [3, np.int64(3), np.int32(3), np.uint8(3), np.intc(3), np.array(3), Kind.LEND_SLOT0]


@pytest.mark.parametrize("value", ACCEPTED, ids=repr)
def test_integer_values_are_actions(env, value):
    assert check_action("bank_1", value, N_ACTIONS) == int(value)
    _, _, _, _, infos = env.step({"bank_1": value})
    assert infos["bank_1"]["executed_action"] in (0, int(value))


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (np.array(3.0), "ndarray of shape (), dtype float64"),
        (np.array([3]), "ndarray of shape (1,), dtype int64"),
        (1.0, "float"),
        (np.float64(2.0), "float64"),
        (True, "bool"),
        (np.True_, "bool"),
        ("3", "str"),
        (None, "NoneType"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("alone", [True, False], ids=["alone", "among_ints"])
def test_wrong_types_name_agent_value_and_type(env, value, kind, alone):
    actions = {"bank_2": value} if alone else {**{a: 0 for a in env.agents}, "bank_2": value}
    t = env.num_steps
    with pytest.raises(ActionError) as info:
        env.step(actions)
    msg = str(info.value)
    assert msg.startswith(f"action of bank_2 = {value!r} ({kind}) is not an action")
    assert "0..60" in msg and "outside the action space" not in msg
    assert env.num_steps == t  # nothing ran
    with pytest.raises(ActionError) as direct:
        check_action("bank_2", value, N_ACTIONS)
    assert str(direct.value) == msg  # the same function speaks on both paths


@pytest.mark.parametrize("value", [N_ACTIONS, -1, np.int64(70), np.uint64(2**64 - 1), 2**70])
@pytest.mark.parametrize("alone", [True, False], ids=["alone", "among_ints"])
def test_out_of_range_integers_keep_the_action_space_message(env, value, alone):
    actions = {"bank_3": value} if alone else {**{a: 0 for a in env.agents}, "bank_3": value}
    with pytest.raises(ActionError) as info:
        env.step(actions)
    assert str(info.value) == (
        f"action of bank_3 = {int(value)} is outside the action space Discrete({N_ACTIONS}): "
        f"expected an integer in 0..{N_ACTIONS - 1}"
    )


def test_unknown_agent_is_named(env):
    with pytest.raises(ActionError, match="agent = 'bank_99' is not an agent"):
        env.step({"bank_0": 0, "bank_99": 0})
    with pytest.raises(ActionError, match="agent = 'bank_99' is not an agent"):
        env.step({"bank_99": 1.0})


def test_first_bad_pair_in_dict_order_is_reported(env):
    with pytest.raises(ActionError, match=r"^action of bank_1 = 'x'"):
        env.step({"bank_0": 0, "bank_1": "x", "bank_2": 1.5})


def test_action_error_is_a_value_error():
    with pytest.raises(ValueError, match="bank_0"):
        check_action("bank_0", 2.5, N_ACTIONS)
