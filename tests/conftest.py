from __future__ import annotations

from pathlib import Path

import pytest

from rudra_env.config import load_variants

ROOT = Path(__file__).resolve().parents[1]
ENV_CONFIGS = sorted((ROOT / "configs" / "env").glob("*.yaml"))


def env_config_cases() -> list:
    """(id, EnvConfig) for every YAML in configs/env/ and each of its variants."""
    cases = []
    for path in ENV_CONFIGS:
        for name, cfg in load_variants(path).items():
            cases.append(pytest.param(cfg, id=f"{path.stem}:{name}"))
    return cases


@pytest.fixture
def root() -> Path:
    return ROOT
