"""The data error type.

``DataError`` (a ``jaxstyle.errors.JaxstyleError``) is raised for every problem
a user can cause with a dataset: a missing, unreadable or malformed file, an
unknown split, a TFDS preparation that cannot run, or batch settings that do
not fit the arrays. Messages name the file, flag or setting and the fix.
"""

from __future__ import annotations

from jaxstyle.errors import JaxstyleError


class DataError(JaxstyleError):
  """A dataset file is missing or malformed."""
