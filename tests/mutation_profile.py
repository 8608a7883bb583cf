"""Hypothesis settings for mutation testing: a pytest plugin that ``make mutation`` loads.

pyproject.toml, ``[tool.mutmut]``, runs the tests with ``-p tests.mutation_profile
--hypothesis-profile=mutation``. A mutant is killed by the first failing example, so shrinking
it to a minimal one only costs time (several seconds a mutant); derandomised examples with no
database make every mutant, and every run, meet the same examples.
"""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile(
    "mutation", phases=(Phase.explicit, Phase.generate), derandomize=True, database=None
)
