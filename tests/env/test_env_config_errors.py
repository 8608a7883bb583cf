"""Config files and seeds: errors that name the file, line, path, value and what is allowed."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

import rudra_env
from rudra_env import ConfigError, EnvConfig
from rudra_env.config import load_variants


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("num_banks: 5\ntopology:\n  kind: ring\n   p: 0.3\n")
    for load in (EnvConfig.from_yaml, load_variants, rudra_env.parallel_env):
        with pytest.raises(ConfigError) as info:
            load(path)
        msg = str(info.value)
        assert str(path) in msg and "line 4" in msg and "YAML syntax error" in msg


def test_yaml_unclosed_bracket_names_file_and_line(tmp_path):
    path = tmp_path / "bracket.yaml"
    path.write_text("num_banks: 5\nsize_levels: [0.1, 0.2\nmax_steps: 10\n")
    with pytest.raises(ConfigError, match=rf"{path.name}', line \d+, column \d+: YAML syntax"):
        EnvConfig.from_yaml(path)


def test_unsafe_tag_is_a_config_error_and_a_yaml_error(tmp_path):
    path = tmp_path / "tag.yaml"
    path.write_text("num_banks: 4\nmax_steps: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"tag\.yaml', line 2, column 12: YAML error: ") as info:
        EnvConfig.from_yaml(path)
    assert isinstance(info.value, yaml.YAMLError)  # what callers of yaml.safe_load caught


def test_non_utf8_file_is_a_config_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"scenario:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        EnvConfig.from_yaml(path)


def test_missing_relative_path_names_path_and_directory_searched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        rudra_env.parallel_env("configs/env/small.yaml")
    msg = str(info.value)
    assert "config path = 'configs/env/small.yaml' does not exist" in msg
    assert f"searched {tmp_path / 'configs' / 'env'}" in msg
    assert f"current directory, {tmp_path}" in msg


def test_missing_path_suggests_a_close_yaml_name(root, monkeypatch):
    monkeypatch.chdir(root)
    with pytest.raises(ConfigError, match=r"did you mean 'configs/env/small\.yaml'\?"):
        EnvConfig.from_yaml(os.path.join("configs", "env", "smal.yaml"))


def test_directory_is_not_a_config_file(root):
    with pytest.raises(ConfigError, match="is a directory, not a YAML file"):
        load_variants(root / "configs" / "env")


@pytest.mark.parametrize("seed", [-1, "abc", 1.5, True, [1, 2]], ids=repr)
def test_bad_seed_names_value_and_what_is_allowed(seed):
    env = rudra_env.parallel_env(num_banks=4)
    with pytest.raises(ConfigError) as info:
        env.reset(seed=seed)
    msg = str(info.value)
    assert msg.startswith(f"seed = {seed!r} ({type(seed).__name__}) is not allowed")
    assert "None" in msg and "an integer >= 0" in msg


@pytest.mark.parametrize("seed", [0, 7, np.int64(7), 2**70], ids=repr)
def test_integer_seeds_are_accepted(seed):
    env = rudra_env.parallel_env(num_banks=4)
    obs, _ = env.reset(seed=seed)
    assert set(obs) == set(env.possible_agents)
