"""Stopping a training run cleanly on SIGTERM or Ctrl-C (SIGINT).

``StopRequest`` is a context manager that, while active (and only in the main
thread), replaces the SIGTERM and SIGINT handlers with one that records the
signal. The training loop polls ``requested`` after each step; it then saves
a checkpoint of that step and raises ``jaxstyle.errors.Stopped`` (exit status
128 + signal number). A second signal while the first is being handled exits
at once (status 128 + signal, no save). The previous handlers come back on
exit.

Multi-process runs: each process saves when it sees the signal, so the
signal must reach every process (as schedulers' preemption notices do).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
  """Records SIGTERM/SIGINT while active (see the module docstring)."""

  def __init__(self, enabled: bool = True):
    self.enabled = enabled and threading.current_thread() is threading.main_thread()
    self.signum: int | None = None
    self._previous = {}

  @property
  def requested(self) -> bool:
    return self.signum is not None

  @property
  def name(self) -> str:
    return signal.Signals(self.signum).name if self.signum is not None else ""

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if self.signum is not None:  # the second signal: leave now
      sys.stderr.write(f"\nerror: {signal.Signals(signum).name} again: exiting at once without "
                       "saving (the last checkpoint is kept)\n")
      sys.stderr.flush()
      os._exit(128 + signum)  # pylint: disable=protected-access
    self.signum = signum
    sys.stderr.write(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step, then "
                     "stopping (send it again to exit at once)\n")
    sys.stderr.flush()

  def __enter__(self) -> "StopRequest":
    if self.enabled:
      for s in SIGNALS:
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous.clear()
