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
        progress: bool = True, desc: str = "train", is_main: bool = True,
        skip_nonfinite: bool = False, handle_signals: bool = True) -> tuple[Any, int]:
  """The generic resumable training loop.

  Args:
    runner: a ``jaxstyle.parallel.DataParallel`` (``put_state``, ``get_state``,
      ``put_batch``, ``get_metrics``).
    step_fn: ``runner.compile(step)``; with ``train.guard_nonfinite(step)`` its
      ``"nonfinite"`` metric is watched (below).
    init_state: returns the host state at step 0 (it is also the template for
      restoring).
    batches: ``batches(step)`` -> this process's host batch of global step ``step``.
    num_steps: train until the state's step is ``num_steps``.
    checkpointer: a ``jaxstyle.checkpoint.Checkpointer`` or None. The loop
      resumes from its newest readable step (``restore_newest``: a damaged
      newer step is moved aside with a warning), saves when due and at the end.
    run_dir: a ``jaxstyle.rundir.RunDir`` for metrics.jsonl (main process only).
    log_every: log the step metrics every this many steps (and at the end).
    hooks: ``(every, fn)`` pairs; ``fn(step, device_state) -> dict | None`` runs
      after steps that are multiples of ``every`` (and the last step); a dict
      is logged to metrics.jsonl.
    on_step_end: called with the step number after everything else of that step.
    progress: show a tqdm bar with the latest losses.
    is_main: this process writes metrics and shows progress.
    skip_nonfinite: a step flagged non-finite is counted (``nonfinite_skipped``
      in the logged metrics) instead of stopping the run with ``NonFiniteError``.
      The flags are read at log and checkpoint steps, so no checkpoint ever
      holds a state after an unnoticed non-finite step.
    handle_signals: on SIGTERM/SIGINT, save a checkpoint after the current step
      and raise ``jaxstyle.errors.Stopped`` (``jaxstyle.train.stop``).

  Returns:
    (final host state, the step training started from).
  """
  from jaxstyle.errors import Stopped  # pylint: disable=g-import-not-at-top
  from jaxstyle.train.nonfinite import FLAG as NONFINITE  # pylint: disable=g-import-not-at-top
  from jaxstyle.train.nonfinite import NonFiniteWatch  # pylint: disable=g-import-not-at-top
  from jaxstyle.train.stop import StopRequest  # pylint: disable=g-import-not-at-top

  template = init_state()
  start, host_state = (checkpointer.restore_newest(template) if checkpointer is not None
                       else (None, template))
  last_saved = start
  start = start or 0
  if run_dir is not None and is_main:
    run_dir.truncate_metrics(after_step=start)
  state = runner.put_state(host_state)
  watch = NonFiniteWatch(runner.get_metrics, skip=skip_nonfinite)
  bar = None
  if progress and is_main and start < num_steps:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True)
  try:
    def save(done, state, force):
      watch.check(last_good=last_saved)  # never save a state after an unnoticed bad step
      checkpointer.save(done, lambda: runner.get_state(state), force=force)
      return done

    with StopRequest(handle_signals) as stop:
      for step in range(start, num_steps):
        state, metrics = step_fn(state, runner.put_batch(batches(step)))
        done = step + 1
        last = done == num_steps
        watch.add(done, metrics)
        log_due = bool(log_every and done % log_every == 0) or last
        if log_due:
          watch.check(last_good=last_saved)
          host_metrics = {k: v for k, v in runner.get_metrics(metrics).items() if k != NONFINITE}
          host_metrics.update(watch.log_fields())
          if run_dir is not None and is_main:
            run_dir.log_metrics(done, host_metrics)
          if bar is not None:
            bar.set_postfix({k: f"{v:.3f}" for k, v in host_metrics.items()}, refresh=False)
        for every, fn in hooks:
          if (every and done % every == 0) or (every and last):
            out = fn(done, state)
            if out and run_dir is not None and is_main:
              run_dir.log_metrics(done, out)

        if checkpointer is not None and (checkpointer.should_save(done) or last or stop.requested):
          last_saved = save(done, state, force=last or stop.requested)
        if bar is not None:
          bar.update(1)
        if on_step_end is not None:
          on_step_end(done)
        if stop.requested and not last:  # (a signal during this step's save or hooks: save now)
          if checkpointer is not None and last_saved != done:
            last_saved = save(done, state, force=True)
          where = (f"a checkpoint of step {done} is in {checkpointer.directory}"
                   if checkpointer is not None else "no checkpointer: nothing was saved")
          if checkpointer is not None:
            checkpointer.wait()
          raise Stopped(f"stopped by {stop.name} at step {done}: {where}; rerun the same command "
                        "to resume", 128 + stop.signum)
      if checkpointer is not None:  # the last save completes with the handlers still in place: a
        checkpointer.wait()         # SIGTERM now is recorded, not the default kill of a half-written save
  finally:
    if bar is not None:
      bar.close()
    if checkpointer is not None:
      checkpointer.wait()
  return runner.get_state(state), start
