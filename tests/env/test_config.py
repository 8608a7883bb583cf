from __future__ import annotations

import pytest
import yaml

from rudra_env import ConfigError, EnvConfig
from rudra_env.config import load_variants
from tests.conftest import ENV_CONFIGS


def test_presets_exist_and_load():
    names = {p.stem for p in ENV_CONFIGS}
    assert {"small", "default", "large", "market_crash", "bank_run", "ring_vs_complete"} <= names
    sizes = {p.stem: EnvConfig.from_yaml(p).num_banks for p in ENV_CONFIGS}
    assert sizes["small"] == 10 and sizes["default"] == 30 and sizes["large"] == 200


def test_unknown_key_suggests_closest_name():
    with pytest.raises(ConfigError, match=r"unknown key 'topolgy'; did you mean 'topology'"):
        EnvConfig.from_dict({"topolgy": {"kind": "ring"}})
    with pytest.raises(ConfigError, match=r"'reward.rhoo'.*did you mean 'rho'"):
        EnvConfig.from_dict({"reward": {"rhoo": 1.0}})


@pytest.mark.parametrize(
    ("data", "field", "allowed"),
    [
        ({"num_banks": 1}, "num_banks", "integer in"),
        ({"num_banks": "ten"}, "num_banks", "integer"),
        ({"topology": {"kind": "star"}}, "topology.kind", "one of"),
        ({"banks": {"risk_factor": 1.5}}, "banks.risk_factor", r"\[0.0, 1.0\]"),
        ({"banks": {"capital": [10, 10]}}, "banks.capital", "exactly num_banks"),
        ({"contagion": {"alpha": -0.1}}, "contagion.alpha", r"\[0.0, 1.0\]"),
        ({"size_levels": [0.1, 0.0]}, r"size_levels\[1\]", r"\(0.0, 1.0\]"),
        ({"scenario": {"shocks": [{"type": "meteor"}]}}, r"scenario.shocks\[0\].type", "one of"),
        (
            {"scenario": {"interventions": [{"bank": 99}]}},
            r"scenario.interventions\[0\].bank",
            "integer in",
        ),
        ({"markets": [{"name": "A"}, {"name": "A"}]}, "markets", "distinct"),
        ({"banks": {"capital": {"dist": "uniform", "low": 5}}}, "banks.capital.high", "required"),
    ],
)
def test_bad_value_names_field_value_and_allowed(data, field, allowed):
    with pytest.raises(ConfigError, match=field) as info:
        EnvConfig.from_dict(data)
    assert "expected" in str(info.value)
    assert pytest.importorskip("re").search(allowed, str(info.value))


def test_roundtrip_and_overrides():
    cfg = EnvConfig.from_yaml(ENV_CONFIGS[0])
    assert EnvConfig.from_dict(cfg.to_dict()) == cfg
    over = cfg.with_overrides({"num_banks": 12, "topology.kind": "ring", "reward.rho": 0.0})
    assert (over.num_banks, over.topology.kind, over.reward.rho) == (12, "ring", 0.0)
    with pytest.raises(ConfigError, match="did you mean 'kind'"):
        cfg.with_overrides({"topology.knd": "ring"})


def test_variants(root):
    variants = load_variants(root / "configs/env/ring_vs_complete.yaml")
    assert set(variants) == {"ring", "complete"}
    assert variants["ring"].topology.kind == "ring"
    assert variants["complete"].topology.kind == "complete"
    assert variants["ring"].num_banks == variants["complete"].num_banks


def test_yaml_is_loaded_safely(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_banks: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(yaml.YAMLError):
        EnvConfig.from_yaml(bad)


def test_from_file_topology(tmp_path):
    import numpy as np

    mat = np.zeros((4, 4))
    mat[0, 1] = mat[1, 2] = mat[2, 3] = mat[3, 0] = 5.0
    path = tmp_path / "exp.csv"
    np.savetxt(path, mat, delimiter=",")
    cfg = EnvConfig.from_dict(
        {"num_banks": 4, "topology": {"kind": "from_file", "path": str(path)}}
    )
    from rudra_env.core.network import initial_state

    s = initial_state(cfg, np.random.default_rng(0))
    assert np.array_equal(s.loans[0], mat)
    np.savez(tmp_path / "exp.npz", exposures=mat[:3, :3])
    cfg3 = cfg.with_overrides({"topology.path": str(tmp_path / "exp.npz")})
    with pytest.raises(ConfigError, match=r"\(3, 3\) matrix: expected \(4, 4\)"):
        initial_state(cfg3, np.random.default_rng(0))
