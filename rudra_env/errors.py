"""The exception hierarchy of RUDRA.

Every error names the field (or agent), the value received and what is allowed, so that a user
can act on the message without reading the code.
"""

from __future__ import annotations

__all__ = ["RudraError", "ConfigError", "ActionError", "InputError"]


class RudraError(Exception):
    """Base class of every error raised by RUDRA."""


class ConfigError(RudraError, ValueError):
    """A configuration value (YAML key or keyword override) is unknown or out of range."""


class ActionError(RudraError, ValueError):
    """An agent submitted an action outside its action space."""


class InputError(RudraError, ValueError):
    """An array passed to a library function has the wrong shape, sign or dtype."""
