"""Packaging metadata: an SPDX license string (PEP 639), and a backend that reads it."""

from __future__ import annotations

import tomllib


def test_license_is_an_spdx_string_and_setuptools_is_new_enough(root):
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]  # PEP 639 support


def test_readme_stands_alone(root):
    text = (root / "README.md").read_text()
    assert "DESIGN" not in text and "../shared" not in text
    assert "## The model" in text
