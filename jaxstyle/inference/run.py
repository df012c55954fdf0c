"""A trained stylizer run directory as a library object: ``load_stylizer(run)``.

Contract:

* ``load_stylizer(run_dir, step=None, vgg_weights=None)`` reads the run
  directory ``experiments/train_stylizer.py`` writes: ``config.json``
  (``"model"``: the ``StylizerTrainConfig``; ``"styles"``: the bank's style
  names; ``"vgg_weights"``: the loss network's file and SHA-256) and the
  newest (or the given) Orbax checkpoint, of which only the parameters are
  used. It returns a ``LoadedStylizer``.
* ``LoadedStylizer`` is the pure, jitted ``(params, images, latent) -> images``
  of the generator (``params``: the run's parameter dict, of which it uses
  ``params["g"]``; images float32 RGB [0, 1] NHWC; latent [D] or [B, D]), and
  carries ``params`` (``{"g", "bank"?, "encoder"?}``, NumPy), ``style_names``,
  ``config``, ``step``, ``path``. ``encode_style(params, style_images)`` is the
  pure, jitted style encoder (``[B, H, W, 3] -> [B, D]``; it closes over the
  VGG weights, loaded lazily on first use from ``vgg_weights``, else the
  path recorded in the run, else the default resolution). ``bank_latent(name)``
  returns a bank style's latent. ``fingerprint`` is ``params_fingerprint`` of
  its parameters (what a ``.style`` profile records to name its stylizer).
* Input checks (``StylizerInputError``, before anything runs): a latent whose
  last axis is not ``latent_dim``; style images with a side below
  ``MIN_STYLE_SIDE`` pixels (their VGG statistics at relu3_x would come from
  a few feature positions). ``MIN_CONTENT_SIDE`` is the smallest content side
  ``stylize.py`` accepts.
* Errors (all ``JaxstyleError``): a missing or damaged ``config.json``, a run
  of another kind, no checkpoint, or parameters whose structure or shapes do
  not match the recorded architecture (``CheckpointError``); an unknown bank
  style name (``StyleNameError``, listing the names); a run without an
  encoder asked to encode (``CheckpointError``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import numpy as np
import optax

from jaxstyle import config as cfglib
from jaxstyle.errors import CheckpointError, ConfigError, StyleNameError, StylizerInputError
from jaxstyle.nets import style_encoder as se
from jaxstyle.nets import stylizer as st
from jaxstyle.train.stylizer import StylizerTrainConfig, init_stylizer_state

MIN_STYLE_SIDE = 32  # relu3_x sees such an image as an 8x8 grid of positions
MIN_CONTENT_SIDE = 16


def _read_run_config(run_dir: str) -> dict:
  path = os.path.join(run_dir, "config.json")
  if not os.path.isdir(run_dir):
    raise CheckpointError(f"{run_dir}: no such run directory; pass the --workdir of a "
                          "train_stylizer.py run")
  try:
    with open(path) as f:
      record = json.load(f)
  except FileNotFoundError:
    raise CheckpointError(f"{run_dir}: no config.json; pass the --workdir of a train_stylizer.py "
                          "run") from None
  except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested too deep
    raise CheckpointError(f"{path} is damaged ({e}); restore it from the run") from None
  if not isinstance(record, dict) or "model" not in record or "styles" not in record:
    raise CheckpointError(f"{run_dir} is not a stylizer run (config.json has no 'model' and "
                          "'styles'); pass the --workdir of a train_stylizer.py run")
  styles, vgg_record = record["styles"], record.get("vgg_weights")
  if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
    raise CheckpointError(f"{path} is damaged ('styles' is not a list of style names); restore it "
                          "from the run")
  if vgg_record is not None and not (isinstance(vgg_record, dict) and
                                     isinstance(vgg_record.get("path", ""), (str, type(None)))):
    raise CheckpointError(f"{path} is damaged ('vgg_weights' is not an object with a 'path'); "
                          "restore it from the run, or delete that entry and pass --vgg_weights")
  return record


def _shapes(tree: Any) -> Any:
  return jax.tree.map(lambda x: tuple(np.shape(x)), tree)


def params_fingerprint(params: Any) -> str:
  """Hex SHA-256 of a parameter pytree: every leaf's path, dtype, shape and bytes, in path order.

  Two parameter sets share a fingerprint only if they are bit-identical (as
  NumPy arrays), whatever checkpoint directory they were read from.
  """
  h = hashlib.sha256()
  leaves = jax.tree_util.tree_leaves_with_path(params)
  for path, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0])):
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def _restore_params(run_dir: str, step: int | None, template: dict) -> tuple[dict, int]:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  ckpt_dir = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise CheckpointError(f"{run_dir}: no checkpoints/ yet; train first (train_stylizer.py)")
  manager = ocp.CheckpointManager(os.path.abspath(ckpt_dir))
  try:
    steps = sorted(manager.all_steps())
    if not steps:
      raise CheckpointError(f"{ckpt_dir}: no complete checkpoint; train first")
    if step is None:
      step = steps[-1]
    elif step not in steps:
      raise CheckpointError(f"{ckpt_dir}: no checkpoint at step {step} (have {steps})")
    try:
      raw = manager.restore(step, args=ocp.args.StandardRestore())
    except Exception as e:  # unreadable files
      raise CheckpointError(f"cannot read checkpoint step {step} in {ckpt_dir} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None
  finally:
    manager.close()
  params = raw.get("params") if isinstance(raw, dict) else None
  params = {k: params[k] for k in template if isinstance(params, dict) and k in params}
  try:
    same = _shapes(params) == _shapes(template)
  except Exception:  # pylint: disable=broad-except
    same = False
  if not same:
    raise CheckpointError(f"checkpoint step {step} in {ckpt_dir} does not match the architecture in "
                          "config.json (another model's checkpoint?); use the run's own checkpoints")
  return jax.tree.map(np.asarray, params), int(step)


class LoadedStylizer:
  """A trained stylizer (see the module contract); call it as ``(params, images, latent) -> images``."""

  def __init__(self, config: StylizerTrainConfig, params: dict, style_names: tuple[str, ...], *,
               path: str = "", step: int = 0, vgg_weights: str | None = None):
    self.config = config
    self.params = params
    self.style_names = tuple(style_names)
    self.path = path
    self.step = step
    self._vgg_weights_path = vgg_weights
    self._weights = None
    self._apply = jax.jit(lambda p, x, z: st.apply_stylizer(config.generator, p["g"], x, z))
    self._encode = None
    self._fingerprint = None

  @property
  def latent_dim(self) -> int:
    return self.config.generator.latent_dim

  @property
  def fingerprint(self) -> str:
    """``params_fingerprint(self.params)`` (computed once)."""
    if self._fingerprint is None:
      self._fingerprint = params_fingerprint(self.params)
    return self._fingerprint

  def __call__(self, params: dict, images: jax.Array, latent: jax.Array) -> jax.Array:
    if np.shape(latent)[-1:] != (self.latent_dim,):
      raise StylizerInputError(f"the latent has shape {np.shape(latent)}, but "
                               f"{self.path or 'this stylizer'} takes latents of size "
                               f"{self.latent_dim} ([D] or [B, D]); use one of its bank styles, its "
                               "encoder or a profile made for it")
    return self._apply(params, images, latent)

  def weights(self):
    """The VGG weights of the style encoder (loaded on first use)."""
    if self._weights is None:
      from jaxstyle import vgg  # pylint: disable=g-import-not-at-top

      self._weights = vgg.load_weights(self._vgg_weights_path)
      self._weights.check_layers(self.config.encoder.taps)
    return self._weights

  def encode_style(self, params: dict, style_images: jax.Array) -> jax.Array:
    """Latents [B, D] of style images [B, H, W, 3] (pure and jitted in ``params`` and the images)."""
    if "encoder" not in params:
      raise CheckpointError(f"the run {self.path or '(in memory)'} has no style encoder "
                            f"(latent_source={self.config.latent_source}); use a bank style: "
                            f"{', '.join(self.style_names)}")
    if np.ndim(style_images) != 4 or min(np.shape(style_images)[1:3]) < MIN_STYLE_SIDE:
      raise StylizerInputError(f"style images [B, H, W, 3] need H, W >= {MIN_STYLE_SIDE} pixels, got "
                               f"shape {np.shape(style_images)}; use a larger style image")
    if self._encode is None:
      weights, cfg = self.weights(), self.config.encoder
      self._encode = jax.jit(lambda p, x: se.apply_style_encoder(cfg, p["encoder"], weights, x))
    return self._encode(params, style_images)

  def bank_latent(self, name: str) -> np.ndarray:
    """The bank latent [D] of style ``name`` (a training style's file stem)."""
    if "bank" not in self.params or name not in self.style_names:
      known = ", ".join(self.style_names) if "bank" in self.params else "none (no bank)"
      raise StyleNameError(f"--style {name!r} is not a bank style of {self.path or 'this run'} "
                           f"(bank styles: {known}); pass one of them or a style image file")
    return np.asarray(self.params["bank"]["latents"][self.style_names.index(name)])


def load_stylizer(run_dir: str, *, step: int | None = None,
                  vgg_weights: str | None = None) -> LoadedStylizer:
  """Loads a ``train_stylizer.py`` run directory (see the module contract)."""
  run_dir = os.fspath(run_dir)
  record = _read_run_config(run_dir)
  try:
    config = cfglib.validate(cfglib.from_dict(StylizerTrainConfig, record["model"]))
    names = tuple(str(n) for n in record["styles"])
    template = jax.eval_shape(lambda: init_stylizer_state(
        config, 0, optax.identity(), optax.identity(), max(len(names), 1)).params)
  except (ConfigError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
    # a damaged file: settings of the wrong type only fail when the networks are built
    raise CheckpointError(f"{run_dir}/config.json: the model settings are not readable by this "
                          f"jaxstyle version ({type(e).__name__}: {e})") from None
  template = {k: v for k, v in template.items() if k != "d"}
  params, step = _restore_params(run_dir, step, template)
  if vgg_weights is None:
    recorded = (record.get("vgg_weights") or {}).get("path")
    vgg_weights = recorded if recorded and os.path.exists(recorded) else None
  return LoadedStylizer(config, params, names, path=os.path.abspath(run_dir), step=step,
                        vgg_weights=vgg_weights)
