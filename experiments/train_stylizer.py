r"""Trains the stylization network: a StyleMod generator with a style bank and a style encoder (issue 10).

  python experiments/train_stylizer.py --flagfile=experiments/configs/stylizer_quick.flags \
      --workdir=runs/stylizer_quick

Every flag but --workdir is a field of ``configs/stylizer.py``'s ``Config``.
The run directory gets config.json (the experiment's settings, the library's
``StylizerTrainConfig`` under "model", the bank's style names and files, the
VGG weights' fingerprint, versions, device count), metrics.jsonl (losses every
--log_every steps; held-out content and style losses for every bank style,
with bank and encoder latents, and with --encoder_styles the encoder's mean
style loss on the held-out ones, eval_style_unseen, every --eval_every
steps), checkpoints/ (Orbax),
samples/step_XXXXX.png (top row: the styles; then one row per held-out
photo: the photo, then each bank style) and tensorboard/ (every metric and
sample grid as TensorBoard events). Rerunning the same command resumes
from the latest checkpoint with bit-identical parameters to an uninterrupted
run; the settings marked ``resume=True`` must not change. The trained run
directory is what ``experiments/stylize.py --checkpoint`` and
``jaxstyle.inference.load_stylizer`` read.

Multi-process (e.g. two local CPU processes):
  python experiments/train_stylizer.py ... --coordinator_address=127.0.0.1:12345 \
      --num_processes=2 --process_id=0   (and =1 in the other process)

In-process: ``train_and_evaluate(configs.stylizer.get_config("quick"), workdir)``.
"""

from __future__ import annotations

import json
import os
import sys

import cli  # pylint: disable=g-bad-import-order
import training
from absl import logging
from cli import FLAGS
from configs import stylizer as stylizer_config

from jaxstyle import config as cfglib
from jaxstyle.errors import print_warning

Config = stylizer_config.Config


def define_flags() -> None:
  """--workdir and one flag per ``Config`` field (importing this module defines none)."""
  cli.define_workdir()
  cli.define_config_flags(Config)
  cli.define_max_pixels()  # the content photos and paintings it reads


def _eval_photos(config: Config):
  """The first ``eval_photos`` readable held-out photos, centre crops [N, eval_size, eval_size, 3]."""
  from jaxstyle import data  # pylint: disable=g-import-not-at-top

  if not config.eval_dir:
    return None
  photos, skipped = data.center_crops(config.eval_dir, config.eval_photos, config.eval_size)
  for p, message in skipped:
    print_warning(f"skipping held-out photo {p}: {message}")
  return photos if len(photos) else None


def _split_encoder_styles(config: Config, bank_names) -> tuple[list[str], list[str]]:
  """(held-out files, training files) of ``--encoder_styles``, bank styles left out of both."""
  from jaxstyle import data  # pylint: disable=g-import-not-at-top

  if not config.encoder_styles:
    return [], []
  files = [p for p in data.style_files(list(config.encoder_styles))
           if os.path.splitext(os.path.basename(p))[0] not in set(bank_names)]
  return files[:config.encoder_holdout], files[config.encoder_holdout:]


def _initial_state(config: Config, model, g_tx, d_tx, names, moments=None):
  """The fresh state of a run, its networks taken from ``--init_from`` where that run has them.

  ``moments``: the encoder's input (mean, std) for a ``standardize`` encoder.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import inference, train  # pylint: disable=g-import-not-at-top
  from jaxstyle.errors import CheckpointError  # pylint: disable=g-import-not-at-top

  state = jax.tree.map(np.asarray, train.init_stylizer_state(model, config.seed, g_tx, d_tx,
                                                             len(names)))
  if moments is not None:
    from jaxstyle.nets import style_encoder as se  # pylint: disable=g-import-not-at-top

    encoder = jax.tree.map(np.asarray, se.with_input_moments(state.params["encoder"], *moments))
    state = state.replace(params={**state.params, "encoder": encoder})
  if not config.init_from:
    return state
  source = inference.load_stylizer(config.init_from)
  if source.config.generator != model.generator:
    raise CheckpointError(f"--init_from={config.init_from}: its generator ({source.config.generator}) "
                          f"is not this run's ({model.generator}); use the same architecture flags")
  take = {"g"}
  if "bank" in state.params and "bank" in source.params and source.style_names == tuple(names):
    take.add("bank")
  if "encoder" in state.params and "encoder" in source.params and (
      source.config.encoder == model.encoder):
    take.add("encoder")
  missing = (set(model.freeze) & set(state.params)) - take
  if missing:
    raise CheckpointError(f"--freeze={','.join(model.freeze)}: --init_from={config.init_from} has no "
                          f"matching {', '.join(sorted(missing))} to freeze (other styles or "
                          "architecture); freeze only what it provides")
  print(f"init_from {config.init_from} step {source.step}: {', '.join(sorted(take))}", file=sys.stderr)
  return state.replace(params={**state.params, **{k: source.params[k] for k in take}})


def _pool_weights(bank_share: float, num_bank: int, num_extra: int):
  """Per-style draw weights: ``bank_share`` spread over the bank styles, the rest over the others."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  return np.concatenate([np.full(num_bank, bank_share / num_bank),
                         np.full(num_extra, (1.0 - bank_share) / num_extra)])


