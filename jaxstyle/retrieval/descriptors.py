"""Style descriptors: what is computed from an image, and how.

Pipeline (pure functions; the VGG part and the descriptor part are jitted and
batched):

1. **Views** (``image_views``). An image (float32 RGB in [0, 1], [H, W, 3]) is
   resized so its *shorter* side is ``s`` for each scale ``s`` of the config,
   then cut into ``n = max(1, round(longer / s))`` square ``s × s`` tiles evenly
   spaced along the longer side. Tiles give every image the same batch shape
   (one compiled shape per scale) and cover the whole image (no aspect
   distortion; nothing cropped away beyond rounding).
2. **Statistics** (``stats_fn``). VGG-19 features of each tile at the config's
   layers give the position-averaged Gram ``Ĝ = FᵀF / M``
   (``losses.gram_matrix``) and the channel means ``μ``; tile statistics of
   one image are averaged with equal weights (tiles have equal size).
3. **Descriptor** (``descriptor_fn``), per scale and layer:

   * ``gram``: covariance ``Ĝ − μμᵀ`` (``center=True``) or raw ``Ĝ``, upper
     triangle (diagonal included), signed power ``sign(x)|x|^p`` (``power``),
     L2-normalised, then reduced to ``dim`` dimensions by a seeded count
     sketch (``jaxstyle.retrieval.sketch``) and L2-normalised again;
   * ``stats``: per-channel mean and standard deviation (AdaIN statistics)
     ``[μ, σ]``, signed power, L2-normalised per layer;
   * ``encoder``: a trained stylizer's style encoder (``checkpoint``) on the
     per-channel mean and std of its taps (from the tile statistics), one
     latent per scale, each L2-normalised (``jaxstyle.retrieval.encoder``;
     configs come from ``encoder.encoder_config(model)``, and an ``Embedder``
     needs the ``model``).

   Layers are weighted (``layer_weights``, default equal), concatenated over
   layers and scales, and L2-normalised: the *base descriptor*, float32
   ``[D]`` with ``D = descriptor_dim(config)``.

``Embedder`` runs steps 1–3 for a list of images and one or more configs.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import config as cfglib
from jaxstyle import images as images_lib
from jaxstyle import losses
from jaxstyle import vgg
from jaxstyle.errors import ConfigError
from jaxstyle.errors import DescriptorError
from jaxstyle.retrieval.sketch import count_sketch, sketch_params

DESCRIPTOR_KINDS = ("gram", "stats", "encoder")


# ----------------------------------------------------------------------------
# Descriptor configuration.


def _nonempty(value: tuple) -> str | None:
  return None if value else "needs at least one value"


@dataclasses.dataclass(frozen=True)
class DescriptorConfig:
  """How a style descriptor is computed (stored in every index).

  Every field is a ``jaxstyle.config.setting`` (help and checks beside it). A
  config is validated when it is constructed: an invalid one raises
  ``DescriptorError`` (a ``ConfigError`` whose ``.setting`` names the field).
  """

  kind: str = cfglib.setting(
      "gram", "Descriptor kind: gram (Gram/covariance statistics), stats (per-channel mean and "
      "std) or encoder (a trained stylizer's style encoder latent; needs checkpoint).",
      choices=DESCRIPTOR_KINDS)
  layers: tuple[str, ...] = cfglib.setting(
      ("relu3_1", "relu3_2", "relu3_3", "relu3_4"),
      "VGG-19 taps whose statistics form the descriptor (comma-separated, e.g. relu3_1,relu3_2).",
      check=vgg.check_taps)
  layer_weights: tuple[float, ...] | None = cfglib.setting(
      None, "One weight per layer of the descriptor (default: all 1).")
  scales: tuple[int, ...] = cfglib.setting(
      (512,), "Working scales: shorter side in pixels (comma-separated, e.g. 256 or 128,256); "
      "tiles are s x s.", ge=16, check=_nonempty)
  center: bool = cfglib.setting(
      True, "gram only: use the covariance G - mu mu^T instead of the raw Gram G.")
  power: float = cfglib.setting(
      0.5, "Signed power normalisation exponent (1 = none, 0.5 = signed square root).", gt=0)
  dim: int = cfglib.setting(
      1024, "gram: count-sketch dimension per (scale, layer), 0 keeps the full upper triangle "
      "(C(C+1)/2 values); encoder: the latent size (set from the checkpoint).", ge=0)
  seed: int = cfglib.setting(0, "Seed of the count-sketch hashes and signs.")
  whiten_dim: int = cfglib.setting(
      96, "PCA whitening components fitted on the library (0 = no whitening).", ge=0)
  whiten_alpha: float = cfglib.setting(
      0.5, "Whitening exponent alpha (1 = full whitening, 0.5 = square root).", ge=0)
  whiten_reg: float = cfglib.setting(
      0.1, "Whitening eigenvalue regulariser, as a fraction of the largest eigenvalue.", ge=0)
  whiten_min_images: int = cfglib.setting(
      200, "Libraries with fewer images are searched without whitening.", ge=0)
  pooling: str = cfglib.setting(
      "max", "VGG pooling: max (the pretrained behaviour) or avg.", choices=vgg.POOLING)
  checkpoint: str = cfglib.setting(
      "", "encoder only: the stylizer run directory (train_stylizer.py --workdir) whose style "
      "encoder makes the descriptor.")
  checkpoint_fingerprint: str = cfglib.setting(
      "", "encoder only: fingerprint of that run's parameters (set from the checkpoint; an "
      "index refuses any other encoder).")

  def __post_init__(self):
    for name in ("layers", "scales", "layer_weights"):
      value = getattr(self, name)
      if value is not None and not isinstance(value, tuple):
        object.__setattr__(self, name, tuple(value))
    try:
      cfglib.validate(self)
    except DescriptorError:
      raise
    except ConfigError as e:
      raise _descriptor_error(e) from None

  def check(self):
    """Cross-field rules (run by ``jaxstyle.config.validate``)."""
    if self.layer_weights is not None and len(self.layer_weights) != len(self.layers):
      raise cfglib.invalid("layer_weights", self.layer_weights,
                           f"needs one weight per layer ({len(self.layers)} layers)")
    if self.kind == "encoder":
      if not self.checkpoint or not self.checkpoint_fingerprint or not self.dim:
        raise cfglib.invalid("checkpoint", self.checkpoint,
                             "the encoder descriptor needs a trained stylizer: pass --checkpoint "
                             "RUN (a train_stylizer.py run with a style encoder)")

  @property
  def resolved_layer_weights(self) -> tuple[float, ...]:
    """``layer_weights``, or 1.0 for every layer when it is ``None``."""
    return self.layer_weights if self.layer_weights is not None else (1.0,) * len(self.layers)

  @property
  def whitening(self) -> bool:
    return self.whiten_dim > 0


def _descriptor_error(e: ConfigError) -> DescriptorError:
  """``e`` as a ``DescriptorError``, keeping ``.setting``, ``.value``, ``.problem``."""
  err = DescriptorError(f"descriptor setting {e}")
  for attr in ("setting", "value", "problem"):
    if hasattr(e, attr):
      setattr(err, attr, getattr(e, attr))
  return err


# Named descriptor settings. "default" is the variant chosen in BUILD_NOTES.md
# ("Style retrieval (issue 3)"); "naive" is the known baseline.
PRESETS: dict[str, DescriptorConfig] = {}
PRESETS["gram"] = DescriptorConfig()
PRESETS["default"] = PRESETS["gram"]
PRESETS["stats"] = DescriptorConfig(
    kind="stats", layers=("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2",
                          "relu3_3", "relu3_4"),
    power=1.0, dim=0, whiten_dim=0)
PRESETS["naive"] = DescriptorConfig(
    layers=("relu1_1", "relu2_1", "relu3_1"), scales=(256,), center=False, power=1.0, dim=0,
    whiten_dim=0)


def get_config(name_or_config: str | DescriptorConfig) -> DescriptorConfig:
  """A preset by name (``default``, ``gram``, ``stats``, ``naive``).

  ``encoder`` has no preset: it needs a trained stylizer
  (``jaxstyle.retrieval.encoder.encoder_config(model)``), so asking for it
  by name raises ``DescriptorError`` saying so.
  """
  if isinstance(name_or_config, DescriptorConfig):
    return name_or_config
  if name_or_config == "encoder":
    raise DescriptorError("the encoder descriptor needs a trained stylizer: pass --checkpoint RUN "
                          "(a train_stylizer.py run with a style encoder)")
  try:
    return PRESETS[name_or_config]
  except KeyError:
    raise DescriptorError(f"unknown descriptor {name_or_config!r}; choose one of "
                          f"{sorted(PRESETS) + ['encoder']}") from None


# ----------------------------------------------------------------------------
# Views: square tiles per scale.


def tile_starts(length: int, size: int) -> list[int]:
  """Start offsets of ``max(1, round(length/size))`` evenly spaced tiles."""
  n = max(1, int(round(length / size)))
  if n == 1:
    return [(length - size) // 2]
  return [int(round(i * (length - size) / (n - 1))) for i in range(n)]


def image_views(image: np.ndarray, scale: int) -> np.ndarray:
  """Square tiles of one image at one scale.

  Args:
    image: float32 [H, W, 3] RGB in [0, 1].
    scale: the shorter side is resized to ``scale`` pixels.

  Returns:
    float32 [n, scale, scale, 3], ``n = max(1, round(longer / shorter))``.
  """
  image = images_lib.resize(image, scale, side="shorter")
  h, w = image.shape[:2]
  if h >= w:
    return np.stack([image[s:s + scale, :scale] for s in tile_starts(h, scale)])
  return np.stack([image[:scale, s:s + scale] for s in tile_starts(w, scale)])


# ----------------------------------------------------------------------------
# VGG statistics (jitted, batched).


def stats_fn(weights: vgg.VGGWeights, layers: Sequence[str], pooling: str = "max"
             ) -> Callable[[jax.Array], dict[str, tuple[jax.Array, jax.Array]]]:
  """Jitted ``f(tiles [B, S, S, 3]) -> {layer: (gram [B, C, C], mean [B, C])}``.

  Grams are position-averaged (``losses.gram_matrix``), float32.
  """
  layers = tuple(sorted(set(layers), key=vgg.TAPS.index))
  features = vgg.feature_fn(weights, layers, pooling=pooling)

  @jax.jit
  def f(tiles):
    feats = features(tiles)
    return {k: (losses.gram_matrix(feats[k]), jnp.mean(feats[k].astype(jnp.float32), axis=(1, 2)))
            for k in layers}

  return f


# ----------------------------------------------------------------------------
# Descriptors from statistics (pure, jitted per config).


def _l2n(x: jax.Array, axis: int = -1) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def _signed_power(x: jax.Array, p: float) -> jax.Array:
  if p == 1.0:
    return x
  return jnp.sign(x) * jnp.abs(x) ** p


def descriptor_dim(config: DescriptorConfig) -> int:
  """Dimension D of the base descriptor."""
  if config.kind == "encoder":
    return config.dim * len(config.scales)
  per_scale = 0
  for layer in config.layers:
    c = vgg.tap_channels(layer)
    if config.kind == "gram":
      per_scale += config.dim if config.dim else c * (c + 1) // 2
    else:
      per_scale += 2 * c
  return per_scale * len(config.scales)


def descriptor_fn(config: DescriptorConfig, encoder=None
                  ) -> Callable[[Sequence[Mapping[str, tuple]]], jax.Array]:
  """Jitted ``f(stats_per_scale) -> [B, D]`` float32, L2-normalised.

  ``stats_per_scale``: one dict per scale of the config (same order),
  ``layer -> (gram [B, C, C], mean [B, C])`` (tile-averaged). ``encoder``:
  the trained stylizer of an ``encoder`` config (required for that kind).
  """
  if config.kind == "encoder":
    from jaxstyle.retrieval import encoder as enc  # pylint: disable=g-import-not-at-top

    if encoder is None:
      raise DescriptorError("the encoder descriptor needs its stylizer (encoder=the model of "
                            f"{config.checkpoint})")
    enc.check_encoder(config, encoder)
    latents = enc.latent_fn(encoder)
    return jax.jit(lambda per_scale: enc.latent_descriptor(jnp.stack(
        [latents(enc.encoder_stats(st, config.layers)) for st in per_scale], axis=1)))

  sketches = {}
  for s in config.scales:
    for layer in config.layers:
      if config.kind == "gram" and config.dim:
        c = vgg.tap_channels(layer)
        sketches[(s, layer)] = sketch_params(c * (c + 1) // 2, config.dim, config.seed,
                                             f"s{s}/{layer}")

  def one_layer(gram, mean, s, layer):
    if config.kind == "stats":
      var = jnp.maximum(jnp.diagonal(gram, axis1=-2, axis2=-1) - mean * mean, 0.0)
      v = jnp.concatenate([mean, jnp.sqrt(var)], axis=-1)
      return _l2n(_signed_power(v, config.power))
    if config.center:
      gram = gram - mean[:, :, None] * mean[:, None, :]
    iu, ju = np.triu_indices(gram.shape[-1])
    v = _l2n(_signed_power(gram[:, iu, ju], config.power))
    if config.dim:
      buckets, signs = sketches[(s, layer)]
      v = _l2n(count_sketch(v, buckets, signs, config.dim))
    return v

  @jax.jit
  def f(stats_per_scale):
    parts = []
    for s, stats in zip(config.scales, stats_per_scale):
      for layer, w in zip(config.layers, config.resolved_layer_weights):
        gram, mean = stats[layer]
        parts.append(w * one_layer(gram.astype(jnp.float32), mean.astype(jnp.float32), s, layer))
    return _l2n(jnp.concatenate(parts, axis=-1))

  return f


class Embedder:
  """Computes base descriptors of images for one or more configs at once.

  VGG statistics are computed once per scale for the union of the configs'
  layers; tiles of several images are batched into fixed-size batches of
  ``batch_size`` tiles (the last one zero-padded), so only one shape per
  scale is compiled. ``encoder``: the trained stylizer whose style encoder an
  ``encoder`` config uses (its VGG weights must be ``weights``).
  """

  def __init__(self, weights: vgg.VGGWeights,
               configs: Sequence[DescriptorConfig] | DescriptorConfig, batch_size: int = 8,
               encoder=None):
    if isinstance(configs, DescriptorConfig):
      configs = [configs]
    self.configs = [get_config(c) for c in configs]
    pools = {c.pooling for c in self.configs}
    if len(pools) != 1:
      raise DescriptorError("configs of one Embedder must share the VGG pooling")
    self.pooling = pools.pop()
    self.weights = weights
    self.batch_size = int(batch_size)
    if self.batch_size < 1:
      raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    self.scales = sorted({s for c in self.configs for s in c.scales})
    self.layers = tuple(sorted({l for c in self.configs for l in c.layers}, key=vgg.TAPS.index))
    weights.check_layers(self.layers)
    self._stats = stats_fn(weights, self.layers, self.pooling)
    self._descriptors = [descriptor_fn(c, encoder) for c in self.configs]
    if any(c.kind == "encoder" for c in self.configs):
      from jaxstyle.retrieval import encoder as enc  # pylint: disable=g-import-not-at-top

      enc.check_vgg(encoder, weights)

  def max_scale(self) -> int:
    return max(self.scales)

  def tile_stats(self, tiles: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Statistics of ``[n, S, S, 3]`` tiles, batched by ``batch_size``."""
    n = tiles.shape[0]
    out: dict[str, list] = {k: ([], []) for k in self.layers}
    for start in range(0, n, self.batch_size):
      chunk = tiles[start:start + self.batch_size]
      m = chunk.shape[0]
      if m < self.batch_size:
        chunk = np.concatenate([chunk, np.zeros((self.batch_size - m,) + chunk.shape[1:],
                                                chunk.dtype)])
      res = self._stats(jnp.asarray(chunk))
      for k, (g, mu) in res.items():
        out[k][0].append(np.asarray(g)[:m])
        out[k][1].append(np.asarray(mu)[:m])
    return {k: (np.concatenate(g), np.concatenate(mu)) for k, (g, mu) in out.items()}

  def embed(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Base descriptors of ``images`` (each float32 [H, W, 3]).

    Returns:
      one float32 array ``[len(images), D_c]`` per config.
    """
    if not len(images):
      return [np.zeros((0, descriptor_dim(c)), np.float32) for c in self.configs]
    per_scale = {}
    for s in self.scales:
      views = [image_views(im, s) for im in images]
      owner = np.concatenate([np.full(len(v), i) for i, v in enumerate(views)])
      counts = np.bincount(owner, minlength=len(images)).astype(np.float32)
      stats = self.tile_stats(np.concatenate(views))
      per_scale[s] = {}
      for k, (g, mu) in stats.items():
        gsum = np.zeros((len(images),) + g.shape[1:], np.float32)
        musum = np.zeros((len(images),) + mu.shape[1:], np.float32)
        np.add.at(gsum, owner, g)
        np.add.at(musum, owner, mu)
        per_scale[s][k] = (gsum / counts[:, None, None], musum / counts[:, None])
    out = []
    for c, fn in zip(self.configs, self._descriptors):
      stats = [{l: tuple(jnp.asarray(a) for a in per_scale[s][l]) for l in c.layers}
               for s in c.scales]
      out.append(np.asarray(fn(stats), np.float32))
    return out

  def embed_files(self, paths: Sequence[str]) -> tuple[list[np.ndarray], list[int],
                                                         list[tuple[str, str]]]:
    """Loads and embeds files; unreadable ones are reported, not raised.

    Returns:
      (descriptors per config ``[n_ok, D_c]``, indices of the readable
      files in ``paths``, ``[(path, message)]`` for unreadable ones).
    """
    ims, ok, failed = [], [], []
    for i, p in enumerate(paths):
      try:
        ims.append(images_lib.load_image(p, self.max_scale(), side="shorter"))
        ok.append(i)
      except images_lib.ImageError as e:
        failed.append((p, str(e)))
    return self.embed(ims), ok, failed
