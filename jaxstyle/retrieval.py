"""Style retrieval: style descriptors, an on-disk index, exact top-k search.

Pipeline (every step a pure function; the VGG part and the descriptor part
are jitted and batched):

1. **Views.** An image (float32 RGB [0, 1], [H, W, 3]) is resized so its
   *shorter* side is ``s`` for each scale ``s`` of the config, then cut into
   ``n = max(1, round(longer / s))`` square ``s × s`` tiles evenly spaced along
   the longer side (``image_views``). Tiles give every image the same batch
   shape, so any library is embedded with a handful of compiled shapes, and
   they cover the whole image (no aspect distortion, nothing cropped away
   beyond rounding).
2. **Statistics.** VGG-19 features of each tile at the config's layers give
   the position-averaged Gram ``Ĝ = FᵀF / M`` (``losses.gram_matrix``) and the
   channel means ``μ``; tile statistics of one image are averaged (weighted
   equally: tiles have equal size), which is the statistic of the whole
   resized image up to tile-border effects.
3. **Descriptor** (``descriptor_from_stats``), per scale and layer:

   * ``gram``: covariance ``Ĝ − μμᵀ`` (``center=True``) or raw ``Ĝ``, upper
     triangle (diagonal included), signed power ``sign(x)|x|^p``
     (``power``), L2-normalised, then reduced to ``dim`` dimensions by a
     seeded count sketch (a sparse random projection ``x ↦ Σ_i s(i) x_i
     e_{h(i)}`` with seeded hash ``h`` and signs ``s``; unbiased for inner
     products and it needs O(input dim) memory instead of a dense
     [32 896 × dim] matrix), and L2-normalised again;
   * ``stats``: per-channel mean and standard deviation (AdaIN statistics)
     ``[μ, σ]``, L2-normalised per layer;
   * ``encoder``: reserved for the style encoder's latent; raises
     ``DescriptorError`` until that model exists.

   Layers are weighted (``layer_weights``, default equal), concatenated over
   layers and scales, and L2-normalised: the *base descriptor* ``[D]``.
4. **Whitening** (optional, unsupervised): PCA fitted on the library's base
   descriptors, keeping ``whiten_dim`` components, each divided by
   ``(λ_i + reg·λ_1)^(α/2)`` (``α = whiten_alpha``, ``reg = whiten_reg``),
   then L2-normalised: the *search descriptor*. It is refitted whenever the
   index is written, and applied to queries with the stored parameters. It
   is skipped for libraries smaller than ``whiten_min_images``.
5. **Search**: cosine similarity = dot product of L2-normalised search
   descriptors; exact top-k by one matrix product per chunk of the database
   and ``jax.lax.top_k``, merging per-chunk top-k (``topk_search``), so memory
   is ``O(Q · chunk + chunk · d)`` whatever the library size.

Index file (``save_index`` / ``load_index``): one ``.npz`` written with
``allow_pickle=False`` semantics (no object arrays) and read with
``allow_pickle=False``:

* ``meta``: 0-d string, JSON: ``{"format": "jaxstyle-style-index",
  "version": 1, "descriptor": DescriptorConfig dict, "vgg": {"fingerprint",
  "source", "preprocessing"}, "library", "complete", "failed": [[relpath,
  message], ...], "whitening": {...}}``;
* ``paths`` [N] str (POSIX paths relative to the library root), ``sha256``
  [N] str, ``size`` [N] int64, ``mtime_ns`` [N] int64;
* ``base`` [N, D] float32 base descriptors; ``search`` [N, d] float32;
* ``whiten_mean`` [D] and ``whiten_proj`` [D, d] float32 (empty when
  whitening is off).

Writes go to a temporary file beside the target and are renamed over it, so a
failed or interrupted write never replaces a good index. Building keeps a
resumable ``<out>.partial`` file (same format, ``complete=false``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import images as images_lib
from jaxstyle import losses
from jaxstyle import rundir
from jaxstyle import vgg as vgg_lib
from jaxstyle.errors import ConfigError, JaxstyleError

INDEX_FORMAT = "jaxstyle-style-index"
INDEX_VERSION = 1
DESCRIPTOR_KINDS = ("gram", "stats", "encoder")
PROFILE_SUFFIX = ".style"


class RetrievalError(JaxstyleError):
  """A retrieval input is unusable: empty library, bad or mismatched index."""


class DescriptorError(RetrievalError, ConfigError):
  """A descriptor config is invalid or not available."""


# ----------------------------------------------------------------------------
# Descriptor configuration.


@dataclasses.dataclass(frozen=True)
class DescriptorConfig:
  """How a style descriptor is computed (stored in every index).

  Attributes:
    kind: ``"gram"``, ``"stats"`` or ``"encoder"`` (not available yet).
    layers: VGG-19 taps (e.g. ``relu3_1``).
    layer_weights: one weight per layer (default: all 1).
    scales: shorter-side sizes in pixels; tiles are ``s × s``.
    center: ``gram`` only: covariance ``Ĝ − μμᵀ`` instead of ``Ĝ``.
    power: signed power normalisation exponent (1 = none, 0.5 = signed sqrt).
    dim: ``gram`` only: count-sketch dimension per (scale, layer); 0 keeps the
      full upper triangle (C(C+1)/2 values).
    seed: seed of the count sketch hashes and signs.
    whiten_dim: PCA whitening components (0 = no whitening).
    whiten_alpha: whitening exponent α (1 = full whitening, 0.5 = square
      root).
    whiten_reg: eigenvalue regulariser, as a fraction of the largest.
    whiten_min_images: libraries with fewer base descriptors are not whitened.
    pooling: VGG pooling, ``"max"`` (pretrained behaviour) or ``"avg"``.
  """

  kind: str = "gram"
  layers: tuple[str, ...] = ("relu3_1", "relu3_2", "relu3_3", "relu3_4")
  layer_weights: tuple[float, ...] | None = None
  scales: tuple[int, ...] = (512,)
  center: bool = True
  power: float = 0.5
  dim: int = 1024
  seed: int = 0
  whiten_dim: int = 96
  whiten_alpha: float = 0.5
  whiten_reg: float = 0.1
  whiten_min_images: int = 200
  pooling: str = "max"

  def __post_init__(self):
    object.__setattr__(self, "layers", tuple(self.layers))
    object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
    if self.layer_weights is not None:
      object.__setattr__(self, "layer_weights", tuple(float(w) for w in self.layer_weights))
    validate_config(self)

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["layers"] = list(self.layers)
    d["scales"] = list(self.scales)
    d["layer_weights"] = None if self.layer_weights is None else list(self.layer_weights)
    return d

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "DescriptorConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise DescriptorError(f"unknown descriptor setting(s) {unknown}; known: {sorted(known)}")
    d = dict(d)
    for key in ("layers", "scales", "layer_weights"):
      if d.get(key) is not None:
        d[key] = tuple(d[key])
    return cls(**d)

  @property
  def weights(self) -> tuple[float, ...]:
    return self.layer_weights if self.layer_weights is not None else (1.0,) * len(self.layers)

  @property
  def whitening(self) -> bool:
    return self.whiten_dim > 0


def validate_config(config: DescriptorConfig) -> None:
  """Raises ``DescriptorError`` for an unusable config."""
  if config.kind not in DESCRIPTOR_KINDS:
    raise DescriptorError(f"unknown descriptor {config.kind!r}; choose one of {DESCRIPTOR_KINDS}")
  if config.kind == "encoder":
    raise DescriptorError(
        "descriptor 'encoder' (the style encoder's latent) is not available yet: it needs the "
        "trained style encoder of the stylization network, which does not exist in this build; "
        "use --descriptor gram or --descriptor stats")
  if not config.layers:
    raise DescriptorError("a descriptor needs at least one VGG layer")
  for layer in config.layers:
    if layer not in vgg_lib.TAPS:
      raise DescriptorError(f"unknown VGG-19 layer {layer!r} in descriptor layers; "
                            "use names like relu2_1, relu3_2")
  if config.layer_weights is not None and len(config.layer_weights) != len(config.layers):
    raise DescriptorError(f"{len(config.layers)} layers but {len(config.layer_weights)} "
                          "layer weights")
  if not config.scales or any(s < 16 for s in config.scales):
    raise DescriptorError(f"scales must be sizes >= 16 px, got {config.scales}")
  if config.power <= 0:
    raise DescriptorError(f"power must be > 0, got {config.power}")
  if config.dim < 0 or config.whiten_dim < 0:
    raise DescriptorError("dim and whiten_dim must be >= 0")
  if config.pooling not in vgg_lib.POOLING:
    raise DescriptorError(f"unknown pooling {config.pooling!r}")


# Named descriptor settings. "default" is the best measured variant (see
# BUILD_NOTES.md, "Style retrieval (issue 3)"); "naive" is the known baseline.
PRESETS: dict[str, DescriptorConfig] = {}


def _register_presets() -> None:
  PRESETS["gram"] = DescriptorConfig()
  PRESETS["default"] = PRESETS["gram"]
  PRESETS["stats"] = DescriptorConfig(
      kind="stats", layers=("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2",
                            "relu3_3", "relu3_4"),
      power=1.0, dim=0, whiten_dim=0)
  PRESETS["naive"] = DescriptorConfig(
      layers=("relu1_1", "relu2_1", "relu3_1"), scales=(256,), center=False, power=1.0, dim=0,
      whiten_dim=0)


_register_presets()


def get_config(name_or_config: str | DescriptorConfig) -> DescriptorConfig:
  """A preset by name (``default``, ``gram``, ``stats``, ``naive``, ``encoder``)."""
  if isinstance(name_or_config, DescriptorConfig):
    return name_or_config
  if name_or_config == "encoder":
    return DescriptorConfig(kind="encoder")  # raises DescriptorError (not available yet)
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


def stats_fn(weights: vgg_lib.VGGWeights, layers: Sequence[str], pooling: str = "max"
             ) -> Callable[[jax.Array], dict[str, tuple[jax.Array, jax.Array]]]:
  """Jitted ``f(tiles [B, S, S, 3]) -> {layer: (gram [B, C, C], mean [B, C])}``.

  Grams are position-averaged (``losses.gram_matrix``), float32.
  """
  layers = tuple(sorted(set(layers), key=vgg_lib.TAPS.index))
  features = vgg_lib.feature_fn(weights, layers, pooling=pooling)

  @jax.jit
  def f(tiles):
    feats = features(tiles)
    return {k: (losses.gram_matrix(feats[k]), jnp.mean(feats[k].astype(jnp.float32), axis=(1, 2)))
            for k in layers}

  return f


# ----------------------------------------------------------------------------
# Descriptors from statistics (pure, jitted per config).


def _triu_indices(c: int) -> tuple[np.ndarray, np.ndarray]:
  return np.triu_indices(c)


def sketch_params(in_dim: int, out_dim: int, seed: int, salt: str) -> tuple[np.ndarray, np.ndarray]:
  """Count-sketch hash ``[in_dim] int32`` in [0, out_dim) and signs ``[in_dim] ±1``.

  Derived from ``seed`` and ``salt`` (e.g. ``"s256/relu3_1"``) with NumPy's
  PCG64 seeded through SHA-256, so they are identical on every platform.
  """
  digest = hashlib.sha256(f"{seed}/{salt}".encode()).digest()
  rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "little")))
  buckets = rng.integers(0, out_dim, size=in_dim, dtype=np.int64).astype(np.int32)
  signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=in_dim)
  return buckets, signs


def _l2n(x: jax.Array, axis: int = -1) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def _signed_power(x: jax.Array, p: float) -> jax.Array:
  if p == 1.0:
    return x
  return jnp.sign(x) * jnp.abs(x) ** p


def descriptor_dim(config: DescriptorConfig) -> int:
  """Dimension D of the base descriptor."""
  per_scale = 0
  for layer in config.layers:
    c = _layer_channels(layer)
    if config.kind == "gram":
      per_scale += config.dim if config.dim else c * (c + 1) // 2
    else:
      per_scale += 2 * c
  return per_scale * len(config.scales)


def descriptor_fn(config: DescriptorConfig) -> Callable[[Sequence[Mapping[str, tuple]]], jax.Array]:
  """Jitted ``f(stats_per_scale) -> [B, D]`` float32, L2-normalised.

  ``stats_per_scale``: one dict per scale of the config (same order),
  ``layer -> (gram [B, C, C], mean [B, C])`` (tile-averaged).
  """
  validate_config(config)
  sketches = {}
  for s in config.scales:
    for layer in config.layers:
      if config.kind == "gram" and config.dim:
        c = _layer_channels(layer)
        sketches[(s, layer)] = sketch_params(c * (c + 1) // 2, config.dim, config.seed,
                                             f"s{s}/{layer}")

  def one_layer(gram, mean, s, layer):
    if config.kind == "stats":
      var = jnp.maximum(jnp.diagonal(gram, axis1=-2, axis2=-1) - mean * mean, 0.0)
      v = jnp.concatenate([mean, jnp.sqrt(var)], axis=-1)
      return _l2n(_signed_power(v, config.power))
    if config.center:
      gram = gram - mean[:, :, None] * mean[:, None, :]
    iu, ju = _triu_indices(gram.shape[-1])
    v = _l2n(_signed_power(gram[:, iu, ju], config.power))
    if config.dim:
      buckets, signs = sketches[(s, layer)]
      v = jax.vmap(lambda row: jax.ops.segment_sum(row * signs, buckets,
                                                   num_segments=config.dim))(v)
      v = _l2n(v)
    return v

  @jax.jit
  def f(stats_per_scale):
    parts = []
    for s, stats in zip(config.scales, stats_per_scale):
      for layer, w in zip(config.layers, config.weights):
        gram, mean = stats[layer]
        parts.append(w * one_layer(gram.astype(jnp.float32), mean.astype(jnp.float32), s, layer))
    return _l2n(jnp.concatenate(parts, axis=-1))

  return f


def _layer_channels(layer: str) -> int:
  if layer.startswith("pool"):
    return vgg_lib.CHANNELS[f"conv{layer[4:]}_1"]
  return vgg_lib.CHANNELS["conv" + layer[4:]]


class Embedder:
  """Computes base descriptors of images for one or more configs at once.

  VGG statistics are computed once per scale for the union of the configs'
  layers; tiles of several images are batched into fixed-size batches of
  ``batch_size`` tiles (the last one zero-padded), so only one shape per
  scale is compiled.
  """

  def __init__(self, weights: vgg_lib.VGGWeights,
               configs: Sequence[DescriptorConfig] | DescriptorConfig, batch_size: int = 8):
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
    self.layers = tuple(sorted({l for c in self.configs for l in c.layers}, key=vgg_lib.TAPS.index))
    weights.check_layers(self.layers)
    self._stats = stats_fn(weights, self.layers, self.pooling)
    self._descriptors = [descriptor_fn(c) for c in self.configs]

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


# ----------------------------------------------------------------------------
# Whitening (unsupervised, fitted on the library).


@dataclasses.dataclass(frozen=True)
class Whitening:
  """``y = l2n((x − mean) @ proj)``; ``proj`` [D, d] has the scaling folded in."""

  mean: np.ndarray
  proj: np.ndarray

  @property
  def dim(self) -> int:
    return int(self.proj.shape[1])


def fit_whitening(base: np.ndarray, config: DescriptorConfig,
                  max_samples: int = 50_000) -> Whitening | None:
  """PCA whitening fitted on base descriptors ``[N, D]`` (float64 internally).

  Returns ``None`` when the config has no whitening or the library has fewer
  than ``config.whiten_min_images`` descriptors. Libraries larger than
  ``max_samples`` are fitted on an evenly spaced subset (deterministic).
  """
  n = base.shape[0]
  if not config.whitening or n < max(config.whiten_min_images, 2):
    return None
  x = np.asarray(base, np.float64)
  if n > max_samples:
    x = x[np.linspace(0, n - 1, max_samples).round().astype(np.int64)]
  mean = x.mean(axis=0)
  xc = x - mean
  m = xc.shape[0]
  if m <= xc.shape[1]:  # kernel trick: eigenvectors of the m×m Gram.
    ev, u = np.linalg.eigh(xc @ xc.T)
    ev, u = ev[::-1], u[:, ::-1]
    keep = min(config.whiten_dim, int(np.sum(ev > ev[0] * 1e-10)))
    ev, u = np.maximum(ev[:keep], 0.0), u[:, :keep]
    axes = (xc.T @ u) / np.sqrt(np.maximum(ev, 1e-300))  # [D, keep], unit columns
  else:
    ev, v = np.linalg.eigh(xc.T @ xc)
    ev, v = ev[::-1], v[:, ::-1]
    keep = min(config.whiten_dim, int(np.sum(ev > ev[0] * 1e-10)))
    ev, axes = np.maximum(ev[:keep], 0.0), v[:, :keep]
  var = ev / m
  scale = (var + config.whiten_reg * var[0]) ** (-config.whiten_alpha / 2.0)
  # Fix each axis' sign (largest-magnitude loading positive): deterministic output.
  signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(keep)])
  signs[signs == 0] = 1.0
  proj = axes * signs * scale
  return Whitening(mean=mean.astype(np.float32), proj=proj.astype(np.float32))


def apply_whitening(base: np.ndarray, whitening: Whitening | None) -> np.ndarray:
  """Search descriptors ``[N, d]`` float32, L2-normalised (identity if ``None``)."""
  base = np.asarray(base, np.float32)
  if whitening is None:
    return base
  y = (base - whitening.mean) @ whitening.proj
  return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# ----------------------------------------------------------------------------
# Exact top-k search, streamed over chunks of the database.


@jax.jit
def _chunk_topk_merge(queries, chunk, n_valid, offset, best_scores, best_index):
  scores = queries @ chunk.T  # [Q, chunk]
  col = jnp.arange(chunk.shape[0])
  scores = jnp.where(col[None, :] < n_valid, scores, -jnp.inf)
  k = best_scores.shape[1]
  kc = min(k, chunk.shape[0])
  s, i = jax.lax.top_k(scores, kc)
  cand_s = jnp.concatenate([best_scores, s], axis=1)
  cand_i = jnp.concatenate([best_index, (i + offset).astype(best_index.dtype)], axis=1)
  top_s, pos = jax.lax.top_k(cand_s, k)
  return top_s, jnp.take_along_axis(cand_i, pos, axis=1)


def topk_search(queries: np.ndarray, database: np.ndarray, k: int,
                chunk_size: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
  """Exact top-k by inner product (cosine for L2-normalised rows).

  Args:
    queries: ``[Q, d]`` float32.
    database: ``[N, d]`` float32 (NumPy, host memory; may be a memmap).
    k: results per query (clamped to N).
    chunk_size: database rows per matrix product; peak extra memory is about
      ``chunk_size · (d + Q) · 4`` bytes.

  Returns:
    ``(scores [Q, k] float32, indices [Q, k] int64)``, best first; ties go to
    the lower index.
  """
  queries = np.asarray(queries, np.float32)
  if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
    raise RetrievalError(f"query descriptors {queries.shape} do not match the index "
                         f"descriptors {database.shape}")
  n = database.shape[0]
  k = int(min(k, n))
  q = queries.shape[0]
  if k <= 0:
    return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
  chunk_size = int(min(chunk_size, max(n, k)))
  best_s = jnp.full((q, k), -jnp.inf, jnp.float32)
  best_i = jnp.full((q, k), -1, jnp.int32)
  qj = jnp.asarray(queries)
  for start in range(0, n, chunk_size):
    chunk = np.asarray(database[start:start + chunk_size], np.float32)
    m = chunk.shape[0]
    if m < chunk_size:
      chunk = np.concatenate([chunk, np.zeros((chunk_size - m, chunk.shape[1]), np.float32)])
    best_s, best_i = _chunk_topk_merge(qj, jnp.asarray(chunk), m, start, best_s, best_i)
    best_s.block_until_ready()  # one chunk in flight at a time: bounded memory
  return np.asarray(best_s), np.asarray(best_i).astype(np.int64)


# ----------------------------------------------------------------------------
# Leave-one-out evaluation.


def leave_one_out(descriptors: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
  """P@1, P@5 and mAP of leave-one-out cosine retrieval (float64 NumPy).

  Every image queries all others; relevant = same label. Ties in similarity
  are broken by index (stable sort).
  """
  x = np.asarray(descriptors, np.float64)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
  labels = np.asarray(labels)
  n = x.shape[0]
  if n < 2:
    raise RetrievalError("leave-one-out evaluation needs at least 2 images")
  sim = x @ x.T
  np.fill_diagonal(sim, -np.inf)
  order = np.argsort(-sim, axis=1, kind="stable")[:, :n - 1]
  rel = labels[order] == labels[:, None]
  nrel = rel.sum(axis=1)
  ranks = np.arange(1, n)
  ap = np.where(nrel > 0, (rel * np.cumsum(rel, axis=1) / ranks).sum(axis=1) / np.maximum(nrel, 1),
                0.0)
  k5 = min(5, n - 1)
  return {"p_at_1": float(rel[:, 0].mean()), "p_at_5": float(rel[:, :k5].mean()),
          "map": float(ap.mean())}


# ----------------------------------------------------------------------------
# The index: records + descriptors, saved atomically as one npz.


def weights_fingerprint(weights: vgg_lib.VGGWeights) -> str:
  """SHA-256 over the layer names, shapes and float32 bytes of the weights."""
  h = hashlib.sha256(weights.preprocessing.encode())
  for name in weights.layers:
    for kind in ("kernel", "bias"):
      a = np.ascontiguousarray(np.asarray(weights.params[name][kind], np.float32))
      h.update(f"{name}/{kind}{a.shape}".encode())
      h.update(a.tobytes())
  return h.hexdigest()


@dataclasses.dataclass
class StyleIndex:
  """An in-memory index.

  Attributes:
    config: the descriptor config.
    vgg: ``{"fingerprint", "source", "preprocessing"}`` of the VGG weights.
    paths: relative POSIX paths, sorted.
    sha256, size, mtime_ns: per file.
    base: ``[N, D]`` float32 base descriptors.
    whitening: fitted whitening or ``None``.
    search: ``[N, d]`` float32 search descriptors.
    library: library root when built (informational).
    failed: ``[(relpath, message)]`` unreadable files of the last build.
    complete: ``False`` for a resumable partial index.
  """

  config: DescriptorConfig
  vgg: dict
  paths: list
  sha256: list
  size: np.ndarray
  mtime_ns: np.ndarray
  base: np.ndarray
  whitening: Whitening | None = None
  search: np.ndarray | None = None
  library: str = ""
  failed: list = dataclasses.field(default_factory=list)
  complete: bool = True

  def __len__(self) -> int:
    return len(self.paths)

  def refit(self) -> "StyleIndex":
    """Refits the whitening on ``base`` and recomputes ``search``."""
    self.whitening = fit_whitening(self.base, self.config)
    self.search = apply_whitening(self.base, self.whitening)
    return self

  def query_descriptors(self, base: np.ndarray) -> np.ndarray:
    """Maps query base descriptors ``[Q, D]`` into the search space ``[Q, d]``."""
    return apply_whitening(base, self.whitening)


def _meta(index: StyleIndex) -> dict:
  return {
      "format": INDEX_FORMAT, "version": INDEX_VERSION,
      "descriptor": index.config.to_dict(), "vgg": dict(index.vgg), "library": index.library,
      "complete": bool(index.complete), "failed": [list(f) for f in index.failed],
      "count": len(index), "descriptor_dim": int(index.base.shape[1]),
      "whitening": None if index.whitening is None else {"dim": index.whitening.dim},
  }


def save_index(index: StyleIndex, path: str) -> None:
  """Writes ``index`` to ``path`` atomically (temporary file + rename).

  ``search`` / ``whitening`` must be current (call ``refit`` first).
  """
  if index.search is None:
    index.refit()
  d = index.base.shape[1]
  arrays = {
      "meta": np.asarray(json.dumps(_meta(index), sort_keys=True)),
      "paths": np.asarray(index.paths, dtype=np.str_).reshape(-1),
      "sha256": np.asarray(index.sha256, dtype=np.str_).reshape(-1),
      "size": np.asarray(index.size, np.int64).reshape(-1),
      "mtime_ns": np.asarray(index.mtime_ns, np.int64).reshape(-1),
      "base": np.asarray(index.base, np.float32).reshape(-1, d),
      "search": np.asarray(index.search, np.float32),
      "whiten_mean": (np.zeros((0,), np.float32) if index.whitening is None
                      else index.whitening.mean),
      "whiten_proj": (np.zeros((0, 0), np.float32) if index.whitening is None
                      else index.whitening.proj),
  }
  with rundir.atomic_open(path) as f:
    np.savez(f, **arrays)


def load_index(path: str) -> StyleIndex:
  """Reads an index written by ``save_index``; ``RetrievalError`` if unusable."""
  if not os.path.exists(path):
    raise RetrievalError(f"{path}: no such index file; build one with "
                         f"`experiments/retrieve.py index --library DIR --out {path}`")
  advice = "rebuild it with `experiments/retrieve.py index --rebuild ...`"
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
  except Exception as e:  # noqa: BLE001 - zip/npz/json errors all mean "corrupt"
    raise RetrievalError(f"{path}: not a readable style index ({type(e).__name__}: {e}); "
                         f"{advice}") from None
  if meta.get("format") != INDEX_FORMAT:
    raise RetrievalError(f"{path}: not a jaxstyle style index (format {meta.get('format')!r}); "
                         f"{advice}")
  if meta.get("version") != INDEX_VERSION:
    raise RetrievalError(f"{path}: index version {meta.get('version')} is not supported "
                         f"(expected {INDEX_VERSION}); {advice}")
  try:
    config = DescriptorConfig.from_dict(meta["descriptor"])
    n = len(arrays["paths"])
    base = arrays["base"]
    for key in ("sha256", "size", "mtime_ns", "base", "search"):
      if arrays[key].shape[0] != n:
        raise ValueError(f"{key} has {arrays[key].shape[0]} rows for {n} paths")
    if n and base.shape[1] != descriptor_dim(config):
      raise ValueError(f"descriptor dim {base.shape[1]} != {descriptor_dim(config)} of its config")
    whitening = None
    if arrays["whiten_proj"].size:
      whitening = Whitening(mean=arrays["whiten_mean"], proj=arrays["whiten_proj"])
      if whitening.proj.shape[0] != base.shape[1] or arrays["search"].shape[1] != whitening.dim:
        raise ValueError("whitening shapes do not match the descriptors")
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(arrays["search"]))):
      raise ValueError("non-finite descriptors")
  except (KeyError, ValueError, TypeError, JaxstyleError) as e:
    raise RetrievalError(f"{path}: corrupt style index ({type(e).__name__}: {e}); {advice}") \
        from None
  return StyleIndex(
      config=config, vgg=dict(meta.get("vgg", {})), paths=[str(p) for p in arrays["paths"]],
      sha256=[str(h) for h in arrays["sha256"]], size=arrays["size"], mtime_ns=arrays["mtime_ns"],
      base=base.astype(np.float32), whitening=whitening,
      search=arrays["search"].astype(np.float32), library=str(meta.get("library", "")),
      failed=[tuple(f) for f in meta.get("failed", [])], complete=bool(meta.get("complete")))


def check_compatible(index: StyleIndex, config: DescriptorConfig, fingerprint: str,
                     path: str) -> None:
  """Raises ``RetrievalError`` if ``index`` was built with another config/VGG."""
  if index.config != config:
    theirs, ours = index.config.to_dict(), config.to_dict()
    diff = {k: (theirs[k], ours[k]) for k in ours if theirs.get(k) != ours[k]}
    raise RetrievalError(
        f"{path} was built with another descriptor config (index vs requested: {diff}); "
        "use the same --descriptor settings, pass --rebuild to replace it, or choose another --out")
  if index.vgg.get("fingerprint") != fingerprint:
    raise RetrievalError(
        f"{path} was built with other VGG weights ({index.vgg.get('source')}, fingerprint "
        f"{str(index.vgg.get('fingerprint'))[:12]}…) than the ones given now "
        f"(fingerprint {fingerprint[:12]}…); pass the same --vgg_weights or rebuild the index")


def partial_path(out: str) -> str:
  """Where ``build_index`` keeps its resumable partial index."""
  return out + ".partial"


def _try_load(path: str, config: DescriptorConfig, fingerprint: str, strict: bool
              ) -> StyleIndex | None:
  if not os.path.exists(path):
    return None
  try:
    index = load_index(path)
    check_compatible(index, config, fingerprint, path)
    return index
  except RetrievalError:
    if strict:
      raise
    return None


@dataclasses.dataclass
class BuildReport:
  """What ``build_index`` did (counts of files)."""

  total: int = 0
  embedded: int = 0
  reused: int = 0
  resumed: int = 0
  dropped: int = 0
  failed: list = dataclasses.field(default_factory=list)


def build_index(library: str, out: str, weights: vgg_lib.VGGWeights,
                config: DescriptorConfig, *, batch_size: int = 8, group_size: int = 32,
                save_every: int = 256, rebuild: bool = False,
                progress: Callable[[int, int], None] | None = None
                ) -> tuple[StyleIndex, BuildReport]:
  """Builds or updates the index of every image under ``library``.

  Incremental: a file whose relative path, size and mtime match the existing
  index at ``out`` is reused without reading it; otherwise its SHA-256 is
  computed and a stored descriptor with the same content hash is reused (so
  moved/touched files are not re-embedded); only new or changed content is
  embedded. Files no longer present are dropped. Unreadable files are
  skipped and listed in ``report.failed`` (and the index meta).

  Resumable: every ``save_every`` newly embedded images, the descriptors so far
  are saved atomically to ``partial_path(out)``; a later call picks them up.
  ``out`` is replaced only once, atomically, by the complete index.

  Args:
    library: folder (walked recursively; hidden files skipped).
    out: index file.
    weights: VGG-19 weights.
    config: descriptor config.
    batch_size: tiles per VGG batch.
    group_size: images loaded and embedded together.
    save_every: newly embedded images between partial saves.
    rebuild: ignore (and replace) an existing index at ``out``, even one with
      another config or a corrupt one.
    progress: called as ``progress(done, total)`` after each group.

  Raises:
    RetrievalError: no image files, none readable, or ``out`` holds an index
      with another config/weights (unless ``rebuild``).
  """
  config = get_config(config)
  fingerprint = weights_fingerprint(weights)
  files = images_lib.iter_image_files(library)
  if not files:
    raise RetrievalError(f"{library}: no image files found (looked for "
                         f"{', '.join(images_lib.IMAGE_EXTENSIONS)}, recursively)")
  rel = [os.path.relpath(p, library).replace(os.sep, "/") for p in files]
  report = BuildReport(total=len(files))

  previous = None if rebuild else _try_load(out, config, fingerprint, strict=True)
  partial = _try_load(partial_path(out), config, fingerprint, strict=False)
  by_path: dict[str, tuple] = {}
  by_hash: dict[str, np.ndarray] = {}
  for source_name, src in (("previous", previous), ("partial", partial)):
    if src is None:
      continue
    for i, p in enumerate(src.paths):
      entry = (src.sha256[i], int(src.size[i]), int(src.mtime_ns[i]), src.base[i], source_name)
      by_path[p] = entry
      by_hash[src.sha256[i]] = src.base[i]

  dim = descriptor_dim(config)
  records: dict[str, tuple[str, int, int, np.ndarray]] = {}
  todo: list[tuple[str, str, str, int, int]] = []  # (abs, rel, sha, size, mtime)
  for path, r in zip(files, rel):
    try:
      st = os.stat(path)
    except OSError as e:
      report.failed.append((r, f"cannot stat ({e.strerror or e})"))
      continue
    old = by_path.get(r)
    if old is not None and old[1] == st.st_size and old[2] == st.st_mtime_ns:
      records[r] = (old[0], st.st_size, st.st_mtime_ns, old[3])
      report.resumed += old[4] == "partial"
      report.reused += old[4] == "previous"
      continue
    try:
      sha = rundir.file_sha256(path)
    except OSError as e:
      report.failed.append((r, f"cannot read ({e.strerror or e})"))
      continue
    if sha in by_hash:
      records[r] = (sha, st.st_size, st.st_mtime_ns, by_hash[sha])
      report.reused += 1
      continue
    todo.append((path, r, sha, st.st_size, st.st_mtime_ns))
  if previous is not None:
    report.dropped = len(set(previous.paths) - set(rel))

  embedder = Embedder(weights, config, batch_size=batch_size)
  vgg_meta = {"fingerprint": fingerprint, "source": weights.source,
              "preprocessing": weights.preprocessing}

  def snapshot(complete: bool) -> StyleIndex:
    keys = sorted(records)
    base = (np.stack([records[k][3] for k in keys]).astype(np.float32) if keys
            else np.zeros((0, dim), np.float32))
    index = StyleIndex(
        config=config, vgg=vgg_meta, paths=keys, sha256=[records[k][0] for k in keys],
        size=np.asarray([records[k][1] for k in keys], np.int64),
        mtime_ns=np.asarray([records[k][2] for k in keys], np.int64), base=base,
        library=os.path.abspath(library), failed=sorted(report.failed), complete=complete)
    if complete:
      return index.refit()
    index.search = base  # partial files are never searched; skip the whitening fit
    return index

  done = len(files) - len(todo)
  if progress:
    progress(done, len(files))
  since_save = 0
  for start in range(0, len(todo), group_size):
    group = todo[start:start + group_size]
    (desc,), ok, failed = embedder.embed_files([g[0] for g in group])
    for j, i in enumerate(ok):
      _, r, sha, size, mtime = group[i]
      records[r] = (sha, size, mtime, desc[j])
      by_hash[sha] = desc[j]
    for p, msg in failed:
      r = os.path.relpath(p, library).replace(os.sep, "/")
      report.failed.append((r, msg))
    report.embedded += len(ok)
    since_save += len(ok)
    done += len(group)
    if save_every and since_save >= save_every and start + group_size < len(todo):
      save_index(snapshot(False), partial_path(out))
      since_save = 0
    if progress:
      progress(done, len(files))

  if not records:
    raise RetrievalError(f"{library}: none of the {len(files)} image files could be read "
                         f"(first error: {report.failed[0][1] if report.failed else '?'}); "
                         "no index written")
  index = snapshot(True)
  save_index(index, out)
  if os.path.exists(partial_path(out)):
    os.unlink(partial_path(out))
  return index, report


# ----------------------------------------------------------------------------
# Queries.


def query_index(index: StyleIndex, weights: vgg_lib.VGGWeights, image_paths: Sequence[str],
                k: int = 10, batch_size: int = 8, chunk_size: int = 65_536
                ) -> tuple[np.ndarray, np.ndarray]:
  """Top-k library files for each query image.

  Returns:
    ``(scores [Q, k], indices [Q, k])`` into ``index.paths``.

  Raises:
    RetrievalError: VGG weights differ from the index's.
    ImageError: a query image cannot be read.
  """
  fingerprint = weights_fingerprint(weights)
  if index.vgg.get("fingerprint") != fingerprint:
    raise RetrievalError(
        f"the index was built with other VGG weights ({index.vgg.get('source')}) than "
        f"{weights.source}; pass the same --vgg_weights or rebuild the index")
  ims = [images_lib.load_image(p, max(index.config.scales), side="shorter") for p in image_paths]
  (base,) = Embedder(weights, index.config, batch_size=batch_size).embed(ims)
  return topk_search(index.query_descriptors(base), index.search, k, chunk_size)


def query_profile(index: StyleIndex, profile_path: str, k: int = 10):
  """Query by a personal ``.style`` profile (hook; personalization is not built yet).

  Once ``jaxstyle.personalize`` exists, a profile will carry a style latent;
  it will be mapped into this index's search space and searched with
  ``topk_search``. Until then this raises ``RetrievalError``.
  """
  raise RetrievalError(
      f"{profile_path}: querying by a {PROFILE_SUFFIX} profile is not available yet: "
      "personalization (jaxstyle.personalize) does not exist in this build; query with --image")
