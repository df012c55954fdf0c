"""The generic resumable training loop (``fit``): steps, logging, hooks, checkpoints.

It knows no model: it runs any compiled ``step_fn`` over ``batches(step)``
with a ``jaxstyle.parallel.DataParallel`` runner, resumes from the latest
checkpoint of a ``jaxstyle.checkpoint.Checkpointer``, and writes
``metrics.jsonl`` through a ``jaxstyle.rundir.RunDir``.
"""

from __future__ import annotations

from typing import Any, Callable


def fit(*, runner: Any, step_fn: Callable, init_state: Callable[[], Any], batches: Callable[[int], Any],
        num_steps: int, checkpointer: Any | None = None, run_dir: Any | None = None,
        log_every: int = 50, hooks: tuple = (), on_step_end: Callable[[int], None] | None = None,
        progress: bool = True, desc: str = "train", is_main: bool = True) -> tuple[Any, int]:
  """The generic resumable training loop.

  Args:
    runner: a ``jaxstyle.parallel.DataParallel`` (``put_state``, ``get_state``,
      ``put_batch``, ``get_metrics``).
    step_fn: ``runner.compile(step)``.
    init_state: returns the host state at step 0 (called only when there is no
      checkpoint to resume from; it is also the template for restoring).
    batches: ``batches(step)`` -> this process's host batch of global step ``step``.
    num_steps: train until the state's step is ``num_steps``.
    checkpointer: a ``jaxstyle.checkpoint.Checkpointer`` or None. The loop
      resumes from its latest step, saves when due and at the end.
    run_dir: a ``jaxstyle.rundir.RunDir`` for metrics.jsonl (main process only).
    log_every: log the step metrics every this many steps (and at the end).
    hooks: ``(every, fn)`` pairs; ``fn(step, device_state) -> dict | None`` runs
      after steps that are multiples of ``every`` (and the last step); a dict
      is logged to metrics.jsonl.
    on_step_end: called with the step number after everything else of that step.
    progress: show a tqdm bar with the latest losses.
    is_main: this process writes metrics and shows progress.

  Returns:
    (final host state, the step training started from).
  """
  template = init_state()
  start = 0
  host_state = template
  if checkpointer is not None and checkpointer.latest_step() is not None:
    start = int(checkpointer.latest_step())
    host_state = checkpointer.restore(template, start)
  if run_dir is not None and is_main:
    run_dir.truncate_metrics(after_step=start)
  state = runner.put_state(host_state)
  bar = None
  if progress and is_main and start < num_steps:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True)
  try:
    for step in range(start, num_steps):
      state, metrics = step_fn(state, runner.put_batch(batches(step)))
      done = step + 1
      last = done == num_steps
      if (log_every and done % log_every == 0) or last:
        host_metrics = runner.get_metrics(metrics)
        if run_dir is not None and is_main:
          run_dir.log_metrics(done, host_metrics)
        if bar is not None:
          bar.set_postfix({k: f"{v:.3f}" for k, v in host_metrics.items()}, refresh=False)
      for every, fn in hooks:
        if (every and done % every == 0) or (every and last):
          out = fn(done, state)
          if out and run_dir is not None and is_main:
            run_dir.log_metrics(done, out)
      if checkpointer is not None and (checkpointer.should_save(done) or last):
        checkpointer.save(done, lambda: runner.get_state(state), force=last)
      if bar is not None:
        bar.update(1)
      if on_step_end is not None:
        on_step_end(done)
  finally:
    if bar is not None:
      bar.close()
    if checkpointer is not None:
      checkpointer.wait()
  return runner.get_state(state), start
