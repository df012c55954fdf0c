"""Metrics of conditional generators: the built-in registered metrics and ``Evaluator``.

A generator metric is ``metric(data: EvalData) -> dict[str, float]``;
``EvalData`` holds the generated images, their conditioning labels, and a
classifier's logits and features on them and on the real reference set.
Registered here:

=====================  ===============================================================
``oracle_accuracy``    ``oracle_accuracy``: fraction of generated images the oracle
                       classifies as their conditioning label; ``oracle_accuracy_min_class``
``fid``                ``fid``: Frechet distance between Gaussians fitted to the oracle's
                       penultimate features of generated and real images
``inception_score``    ``inception_score``: exp E_x KL(p(y|x) || p(y)) with the oracle's
                       softmax; 1 (useless) .. num_classes (confident and balanced)
``diversity``          ``diversity``: per class, mean pairwise L2 distance of oracle
                       features of generated images divided by the same on real
                       images of that class, averaged over classes (~1 = as diverse as
                       real data, 0 = one image per class); ``diversity_min`` (worst
                       class) and ``diversity_pixel`` (the same in pixel space)
=====================  ===============================================================

Entry points::

  evaluator = metrics.Evaluator(oracle, real_images, real_labels, num_samples=5000)
  results = evaluator(sample_fn, key)          # dict, e.g. {"fid": ..., ...}
  run_dir.log_metrics(step, results)           # one JSON line in metrics.jsonl

  metrics.evaluate_generator(sample_fn, oracle, real_images, real_labels, num_samples, key)

where ``sample_fn(key, labels int32 [B]) -> images float32 [B, H, W, C] in [0, 1]``
and ``oracle(images) -> (logits [N, num_classes], features [N, D])`` (e.g.
``jaxstyle.nets.classifier.load_oracle()``). ``Evaluator`` computes the real
set's features, statistics and per-class distances once and reuses them on
every call. The FID floor (real vs real) is ``Evaluator.fid_floor(images)``,
``fid_floor(oracle, images_a, images_b)`` or, with the other real-data scores,
``reference_scores(...)``. FID is biased upward for small samples, so compare
a generator's FID only with a floor computed from the same number of images.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence

import jax
import numpy as np

from jaxstyle.metrics.registry import MetricError, get, register
from jaxstyle.metrics.stats import (frechet_distance, fid_from_features, gaussian_stats, inception_score,
                                    per_class_pairwise_distance, softmax)

FeatureModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
SampleFn = Callable[[jax.Array, jax.Array], Any]

DEFAULT_METRICS = ("oracle_accuracy", "fid", "inception_score", "diversity")


@dataclasses.dataclass
class EvalData:
  """What a metric sees.

  Attributes:
    fake_images: float32 [N, H, W, C] in [0, 1], generated.
    fake_labels: int32 [N], the labels they were conditioned on.
    fake_logits, fake_features: classifier outputs on them, [N, K] and [N, D].
    real_images, real_labels, real_logits, real_features: the same for the
      real reference set.
    num_classes: K.
    cache: per-evaluator memo for quantities of the real set (shared across
      calls of one ``Evaluator``); use ``cached(name, fn)``.
  """
  fake_images: np.ndarray
  fake_labels: np.ndarray
  fake_logits: np.ndarray
  fake_features: np.ndarray
  real_images: np.ndarray
  real_labels: np.ndarray
  real_logits: np.ndarray
  real_features: np.ndarray
  num_classes: int
  cache: dict = dataclasses.field(default_factory=dict)

  def cached(self, name: str, fn: Callable[[], Any]) -> Any:
    if name not in self.cache:
      self.cache[name] = fn()
    return self.cache[name]

  def real_stats(self) -> tuple[np.ndarray, np.ndarray]:
    return self.cached("real_stats", lambda: gaussian_stats(self.real_features))


@register("oracle_accuracy")
def _oracle_accuracy(data: EvalData) -> dict:
  correct = data.fake_logits.argmax(axis=-1) == data.fake_labels
  per_class = [correct[data.fake_labels == c].mean() for c in range(data.num_classes)
               if np.any(data.fake_labels == c)]
  return {"oracle_accuracy": float(correct.mean()), "oracle_accuracy_min_class": float(min(per_class))}


@register("fid")
def _fid(data: EvalData) -> dict:
  return {"fid": frechet_distance(*gaussian_stats(data.fake_features), *data.real_stats())}


@register("inception_score")
def _inception_score(data: EvalData) -> dict:
  return {"inception_score": inception_score(softmax(data.fake_logits))[0]}


@register("diversity")
def _diversity(data: EvalData) -> dict:
  k = data.num_classes
  real_f = data.cached("real_class_dist_features", lambda: per_class_pairwise_distance(
      data.real_features, data.real_labels, k))
  real_p = data.cached("real_class_dist_pixels", lambda: per_class_pairwise_distance(
      data.real_images, data.real_labels, k))
  ratio_f = per_class_pairwise_distance(data.fake_features, data.fake_labels, k) / np.maximum(real_f, 1e-12)
  ratio_p = per_class_pairwise_distance(data.fake_images, data.fake_labels, k) / np.maximum(real_p, 1e-12)
  return {"diversity": float(ratio_f.mean()), "diversity_min": float(ratio_f.min()),
          "diversity_pixel": float(ratio_p.mean())}


# ----------------------------------------------------------------------------
# Sampling and the high-level entry points.


def balanced_labels(num_samples: int, num_classes: int) -> np.ndarray:
  """int32 [num_samples]: 0, 1, ..., K-1, 0, 1, ... (classes balanced to within 1)."""
  return (np.arange(num_samples) % num_classes).astype(np.int32)


def generate(sample_fn: SampleFn, key: jax.Array, labels: np.ndarray, batch_size: int,
             image_shape: Sequence[int] | None = None) -> np.ndarray:
  """Calls ``sample_fn`` on chunks of ``batch_size`` labels -> float32 [N, H, W, C].

  Chunk i gets key ``fold_in(key, i)``; the last chunk is padded to
  ``batch_size`` (repeating its first label) and trimmed, so a jitted
  ``sample_fn`` compiles once. Raises MetricError if the output is not
  [batch, *image_shape], has NaNs, or leaves [0, 1].
  """
  labels = np.asarray(labels, np.int32)
  out = []
  for i, start in enumerate(range(0, labels.shape[0], batch_size)):
    chunk = labels[start:start + batch_size]
    m = chunk.shape[0]
    if m < batch_size:
      chunk = np.concatenate([chunk, np.full(batch_size - m, chunk[0], np.int32)])
    images = np.asarray(sample_fn(jax.random.fold_in(key, i), jax.numpy.asarray(chunk)), np.float32)
    expect = (batch_size,) + tuple(image_shape) if image_shape is not None else None
    if images.ndim != 4 or images.shape[0] != batch_size or (expect and images.shape != expect):
      raise MetricError(f"sample_fn returned shape {images.shape} for {batch_size} labels; "
                        f"expected {expect or '[B, H, W, C]'}")
    if not np.all(np.isfinite(images)):
      raise MetricError("sample_fn returned non-finite pixels")
    if images.min() < -1e-3 or images.max() > 1 + 1e-3:
      raise MetricError(f"sample_fn returned pixels in [{images.min():.3g}, {images.max():.3g}]; "
                        "images must be float32 in [0, 1] (map tanh outputs with (x + 1) / 2)")
    out.append(np.clip(images[:m], 0.0, 1.0))
  return np.concatenate(out)


class Evaluator:
  """Evaluates conditional generators against a fixed real set with a fixed classifier.

  Args:
    oracle: ``oracle(images) -> (logits [N, K], features [N, D])``.
    real_images: float32 [M, H, W, C] in [0, 1] (e.g. the MNIST test set).
    real_labels: int32 [M].
    names: registered metric names to compute.
    num_samples: generated images per evaluation (labels balanced over classes).
    sample_batch_size: labels per ``sample_fn`` call (make it divisible by the
      device count if ``sample_fn`` is data-parallel).
  """

  def __init__(self, oracle: FeatureModel, real_images: Any, real_labels: Any,
               names: Iterable[str] = DEFAULT_METRICS, num_samples: int = 5000,
               sample_batch_size: int = 500):
    self.names = tuple(names)
    for name in self.names:
      get(name)  # fail fast on unknown names
    self.oracle = oracle
    self.real_images = np.asarray(real_images, np.float32)
    self.real_labels = np.asarray(real_labels, np.int32)
    if self.real_images.ndim != 4 or self.real_images.shape[0] != self.real_labels.shape[0]:
      raise MetricError(f"real images {self.real_images.shape} / labels {self.real_labels.shape}: "
                        "expected [M, H, W, C] and [M]")
    self.real_logits, self.real_features = oracle(self.real_images)
    self.num_classes = int(self.real_logits.shape[-1])
    if num_samples < 2 * self.num_classes:
      raise MetricError(f"num_samples={num_samples} must be >= 2 per class ({2 * self.num_classes})")
    self.num_samples = int(num_samples)
    self.sample_batch_size = int(sample_batch_size)
    self._cache: dict = {}

  def evaluate_images(self, images: Any, labels: Any, names: Iterable[str] | None = None) -> dict:
    """Metrics of given generated images float32 [N, H, W, C] with conditioning labels [N]."""
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, np.int32)
    logits, feats = self.oracle(images)
    data = EvalData(images, labels, np.asarray(logits), np.asarray(feats), self.real_images,
                    self.real_labels, self.real_logits, self.real_features, self.num_classes,
                    self._cache)
    results: dict[str, float] = {}
    for name in (self.names if names is None else tuple(names)):
      results.update(get(name)(data))
    return results

  def __call__(self, sample_fn: SampleFn, key: jax.Array) -> dict:
    """Generates ``num_samples`` balanced samples with ``sample_fn`` and evaluates them."""
    labels = balanced_labels(self.num_samples, self.num_classes)
    images = generate(sample_fn, key, labels, self.sample_batch_size, self.real_images.shape[1:])
    return self.evaluate_images(images, labels)

  def fid_floor(self, images: Any) -> float:
    """FID of other real images (e.g. ``num_samples`` MNIST train images) vs the real set."""
    feats = self.oracle(np.asarray(images, np.float32))[1]
    return frechet_distance(*gaussian_stats(feats), *self._real_stats())

  def real_reference(self) -> dict:
    """Scores of the real set itself: oracle accuracy and inception score."""
    return {"real_oracle_accuracy": float(np.mean(self.real_logits.argmax(-1) == self.real_labels)),
            "real_inception_score": inception_score(softmax(self.real_logits))[0]}

  def _real_stats(self):
    if "real_stats" not in self._cache:
      self._cache["real_stats"] = gaussian_stats(self.real_features)
    return self._cache["real_stats"]


def fid_floor(oracle: FeatureModel, images_a: Any, images_b: Any) -> float:
  """FID between two real image sets [Na, H, W, C], [Nb, H, W, C] in the oracle's feature space."""
  return fid_from_features(oracle(np.asarray(images_a, np.float32))[1],
                           oracle(np.asarray(images_b, np.float32))[1])


