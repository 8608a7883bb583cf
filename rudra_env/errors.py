"""The exception hierarchy of RUDRA.

Every error names the field (or agent), the value received and what is allowed, so that a user
can act on the message without reading the code.
"""

from __future__ import annotations

__all__ = ["RudraError", "ConfigError", "ActionError", "InputError", "ResetNeeded"]


class RudraError(Exception):
    """Base class of every error raised by RUDRA."""


class ConfigError(RudraError, ValueError):
    """A configuration value (YAML file or key, keyword override) or an argument of the env's
    methods (``reset(seed=...)``, ``render_mode``, a control's bank or amount) is unknown, out of
    range or unreadable."""


class ActionError(RudraError, ValueError):
    """An agent submitted an action outside its action space, or a value that is not an action
    (wrong type)."""


class InputError(RudraError, ValueError):
    """An array passed to a library function has the wrong shape, sign or dtype."""


class ResetNeeded(RudraError, RuntimeError):
    """The env was used out of order: ``step`` (or a state read) before ``reset()``, or ``step``
    after the episode ended (``agents`` is empty)."""
