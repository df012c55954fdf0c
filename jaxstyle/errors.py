"""Exception types shared by the whole package.

Every error a user can cause by handing us a bad file, path or setting is a
``JaxstyleError``; the command-line tools print its message as one line and
exit with status 2 instead of showing a traceback.
"""


class JaxstyleError(Exception):
  """Base class for user-facing errors (bad input, missing files, bad config)."""


class ConfigError(JaxstyleError, ValueError):
  """A setting is invalid (bad flag value, inconsistent options)."""
