"""Errors of the retrieval package."""

from __future__ import annotations

from jaxstyle.errors import ConfigError, JaxstyleError


class RetrievalError(JaxstyleError):
  """A retrieval input is unusable: empty library, bad or mismatched index."""


class DescriptorError(RetrievalError, ConfigError):
  """A descriptor config is invalid or not available."""
