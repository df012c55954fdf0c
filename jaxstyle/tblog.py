"""TensorBoard event files of a run directory, written with tensorboardX (no TensorFlow needed).

``EventWriter(logdir, purge_step=None)``:

* ``scalars(step, metrics)``: one scalar per finite real number of ``metrics``,
  tagged with its name as in metrics.jsonl. NaN/Inf, booleans, strings and
  arrays of more than one element are skipped (metrics.jsonl keeps them).
* ``image(step, tag, pixels)``: a PNG image summary of uint8 ``[H, W]`` or
  ``[H, W, C]`` pixels, losslessly (one channel is stored as grey RGB).
* ``flush()`` / ``close()``.

Events are written synchronously and flushed after every call, so a run that
is killed keeps every event it logged (tensorboardX's ``SummaryWriter`` queues
events to a thread that flushes every two minutes). The event file is created
on the first write, one new file per writer, named
``events.out.tfevents.<seconds>.<host>.<nanoseconds>`` so that files sort in
creation order. With ``purge_step=N`` the file starts with a SessionLog START
event at step N, as ``SummaryWriter(purge_step=N)`` writes: TensorBoard then
drops the events of earlier files at steps >= N, so a resumed run's events
replace those that the interrupted run wrote after its last checkpoint.

Only the main JAX process writes: in a process with ``jax.process_index() > 0``
every method does nothing. tensorboardX is imported on first use (without
letting it import PyTorch, which it would load only to accept torch tensors).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Mapping

import numpy as np

from jaxstyle.errors import print_warning


def _tensorboardx():
  """(summary, event_file_writer, event_pb2) of tensorboardX, or None if it is not installed."""
  masked = "torch" not in sys.modules
  if masked:
    sys.modules["torch"] = None  # tensorboardX's `import torch` fails fast: 0.3 s instead of 3 s
  try:
    from tensorboardX import event_file_writer, summary  # pylint: disable=g-import-not-at-top
    from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  finally:
    if masked and sys.modules.get("torch", 0) is None:
      del sys.modules["torch"]
  return summary, event_file_writer, event_pb2


def _is_main_process() -> bool:
  jax = sys.modules.get("jax")
  return jax is None or jax.process_index() == 0


def scalar_value(value: Any) -> float | None:
  """``value`` as a float if it is one finite real number (Python, NumPy or JAX), else None."""
  if isinstance(value, (bool, np.bool_, str, bytes)):
    return None
  try:
    arr = np.asarray(value)
  except (TypeError, ValueError):
    return None
  if arr.size != 1 or arr.dtype.kind not in "iuf":
    return None
  x = float(arr.reshape(()))
  return x if math.isfinite(x) else None


class EventWriter:
  """Writes one run's TensorBoard events into ``logdir`` (created on the first write)."""

  def __init__(self, logdir: str, purge_step: int | None = None):
    self.logdir = logdir
    self.purge_step = purge_step
    self._lib = None
    self._file = None
    self._enabled: bool | None = None  # decided on the first write

  def _open(self):
    if self._enabled is None:
      self._enabled = _is_main_process()
      if self._enabled:
        self._lib = _tensorboardx()
        if self._lib is None:
          self._enabled = False
          print_warning("tensorboardX is not installed (pip install tensorboardX); no TensorBoard "
                        f"events are written to {self.logdir}")
    if not self._enabled:
      return None
    if self._file is None:
      _, event_file_writer, event_pb2 = self._lib
      os.makedirs(self.logdir, exist_ok=True)
      self._file = event_file_writer.EventsWriter(os.path.join(self.logdir, "events"),
                                                  f".{time.time_ns()}")
      if self.purge_step is not None:
        self._file.write_event(event_pb2.Event(
            wall_time=time.time(), step=int(self.purge_step),
            session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
    return self._file

  def _write(self, step: int, summaries: list) -> None:
    events = self._open()
    if events is None or not summaries:
      return
    event_pb2 = self._lib[2]
    now = time.time()
    for s in summaries:
      events.write_event(event_pb2.Event(wall_time=now, step=int(step), summary=s))
    events.flush()

  def scalars(self, step: int, metrics: Mapping[str, Any]) -> None:
    """One scalar summary per finite number of ``metrics`` at ``step``."""
    if self._open() is None:
      return
    summary = self._lib[0]
    values = {name: scalar_value(v) for name, v in metrics.items() if name != "step"}
    self._write(step, [summary.scalar(str(name), x) for name, x in values.items() if x is not None])

  def image(self, step: int, tag: str, pixels: np.ndarray) -> None:
    """An image summary of uint8 ``[H, W]`` or ``[H, W, C]`` (C in 1, 3, 4) ``pixels`` at ``step``."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
      raise ValueError(f"image summaries take uint8 [H, W] or [H, W, C] pixels, got {pixels.dtype} "
                       f"{pixels.shape}")
    if self._open() is None:
      return
    summary = self._lib[0]
    self._write(step, [summary.image(tag, pixels, dataformats="HW" if pixels.ndim == 2 else "HWC")])

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    """Closes the event file; a later write opens a new one (without purging)."""
    if self._file is not None:
      self._file.close()
      self._file = None
      self.purge_step = None
