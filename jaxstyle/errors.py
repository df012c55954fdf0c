"""Every user-facing error type of jaxstyle, in one place.

Every error a user can cause by handing us a bad file, path or setting is a
``JaxstyleError``; the command-line tools print its message as one line and
exit with status 2 instead of showing a traceback. Messages name the file,
flag or setting, what is wrong and what to do. Each package re-exports the
types it raises (e.g. ``jaxstyle.vgg.WeightsError``); ``ImageError``, which
carries the path and cause, lives in ``jaxstyle.images``.
"""

import errno
import sys

# The errnos of a full disk (and of a used-up quota): the CLI names them without a path, and a
# checkpoint save that meets one stops the run with one line (``jaxstyle.checkpoint``).
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def print_warning(message: str) -> None:
  """``message`` as one ``warning: ...`` line on stderr, flushed: for what a run should say and
  go on (a damaged checkpoint step set aside, a stale lock taken over), as ``JaxstyleWarning``s
  show under ``jaxstyle.cli.run``."""
  sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")
  sys.stderr.flush()


class JaxstyleError(Exception):
  """Base class for user-facing errors (bad input, missing files, bad config)."""


class ConfigError(JaxstyleError, ValueError):
  """A setting is invalid (bad flag value, inconsistent options)."""


class WeightsError(JaxstyleError):
  """VGG weights are missing, malformed, unsafe, or do not cover a requested layer."""


class DataError(JaxstyleError):
  """A dataset file is missing or malformed, a split unknown, or TFDS preparation cannot run."""


class RetrievalError(JaxstyleError):
  """A retrieval input is unusable: empty library, bad or mismatched index."""


class DescriptorError(RetrievalError, ConfigError):
  """A style descriptor config is invalid or not available."""


class CheckpointError(JaxstyleError):
  """A checkpoint cannot be read or does not fit the model."""


class DamagedCheckpointError(CheckpointError):
  """A checkpoint step whose files cannot be read (truncated, missing, garbled)."""

  def __init__(self, step: int, directory: str, reason: str):
    super().__init__(f"checkpoint step {step} in {directory} is damaged ({reason})")
    self.step, self.directory, self.reason = step, directory, reason


class RunDirBusyError(JaxstyleError):
  """A run directory is in use by another live process (its lock is held)."""


class Stopped(JaxstyleError):
  """Training stopped on SIGTERM/SIGINT after saving a checkpoint; ``exit_code`` is 128 + signal."""

  def __init__(self, message: str, exit_code: int):
    super().__init__(message)
    self.exit_code = exit_code


class NonFiniteError(JaxstyleError):
  """A loss, gradient or parameter became NaN or Inf during training."""


class MetricError(JaxstyleError):
  """Unknown metric name, or inputs a metric cannot use."""


class OracleError(JaxstyleError):
  """An oracle checkpoint is missing, malformed or does not match its config."""


class OptimizationError(JaxstyleError):
  """The optimisation diverged (non-finite loss) or was given bad inputs."""


class StylizerInputError(JaxstyleError, ValueError):
  """Images or latents whose shape a stylization network cannot take."""


class StyleNameError(JaxstyleError, KeyError):
  """A style name that is not in a stylizer's bank."""

  def __str__(self) -> str:  # KeyError would quote the message
    return str(self.args[0]) if self.args else ""


class ProfileError(JaxstyleError):
  """A .style profile is missing, malformed, of a newer format, or made for another stylizer."""


class JaxstyleWarning(UserWarning):
  """Something a user should know about an input that still works (e.g. an image upscaled many
  times); commands show it as one ``warning: ...`` line on stderr (``jaxstyle.cli.run``)."""
