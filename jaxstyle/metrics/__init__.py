"""Evaluation metrics: a registry of named metrics over generic statistics.

* ``registry``: ``register``, ``get``, ``registered``, ``unregister``, ``MetricError``.
* ``stats``: FID / Inception-Score math and distances (NumPy, float64).
* ``generator``: metrics of conditional generators (oracle accuracy, FID, IS,
  diversity), ``Evaluator``, ``evaluate_generator``, FID floors.

Every public name of the submodules is re-exported here
(``jaxstyle.metrics.frechet_distance``, ``jaxstyle.metrics.Evaluator``, ...).
"""

from __future__ import annotations

from jaxstyle.metrics.generator import (DEFAULT_METRICS, EvalData, Evaluator, FeatureModel, SampleFn,
                                        balanced_labels, evaluate_generator, fid_floor, generate,
                                        reference_scores)
from jaxstyle.metrics.registry import Metric, MetricError, get, register, registered, unregister
from jaxstyle.metrics.stats import (fid_from_features, frechet_distance, gaussian_stats, inception_score,
                                    mean_pairwise_distance, per_class_pairwise_distance, softmax,
                                    sqrtm_psd, trace_sqrt_product)

__all__ = [
    "DEFAULT_METRICS", "EvalData", "Evaluator", "FeatureModel", "Metric", "MetricError", "SampleFn",
    "balanced_labels", "evaluate_generator", "fid_floor", "fid_from_features", "frechet_distance",
    "gaussian_stats", "generate", "get", "inception_score", "mean_pairwise_distance",
    "per_class_pairwise_distance", "reference_scores", "register", "registered", "softmax",
    "sqrtm_psd", "trace_sqrt_product", "unregister",
]