def _batch(photos, style_batches, step: int) -> dict:
  batch = {"content": photos.batch(step)}
  if style_batches is not None:
    batch.update(style_batches.batch(step))
  return batch


def train_and_evaluate(config: Config, workdir: str) -> dict:
  """Trains (or resumes) the stylizer of ``config`` in ``workdir``; returns the last metrics.

  Returns:
    ``{"resumed_from": step, "step": ..., <last logged losses>, <last evaluation>}``.

  Raises:
    ConfigError: an invalid setting, or ``workdir`` holds a run with other
      ``resume=True`` settings. DataError: no usable photos or a bad style.
    WeightsError: VGG weights that do not reach the configured layers.
  """
  import jax  # pylint: disable=g-import-not-at-top

  cfglib.validate(config)
  model = stylizer_config.model_config(config)
  runner = training.start_devices(config)
  runner.check_batch_size(config.batch_size)
  is_main = jax.process_index() == 0
  with training.open_run(workdir, Config, config, is_main) as run:
    return _train(config, model, runner, is_main, run)


def _train(config: Config, model, runner, is_main: bool, run) -> dict:
  """The body of ``train_and_evaluate`` once the run directory is locked."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import checkpoint, data, images, train, vgg  # pylint: disable=g-import-not-at-top
  from jaxstyle.fileio import file_sha256  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import style_encoder as se  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import stylizer as st  # pylint: disable=g-import-not-at-top

  weights_path = vgg.resolve_weights_path(config.vgg_weights)
  weights = vgg.load_weights(weights_path)
  weights.check_layers(model.vgg_layers + (model.encoder.taps if "encoder" in model.networks else ()))
  style_paths = data.style_files(list(config.styles))
  names, styles = data.load_styles(list(config.styles), config.style_size, square=True)
  photos = data.PhotoCrops(config.content_dir, config.crop_size, config.batch_size, config.seed,
                           process_index=jax.process_index(), process_count=jax.process_count())
  for path, reason in photos.errors:
    print_warning(f"skipping content photo {path}: {reason}")
  held_out = _eval_photos(config)

  g_tx, d_tx = stylizer_config.optimizers(config)
  grams = train.style_grams(model, weights, styles)
  unseen_files, extra_files = _split_encoder_styles(config, names)
  style_batches = None
  standardize = "encoder" in model.networks and model.encoder.standardize
  moments = se.input_moments(model.encoder, weights, styles) if standardize else None
  if extra_files:
    _, extra = data.load_styles(extra_files, config.style_size, square=True)
    if standardize:  # the encoder's input moments over every style it trains on
      moments = se.input_moments(model.encoder, weights, np.concatenate([styles, extra]))
    extra_grams = train.style_grams(model, weights, extra)
    style_batches = data.StyleCrops(
        np.concatenate([styles, extra]),
        {k: np.concatenate([np.asarray(v), np.asarray(extra_grams[k])]) for k, v in grams.items()},
        config.crop_size, config.batch_size, config.seed,
        weights=_pool_weights(config.encoder_bank_share, len(styles), len(extra)),
        process_index=jax.process_index(), process_count=jax.process_count())
    del extra
  unseen = unseen_grams = None
  if unseen_files:
    _, unseen = data.load_styles(unseen_files, config.style_size, square=True)
    unseen_grams = train.style_grams(model, weights, unseen)
  step_fn = runner.compile(train.guard_nonfinite(
      train.make_stylizer_step(model, weights, styles, g_tx, d_tx, grams=grams)))

  if is_main:
    run.write_config(cfglib.to_dict(config), model=cfglib.to_dict(model), styles=names,
                     style_files=[os.path.abspath(p) for p in style_paths],
                     vgg_weights={"path": os.path.abspath(weights_path),
                                  "sha256": file_sha256(weights_path),
                                  "preprocessing": weights.preprocessing},
                     encoder_style_files=[os.path.abspath(p) for p in extra_files],
                     unseen_style_files=[os.path.abspath(p) for p in unseen_files],
                     num_devices=runner.num_devices, content_photos=photos.num_photos)
  ckpt = checkpoint.Checkpointer(run.checkpoint_dir, every=config.checkpoint_every, keep=config.keep)

  hooks = []
  last_eval: dict = {}
  if held_out is not None and is_main:
    stylize = jax.jit(st.stylizer_fn(model.generator))
    encode = jax.jit(lambda p, x: se.apply_style_encoder(model.encoder, p, weights, x))
    evaluate_fn = train.make_stylizer_eval(model, weights)
    n = held_out.shape[0]
    thumbs = [np.asarray(jax.image.resize(s, held_out.shape[1:], "linear")) for s in styles]

    def latents_of(host_params):
      out = {}
      if "bank" in host_params:
        out["bank"] = np.asarray(host_params["bank"]["latents"])
      if "encoder" in host_params:
        out["encoder"] = np.asarray(encode(host_params["encoder"], styles))
      return out

    def write_samples(step, state):
      params = runner.get_state(state.params)
      lat = latents_of(params)
      lat = lat.get("bank", lat.get("encoder"))
      cols = [np.asarray(stylize(params["g"], held_out, jnp.broadcast_to(z, (n, z.shape[-1]))))
              for z in lat]
      rows = [np.ones_like(held_out[0])] + thumbs
      for i in range(n):
        rows += [held_out[i]] + [c[i] for c in cols]
      run.save_sample(step, images.make_grid(np.stack(rows), nrow=len(styles) + 1))

    def evaluate(step, state):
      params = runner.get_state(state.params)
      out = {}
      for source, lat in latents_of(params).items():
        per = []
        for k, name in enumerate(names):
          z = jnp.broadcast_to(lat[k], (n, lat.shape[-1]))
          g = {t: jnp.broadcast_to(v[k], (n,) + v.shape[1:]) for t, v in grams.items()}
          r = {m: float(v) for m, v in evaluate_fn(params["g"], held_out, z, g).items()}
          out[f"eval_style_{source}/{name}"] = r["style"]
          per.append(r)
        for m in ("content", "style", "identity"):
          out[f"eval_{m}_{source}"] = float(np.mean([r[m] for r in per]))
      if unseen is not None and "encoder" in params:
        lat = np.asarray(encode(params["encoder"], unseen))
        per = []
        for k in range(len(unseen_files)):
          z = jnp.broadcast_to(lat[k], (n, lat.shape[-1]))
          g = {t: jnp.broadcast_to(v[k], (n,) + v.shape[1:]) for t, v in unseen_grams.items()}
          per.append(float(evaluate_fn(params["g"], held_out, z, g)["style"]))
        out["eval_style_unseen"] = float(np.mean(per))
      last_eval.clear()
      last_eval.update(out)
      return out

    if config.sample_every:
      hooks.append((config.sample_every, write_samples))
    if config.eval_every:
      hooks.append((config.eval_every, evaluate))

  _, start = train.fit(
      runner=runner, step_fn=step_fn,
      init_state=lambda: _initial_state(config, model, g_tx, d_tx, names, moments),
      batches=training.poison_batches(config, lambda step: _batch(photos, style_batches, step)),
      num_steps=config.num_steps,
      checkpointer=ckpt, run_dir=run, log_every=config.log_every, hooks=tuple(hooks),
      on_step_end=training.kill_switch(config, ckpt), progress=config.progress, desc="stylizer",
      is_main=is_main, skip_nonfinite=config.skip_nonfinite)
  ckpt.close()
  run.close()
  rows = run.read_metrics() if is_main else []
  return {"resumed_from": start, **(rows[-1] if rows else {}), **last_eval}


def main(argv):
  del argv
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  if not FLAGS["verbosity"].present:  # Orbax logs every save at INFO level
    logging.set_verbosity(logging.WARNING)
  summary = train_and_evaluate(cli.config_from_flags(Config), FLAGS.workdir)
  print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
