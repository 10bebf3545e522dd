"""Process-wide settings: ``jaxinit.config.strict`` (or ``JAXINIT_STRICT=1``)."""

from __future__ import annotations

import os


class Config:
    """jaxinit's settings.

    Attributes:
      strict: refuse, rather than warn about, keys whose implementation is not shard-invariant
        (``rbg``, ``unsafe_rbg``). Defaults to the ``JAXINIT_STRICT`` environment variable.

    Examples:
      >>> import jaxinit
      >>> jaxinit.config.strict
      False
    """

    def __init__(self) -> None:
        self.strict: bool = os.environ.get("JAXINIT_STRICT", "0").lower() in ("1", "true", "yes")

    def __repr__(self) -> str:
        return f"Config(strict={self.strict})"


config = Config()
