"""Orbax checkpoints of a train state: save every N steps, keep K, resume from the latest.

States are saved as host (NumPy) pytrees without a device axis (see
``jaxstyle.parallel.DataParallel.get_state``), so a checkpoint does not
depend on the parallel mode or device count. Orbax writes each step into a
temporary directory and renames it when complete, so a process killed in the
middle of a save leaves no half-written step behind: ``latest_step`` ignores
the debris (and it is deleted on the next start).

Resuming (``restore_newest``) tells a damaged checkpoint from one of another
model: a step that Orbax cannot read even without a template is damaged, and
the newest readable step is used instead (the damaged one is moved aside to
``<directory>_damaged/STEP`` so that the run can write that step again); a
step that reads on its own but not into this run's state is a model
mismatch, the only case that advises a fresh ``--workdir``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxstyle.errors import (NO_SPACE_ERRNOS, CheckpointError, DamagedCheckpointError,
                             print_warning)


def _is_no_space(error: BaseException) -> bool:
  """Whether ``error`` (or what caused it) is a full disk: ENOSPC, or TensorStore's wording of it."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
      return True
    if "No space left on device" in str(error) or "os_error_code='28'" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


class _NoSpaceLogFilter(logging.Filter):
  """Drops log records about a full disk (``save`` reports it as one ``CheckpointError``)."""

  def filter(self, record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    if error is not None and _is_no_space(error):
      return False
    return "No space left on device" not in record.getMessage()


def _quiet_orbax_noise() -> None:
  """Silences two kinds of Orbax/TensorStore noise whose real error jaxstyle reports itself.

  * When a damaged step fails to restore, TensorStore's pending read callbacks
    fire after Orbax has closed their asyncio loop, and each prints "Exception
    ignored ... RuntimeError: Event loop is closed" (dozens per read); the read
    has already failed with the error ``restore`` reports.
  * When the disk fills during an asynchronous save, Orbax's writer threads log
    each failed write with its traceback (hundreds of lines); ``save``/``wait``
    report it as one ``CheckpointError``.
  Every other unraisable error, thread exception and log record goes through.
  """
  previous = sys.unraisablehook
  if getattr(previous, "_jaxstyle_filter", False):
    return

  def unraisable_hook(unraisable):
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      return
    previous(unraisable)

  previous_thread_hook = threading.excepthook

  def thread_hook(args):
    if args.exc_value is not None and _is_no_space(args.exc_value):
      return
    previous_thread_hook(args)

  unraisable_hook._jaxstyle_filter = True  # pylint: disable=protected-access
  sys.unraisablehook = unraisable_hook
  threading.excepthook = thread_hook
  logging.getLogger("absl").addFilter(_NoSpaceLogFilter())


class Checkpointer:
  """Wrapper around ``ocp.CheckpointManager``.

  Args:
    directory: checkpoint directory (created if missing).
    every: save at steps that are multiples of ``every`` (0: only when forced).
    keep: number of most recent checkpoints to keep (None: all).
    async_save: write in a background thread (``wait`` blocks until done).
  """

  def __init__(self, directory: str, every: int = 1000, keep: int | None = 3,
               async_save: bool = True):
    self.directory = os.path.abspath(directory)
    self.every = int(every)
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=max(self.every, 1), max_to_keep=keep, create=True,
        cleanup_tmp_directories=True, enable_async_checkpointing=async_save)
    self._options = options
    _quiet_orbax_noise()
    self._pending = None  # the step of a save that may still be running
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    """Step of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def should_save(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state: Any | Callable[[], Any], force: bool = False) -> bool:
    """Saves ``state`` (a host pytree, or a function returning one) at ``step`` when due.

    Returns True if a save was started. With async saving the state must not
    be mutated afterwards (host NumPy copies are safe).

    Raises:
      CheckpointError: the disk has less free space than the state's size
        (checked before writing), or it filled up while writing (this or the
        previous asynchronous save; its partial files are removed). The
        earlier checkpoints are intact either way.
    """
    if not (force or self.should_save(step)):
      return False
    if step in self.manager.all_steps():
      return False
    host_state = state() if callable(state) else state
    needed = sum(np.asarray(x).nbytes for x in jax.tree.leaves(host_state)) * 1.05 + (256 << 10)
    free = shutil.disk_usage(self.directory).free
    if free < needed:
      raise self._no_space_error(step, f"{free / 1e6:.1f} MB free, a checkpoint needs about "
                                 f"{needed / 1e6:.1f} MB")
    with self._writing(step):
      return bool(self.manager.save(step, args=ocp.args.StandardSave(host_state), force=True))

  def _no_space_error(self, step: int, detail: str) -> CheckpointError:
    steps = self.all_steps()
    kept = (f"the earlier checkpoints (steps {', '.join(map(str, steps))}) are intact" if steps
            else "no earlier checkpoint")
    return CheckpointError(f"cannot save checkpoint step {step} in {self.directory}: no space left "
                           f"on the device ({detail}); {kept}: free some space, then rerun the "
                           "same command to resume")

  @contextlib.contextmanager
  def _writing(self, step: int):
    """Turns a full disk during a (possibly earlier, asynchronous) save into a CheckpointError."""
    try:
      yield
      self._pending = step
    except Exception as e:  # pylint: disable=broad-except
      if not _is_no_space(e):
        raise
      failed = self._pending if self._pending is not None else step
      self._pending = None
      for name in os.listdir(self.directory):  # Orbax's partial step folders
        if ".orbax-checkpoint-tmp" in name:
          shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
      raise self._no_space_error(failed, "the disk filled up while writing") from None

  def readable(self, step: int) -> bool:
    """Whether Orbax can read ``step`` on its own (without this run's template)."""
    try:
      self.manager.restore(step, args=ocp.args.StandardRestore())
      return True
    except Exception:  # pylint: disable=broad-except  (any failure to read means damaged)
      return False

  def restore_newest(self, template: Any, warn: Callable[[str], None] | None = None
                     ) -> tuple[int | None, Any]:
    """(step, state) of the newest checkpoint that restores; (None, template) if there is none.

    A damaged newer step is moved aside to ``<directory>_damaged/STEP`` with a
    warning naming both steps (``warn``, default: a ``warning:`` line on
    stderr), and the next older step is tried.

    Raises:
      CheckpointError: a step that is readable but does not fit ``template``
        (another model), or no step that can be read at all.
    """
    warn = warn or print_warning
    damaged = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        state = self.restore(template, step)
      except DamagedCheckpointError as e:  # a model mismatch propagates: its message says so
        damaged.append((step, e.reason, self._move_aside(step)))
        continue
      for bad, reason, moved in damaged:
        warn(f"checkpoint step {bad} in {self.directory} is damaged ({reason}); resuming from step "
             f"{step} instead (step {bad} moved to {moved})")
      return step, state
    if damaged:
      listing = "; ".join(f"step {s}: {r}" for s, r, _ in damaged)
      raise CheckpointError(f"no checkpoint in {self.directory} can be read ({listing}); all were "
                            f"moved to {self.directory.rstrip(os.sep)}_damaged; rerun to train from "
                            "the start")
    return None, template

  def _move_aside(self, step: int) -> str:
    target_dir = self.directory.rstrip(os.sep) + "_damaged"
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, str(step))
    if os.path.exists(target):
      target += f".{int(time.time())}"
    shutil.move(os.path.join(self.directory, str(step)), target)
    self.manager.close()  # a fresh manager: a failed read can leave the old one misconfigured
    self.manager = ocp.CheckpointManager(self.directory, options=self._options)
    return target

  def restore(self, template: Any, step: int | None = None) -> Any:
    """The state saved at ``step`` (default: latest) with ``template``'s structure, as NumPy."""
    if step is None:
      step = self.latest_step()
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), template)
    try:
      restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # structure or shape mismatch, unreadable files
      first_line = str(e).splitlines()[0] if str(e) else ""
      if not self.readable(step):
        raise DamagedCheckpointError(step, self.directory, f"{type(e).__name__}: {first_line[:200]}") from e
      raise CheckpointError(f"cannot restore step {step} from {self.directory} ({type(e).__name__}: "
                            f"{first_line}); was it written by a run with other model settings? "
                            "Use a fresh --workdir") from e
    restored = jax.tree.map(np.asarray, restored)
    got = jax.tree.map(lambda x: (x.shape, x.dtype), restored)
    want = jax.tree.map(lambda x: (x.shape, x.dtype), abstract)
    if got != want:  # Orbax hands back the saved shapes whatever the template says
      raise CheckpointError(f"checkpoint step {step} in {self.directory} has other array shapes than "
                            "this run's state; was it written by a run with other model settings? "
                            "Use a fresh --workdir")
    return restored

  def wait(self) -> None:
    """Blocks until pending saves are on disk (a full disk: ``CheckpointError``, see ``save``)."""
    with self._writing(self._pending if self._pending is not None else -1):
      self.manager.wait_until_finished()
    self._pending = None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
