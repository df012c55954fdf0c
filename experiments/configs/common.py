"""Settings every training experiment shares: devices, processes, checkpoints, logs, fault injection.

``RunSettings`` is a frozen dataclass of ``jaxstyle.config.setting`` fields;
an experiment's ``Config`` inherits it beside its model's settings, and may
redeclare a field to change its default (its place in the flag list stays).
"""

from __future__ import annotations

import dataclasses

from jaxstyle import config as cfglib
from jaxstyle import parallel


@dataclasses.dataclass(frozen=True)
class RunSettings:
  """Devices, processes, checkpoints, logs and the testing-only kill switches of a training run."""
  # Devices.
  parallel: str = cfglib.setting(
      "shard_map", "How the step runs: jit (one device), shard_map (all devices, default) or pmap.",
      choices=parallel.MODES)
  cpu_devices: int = cfglib.setting(
      0, "Split the CPU into this many JAX devices (jax_num_cpu_devices) for the data-parallel "
      "step; 0: the platform default (one, or what XLA_FLAGS says). On a CPU with several cores "
      "this speeds up the step (BUILD_NOTES.md).", ge=0)
  coordinator_address: str | None = cfglib.setting(
      None, "host:port of process 0 for multi-process runs.")
  num_processes: int | None = cfglib.setting(None, "Number of processes of a multi-process run.",
                                             gt=0)
  process_id: int | None = cfglib.setting(None, "This process's index in a multi-process run.",
                                          ge=0)
  # Checkpoints, logs.
  checkpoint_every: int = cfglib.setting(
      500, "Save a checkpoint every this many steps (and at the end); 0: only at the end.", ge=0)
  keep: int = cfglib.setting(3, "Checkpoints to keep.", ge=1)
  log_every: int = cfglib.setting(50, "Log losses to metrics.jsonl every this many steps.", ge=0)
  progress: bool = cfglib.setting(True, "Show a progress bar.")
  skip_nonfinite: bool = cfglib.setting(
      False, "When a loss or the updated parameters are NaN/Inf, skip that update (counted as "
      "nonfinite_skipped in metrics.jsonl) instead of stopping with an error naming the step and "
      "the loss term (the last good checkpoint is kept either way).")
  # Testing only.
  debug_kill_at_step: int = cfglib.setting(
      0, "Testing only: SIGKILL this process after this step (0: never).", ge=0)
  debug_nan_at_step: int = cfglib.setting(
      0, "Testing only: make the batch of this step NaN (1-based, as the step numbers in "
      "metrics.jsonl; 0: never), to exercise the non-finite handling.", ge=0)
  debug_kill_during_save: bool = cfglib.setting(
      False, "Testing only: with --debug_kill_at_step, kill right after the checkpoint save of that "
      "step has started, before it completes.")
