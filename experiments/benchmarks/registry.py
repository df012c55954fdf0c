"""The benchmark registry: ``@register("name", ...)`` on a module's ``run``.

A benchmark is one module of this package with

* an ``Options`` frozen dataclass (``jaxstyle.config.setting`` fields): its
  flags, derived with ``cli.define_config_flags``;
* ``run(options) -> dict``: the measurements, JSON-able, with units in the key
  names (``_s``, ``_ms``, ``_gflops``, ``_mib``); compile time is reported apart
  from run time wherever steps are timed;
* ``@register(name, help=..., options=Options)`` on ``run``. A benchmark whose
  flags come from more than one config passes ``define_flags``,
  ``options_from_flags`` and ``config_dict`` too.

Modules import JAX and torch inside ``run``, so listing the benchmarks is
cheap and a benchmark can set XLA or device options before JAX starts.
``benchmarks.run_benchmark`` adds the metadata and writes the JSON
(``benchmarks.results``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import cli
from jaxstyle import config as cfglib


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """One registered benchmark (see the module docstring)."""
  name: str
  help: str
  options: type
  run: Callable[[Any], dict]
  define_flags: Callable[[], None]
  options_from_flags: Callable[[], Any]
  config_dict: Callable[[Any], dict]
  default_options: Callable[[], Any]


_REGISTRY: dict[str, Benchmark] = {}
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def register(name: str, *, help: str, options: type,  # pylint: disable=redefined-builtin
             define_flags: Callable[[], None] | None = None,
             options_from_flags: Callable[[], Any] | None = None,
             config_dict: Callable[[Any], dict] | None = None,
             default_options: Callable[[], Any] | None = None) -> Callable:
  """Registers the decorated ``run(options) -> dict`` as benchmark ``name``.

  Args:
    name: the subcommand of ``experiments/benchmark.py``.
    help: one line for ``benchmark.py --help``.
    options: the config dataclass ``run`` takes.
    define_flags: defines the flags (default: one per setting of ``options``).
    options_from_flags: builds ``options`` from the parsed flags (default:
      ``cli.config_from_flags(options)``).
    config_dict: ``options`` -> the record's ``config`` (default:
      ``jaxstyle.config.to_dict``).
    default_options: the options without flags, for ``benchmark.py all``
      (default: ``options()``).

  Raises:
    ValueError: ``name`` is already registered.
  """

  def decorate(run: Callable[[Any], dict]) -> Callable[[Any], dict]:
    if name in _REGISTRY:
      raise ValueError(f"benchmark {name!r} is registered twice")
    _REGISTRY[name] = Benchmark(
        name=name, help=help, options=options, run=run,
        define_flags=define_flags or (lambda: cli.define_config_flags(options)),
        options_from_flags=options_from_flags or (lambda: cli.config_from_flags(options)),
        config_dict=config_dict or cfglib.to_dict,
        default_options=default_options or options)
    return run

  return decorate


def each_at_least(minimum: int, what: str = "size") -> Callable[[tuple[int, ...]], str | None]:
  """A ``setting(check=...)`` for a non-empty tuple of integers, each >= ``minimum``."""

  def check(values: tuple[int, ...]) -> str | None:
    return None if values and min(values) >= minimum else f"needs at least one {what}, each >= {minimum}"

  return check


def registered() -> dict[str, Benchmark]:
  """Name -> benchmark, in registration order."""
  return dict(_REGISTRY)


def content_style_pairs(values: tuple[str, ...]) -> str | None:
  """A ``setting(check=...)`` for a non-empty tuple of ``content:style`` image pairs."""
  bad = [v for v in values if v.count(":") != 1 or not all(v.split(":"))]
  if not values or bad:
    return f"needs content:style pairs, got {', '.join(bad) or 'none'}"
  return None


def shared_data_dir(data_dir: str | None) -> str:
  """``data_dir``, else ``$JAXSTYLE_SHARED_DATA``, else ``../shared/data`` beside the repository."""
  return data_dir or os.environ.get("JAXSTYLE_SHARED_DATA") or os.path.join(
      os.path.dirname(_REPO), "shared", "data")
