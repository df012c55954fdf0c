"""The VGG error type.

``WeightsError`` (a ``jaxstyle.errors.JaxstyleError``) is raised for every
problem a user can cause with VGG weights: a missing or unreadable file, a
malformed or unsafe one, an unknown layer or preprocessing name, or a layer
deeper than the weights reach. Messages name the file or layer and the fix.
"""

from __future__ import annotations

from jaxstyle.errors import JaxstyleError


class WeightsError(JaxstyleError):
  """VGG weights are missing, malformed or do not cover a requested layer."""