def reference_scores(oracle: FeatureModel, real_images: Any, real_labels: Any, other_images: Any,
                     subset_sizes: Sequence[int] = (), seed: int = 0) -> dict:
  """Scores of real data: what a perfect generator would get.

  Args:
    oracle: ``oracle(images) -> (logits, features)``.
    real_images, real_labels: the reference set generators are compared with
      (e.g. all 10,000 MNIST test images), float32 [M, H, W, C] and int32 [M].
    other_images: independent real images (e.g. MNIST train), [L, H, W, C].
    subset_sizes: for each N, the floor FID of N random ``other_images`` vs
      all ``real_images``: the floor to compare a generator's FID with when it
      is computed from N samples (FID is biased upward by roughly 1/N).
    seed: seeds the random subsets.

  Returns:
    ``real_oracle_accuracy``, ``real_inception_score`` (of ``real_images``),
    ``fid_floor_full`` (all ``other_images`` vs all ``real_images``) and
    ``fid_floor_n{N}`` for each N.
  """
  real_logits, real_feats = oracle(np.asarray(real_images, np.float32))
  other_feats = oracle(np.asarray(other_images, np.float32))[1]
  real_stats = gaussian_stats(real_feats)
  out = {"real_oracle_accuracy": float(np.mean(real_logits.argmax(-1) == np.asarray(real_labels))),
         "real_inception_score": inception_score(softmax(real_logits))[0],
         "fid_floor_full": frechet_distance(*gaussian_stats(other_feats), *real_stats)}
  rng = np.random.default_rng(seed)
  for n in subset_sizes:
    if not 2 <= n <= other_feats.shape[0]:
      raise MetricError(f"FID floor subset size {n} outside [2, {other_feats.shape[0]}]")
    idx = rng.permutation(other_feats.shape[0])[:n]
    out[f"fid_floor_n{n}"] = frechet_distance(*gaussian_stats(other_feats[idx]), *real_stats)
  return out


def evaluate_generator(sample_fn: SampleFn, oracle: FeatureModel, real_images: Any, real_labels: Any,
                       num_samples: int, key: jax.Array, names: Iterable[str] = DEFAULT_METRICS,
                       sample_batch_size: int = 500) -> dict:
  """One-shot ``Evaluator(...)(sample_fn, key)``; see ``Evaluator`` for the arguments.

  Returns a flat ``{metric_key: float}`` dict, ready for ``RunDir.log_metrics``.
  Deterministic given ``key``. Prefer a long-lived ``Evaluator`` at repeated
  eval steps (it computes the real set's features once).
  """
  return Evaluator(oracle, real_images, real_labels, names, num_samples, sample_batch_size)(
      sample_fn, key)
