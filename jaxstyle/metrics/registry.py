"""The metric registry: metrics chosen by name.

A metric is a function registered with ``@register("name")`` that takes one
data object (for generator metrics a ``jaxstyle.metrics.generator.EvalData``)
and returns ``dict[str, float]`` (flat keys, ready for ``RunDir.log_metrics``).
``get(name)`` raises ``MetricError`` listing the registered names;
``registered()`` lists them; ``unregister(name)`` removes one (tests).
"""

from __future__ import annotations

from typing import Any, Callable

from jaxstyle.errors import MetricError


Metric = Callable[[Any], dict]
_REGISTRY: dict[str, Metric] = {}


def register(name: str) -> Callable[[Metric], Metric]:
  """Decorator: registers ``fn(data) -> dict[str, float]`` under ``name``."""

  def deco(fn: Metric) -> Metric:
    if name in _REGISTRY:
      raise ValueError(f"metric {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn

  return deco


def unregister(name: str) -> None:
  """Removes a registered metric (for tests and interactive use)."""
  _REGISTRY.pop(name, None)


def registered() -> tuple[str, ...]:
  """Names of all registered metrics, sorted."""
  return tuple(sorted(_REGISTRY))


def get(name: str) -> Metric:
  """The metric registered as ``name``; MetricError lists the valid names otherwise."""
  if name not in _REGISTRY:
    raise MetricError(f"unknown metric {name!r}; registered metrics: {', '.join(registered())}")
  return _REGISTRY[name]
