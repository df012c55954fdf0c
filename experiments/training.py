"""What every training script does the same way: devices and processes, and the testing-only kill switch.

* ``start_devices(config)`` applies a ``configs.common.RunSettings``'s device
  settings (``cpu_devices``, the multi-process flags) before JAX starts and
  returns the ``jaxstyle.parallel.DataParallel`` runner of ``config.parallel``.
* ``kill_switch(config, checkpointer)`` returns the loop's ``on_step_end``
  that SIGKILLs the process after ``debug_kill_at_step`` (after that step's
  checkpoint is on disk), and with ``debug_kill_during_save`` patches the
  checkpointer to die right after that step's save has started. Tests use it
  to check bit-identical resume.
* ``with open_run(workdir, Config, config, is_main) as run``: the run
  directory, locked (one live run per directory; the main process holds the
  lock until the block ends) and checked for resume.
* ``poison_batches(config, batches)``: ``debug_nan_at_step`` makes one step's
  float inputs NaN (testing the non-finite handling).
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any, Callable


def start_devices(config: Any):
  """Device count, distributed init and the runner of a ``RunSettings`` config."""
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import parallel  # pylint: disable=g-import-not-at-top

  if config.cpu_devices:
    jax.config.update("jax_num_cpu_devices", config.cpu_devices)
  parallel.initialize_distributed(config.coordinator_address, config.num_processes, config.process_id)
  return parallel.DataParallel(config.parallel)


@contextlib.contextmanager
def open_run(workdir: str, config_cls: type, config: Any, is_main: bool):
  """``with open_run(...) as run``: the RunDir, locked by the main process, checked for resume."""
  from jaxstyle import rundir  # pylint: disable=g-import-not-at-top

  run = rundir.RunDir(workdir)
  lock = run.lock() if is_main else None
  try:
    run.check_resume(config_cls, config)
    yield run
  finally:
    if lock is not None:
      lock.release()


def poison_batches(config: Any, batches: Callable[[int], Any]) -> Callable[[int], Any]:
  """``batches`` whose float arrays are NaN at ``config.debug_nan_at_step`` (1-based)."""
  bad = config.debug_nan_at_step
  if not bad:
    return batches
  import numpy as np  # pylint: disable=g-import-not-at-top

  def poisoned(step):
    batch = batches(step)
    if step + 1 != bad:
      return batch
    return {k: (np.full_like(v, np.nan) if np.issubdtype(np.asarray(v).dtype, np.floating) else v)
            for k, v in batch.items()}

  return poisoned


def kill_switch(config: Any, checkpointer: Any) -> Callable[[int], None]:
  """The ``on_step_end`` of ``jaxstyle.train.fit`` for ``config``'s debug_kill settings."""
  kill_at = config.debug_kill_at_step
  if config.debug_kill_during_save and kill_at:
    original_save = checkpointer.save

    def save_then_die(step, state, force=False):
      started = original_save(step, state, force)
      if started and step == kill_at:  # Orbax has started writing, not yet finalised
        os.kill(os.getpid(), signal.SIGKILL)
      return started

    checkpointer.save = save_then_die

  def on_step_end(step: int) -> None:
    if kill_at and step == kill_at:
      if not config.debug_kill_during_save:
        checkpointer.wait()
      os.kill(os.getpid(), signal.SIGKILL)

  return on_step_end
