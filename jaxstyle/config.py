"""Configs as data: frozen dataclasses whose fields carry their own help and checks.

Every experiment and every library settings object is one frozen dataclass.
Each field is declared with ``setting(default, help, ...)``, so the help text,
the allowed values and the resume rule live next to the field, and everything
else is derived from it: command-line flags (``jaxstyle.cli``), validation,
``config.json`` (``to_dict``/``from_dict``) and the resume check
(``resume_mismatch``)::

  @dataclasses.dataclass(frozen=True)
  class Config:
    batch_size: int = setting(64, "Global batch size.", gt=0, resume=True)
    loss: str = setting("hinge", "GAN loss.", choices=("hinge", "lsgan"), resume=True)

    def check(self):          # optional cross-field rules
      if ...: raise invalid("loss", self.loss, "needs ...")

  cfg = validate(Config(batch_size=32))

Supported field types: ``bool``, ``int``, ``float``, ``str``, each optionally
``| None``, and ``tuple[T, ...]`` of those. Other types need ``parse`` (text →
value) and ``format`` (value → text) for their flag. Nested dataclasses are
allowed (``to_dict``/``from_dict`` recurse) but are never flags.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable, Mapping

from jaxstyle.errors import ConfigError

_META = "jaxstyle_setting"

# Help texts of settings that many commands share (one wording everywhere).
SEED_HELP = ("Seed of every random draw (init, data order, noise). Same seed and device count give "
             "identical numbers.")
MNIST_DIR_HELP = ("Directory with MNIST IDX files (train-images-idx3-ubyte[.gz], "
                  "train-labels-idx1-ubyte[.gz], t10k-...). If unset, MNIST comes from TFDS.")
VGG_WEIGHTS_HELP = ("VGG-19 weights: a jaxstyle .npz (or a torchvision .pth / Keras .h5, converted on "
                    "load). Default: $JAXSTYLE_VGG19, else ~/.cache/jaxstyle/vgg19.npz (`python -m "
                    "jaxstyle.vgg download` puts it there). Partial files work for layers up to their "
                    "deepest conv.")


@dataclasses.dataclass(frozen=True)
class Setting:
  """What ``setting`` records about one field (see ``settings``)."""
  name: str
  type: Any
  default: Any
  help: str
  choices: tuple | None = None
  gt: float | None = None
  ge: float | None = None
  lt: float | None = None
  le: float | None = None
  check: Callable[[Any], str | None] | None = None
  resume: bool = False
  flag: bool = True
  parse: Callable[[str], Any] | None = None
  format: Callable[[Any], str] | None = None
  flag_name: str | None = None

  @property
  def cli_name(self) -> str:
    """The flag's name: ``flag_name`` if given, else the field name."""
    return self.flag_name or self.name

  @property
  def base_type(self) -> Any:
    """The type without ``| None`` (e.g. ``int`` for ``int | None``)."""
    return _strip_optional(self.type)[0]

  @property
  def optional(self) -> bool:
    return _strip_optional(self.type)[1]

  @property
  def element_type(self) -> Any:
    """For ``tuple[T, ...]`` fields: ``T``; else None."""
    base = self.base_type
    if typing.get_origin(base) is tuple:
      args = typing.get_args(base)
      return args[0] if args else None
    return None


def setting(default: Any, help: str, *, choices=None, gt=None, ge=None, lt=None, le=None,
            check: Callable[[Any], str | None] | None = None, resume: bool = False,
            flag: bool = True, parse: Callable[[str], Any] | None = None,
            format: Callable[[Any], str] | None = None, flag_name: str | None = None) -> Any:
  """A dataclass field with its help text and checks.

  Args:
    default: the default value (immutable: use tuples, not lists).
    help: one or two sentences for ``--help``; must not be empty.
    choices: allowed values.
    gt, ge, lt, le: numeric bounds (``None`` values are not checked).
    check: ``value -> problem text or None`` for rules the bounds cannot say.
    resume: the setting must match to resume a run directory (model shape,
      optimiser, data order, ...).
    flag: expose it as a command-line flag.
    parse, format: text ↔ value conversion for the flag of a non-basic type.
    flag_name: the flag's name when it differs from the field's (e.g. a short
      ``lr`` for ``learning_rate``); errors then name the flag.
  """
  if not help or not help.strip():
    raise ValueError("setting() needs a help text")
  meta = dict(help=help, choices=tuple(choices) if choices is not None else None, gt=gt, ge=ge,
              lt=lt, le=le, check=check, resume=resume, flag=flag, parse=parse, format=format,
              flag_name=flag_name)
  return dataclasses.field(default=default, metadata={_META: meta})


def like(cls: type, name: str, default: Any = dataclasses.MISSING, **overrides: Any) -> Any:
  """A field declared like setting ``name`` of config class ``cls``: its help, checks and resume rule.

  For flat experiment configs that expose a nested library config's settings
  as their own flags. ``default`` (else ``cls``'s) and ``overrides`` (any
  ``setting`` keyword) change the copy, not the original.
  """
  s = find(cls, name)
  meta = dict(help=s.help, choices=s.choices, gt=s.gt, ge=s.ge, lt=s.lt, le=s.le, check=s.check,
              resume=s.resume, flag=s.flag, parse=s.parse, format=s.format, flag_name=s.flag_name)
  meta.update(overrides)
  return setting(s.default if default is dataclasses.MISSING else default, **meta)


def finite(value: float) -> str | None:
  """A ``setting(check=...)`` for floats that must not be infinite (NaN is always refused)."""
  return None if math.isfinite(value) else "must be a finite number"


def invalid(name: str, value: Any, problem: str) -> ConfigError:
  """A ``ConfigError`` for setting ``name`` (its ``.setting`` attribute names it)."""
  err = ConfigError(f"{name}={value!r}: {problem}")
  err.setting = name
  err.problem = problem
  err.value = value
  return err


def _strip_optional(tp: Any) -> tuple[Any, bool]:
  origin = typing.get_origin(tp)
  if origin in (typing.Union, types.UnionType):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) == 1:
      return args[0], True
  return tp, False


def settings(cls_or_cfg: Any) -> list[Setting]:
  """One ``Setting`` per field declared with ``setting()``, in field order."""
  cls = cls_or_cfg if isinstance(cls_or_cfg, type) else type(cls_or_cfg)
  hints = typing.get_type_hints(cls)
  out = []
  for f in dataclasses.fields(cls):
    meta = f.metadata.get(_META)
    if meta is None:
      continue
    default = f.default if f.default is not dataclasses.MISSING else None
    out.append(Setting(name=f.name, type=hints[f.name], default=default, **meta))
  return out


def _check_value(s: Setting, value: Any) -> str | None:
  """Problem text for ``value`` of setting ``s``, or None."""
  if value is None:
    return None if s.optional else "must be set"
  if s.choices is not None:
    items = value if s.element_type is not None and isinstance(value, tuple) else (value,)
    bad = [v for v in items if v not in s.choices]
    if bad:
      return f"must be one of {', '.join(map(str, s.choices))}"
  numbers = []
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    numbers = [value]
  elif isinstance(value, tuple) and s.element_type in (int, float):
    numbers = list(value)
  for v in numbers:
    if isinstance(v, float) and math.isnan(v):
      return "must be a number, not NaN"
    for bound, ok, word in ((s.gt, lambda b: v > b, ">"), (s.ge, lambda b: v >= b, ">="),
                            (s.lt, lambda b: v < b, "<"), (s.le, lambda b: v <= b, "<=")):
      if bound is not None and not ok(bound):
        return f"must be {word} {bound:g}"
  if s.check is not None:
    return s.check(value)
  return None


def validate(cfg: Any) -> Any:
  """Checks every field (bounds, choices, ``check``) and then ``cfg.check()``; returns ``cfg``.

  Raises:
    ConfigError: naming the first invalid setting.
  """
  for s in settings(cfg):
    value = getattr(cfg, s.name)
    if dataclasses.is_dataclass(value):
      validate(value)
      continue
    problem = _check_value(s, value)
    if problem:
      raise invalid(s.name, value, problem)
  hook = getattr(cfg, "check", None)
  if callable(hook):
    hook()
  return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
  """A JSON-able dict of every field (tuples become lists, nested configs dicts)."""

  def conv(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
      return to_dict(v)
    if isinstance(v, (tuple, list)):
      return [conv(x) for x in v]
    return v

  return {f.name: conv(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _from_json(tp: Any, v: Any) -> Any:
  tp, _ = _strip_optional(tp)
  if v is None:
    return None
  if dataclasses.is_dataclass(tp):
    return from_dict(tp, v)
  if typing.get_origin(tp) is tuple:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
      return tuple(_from_json(args[0], x) for x in v)
    return tuple(_from_json(a, x) for a, x in zip(args, v))
  if tp is float and isinstance(v, int):
    return float(v)
  return v


def from_dict(cls: type, d: Mapping[str, Any], *, ignore_unknown: bool = False) -> Any:
  """Rebuilds a config from ``to_dict`` output (``from_dict(C, to_dict(c)) == c``).

  Missing keys take their defaults. Unknown keys raise ``ConfigError`` unless
  ``ignore_unknown``; a ``d`` that is not a mapping (a damaged file) always does.
  """
  if not isinstance(d, Mapping):
    raise ConfigError(f"{cls.__name__} settings must be a JSON object, got {type(d).__name__}")
  hints = typing.get_type_hints(cls)
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(d) - names)
  if unknown and not ignore_unknown:
    raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}")
  return cls(**{k: _from_json(hints[k], v) for k, v in d.items() if k in names})


def resume_mismatch(cls: type, old: Mapping[str, Any], new: Any) -> str | None:
  """First ``resume=True`` setting whose value in ``old`` (a ``to_dict``) differs from ``new``.

  Returns ``"name: old → new"`` style text (``"--name=OLD (now NEW)"``) or None.
  Settings absent from ``old`` (added later) are not compared.
  """
  hints = typing.get_type_hints(cls)
  for s in settings(cls):
    if not s.resume or s.name not in old:
      continue
    was = _from_json(hints[s.name], old[s.name])
    now = getattr(new, s.name)
    if was != now:
      return f"--{s.cli_name}={text(s, was)} (now {text(s, now)})"
  return None


def text(s: Setting, value: Any) -> str:
  """``value`` of setting ``s`` as it would be written on a command line."""
  if value is None:
    return "None"
  if s.format is not None:
    return s.format(value)
  if isinstance(value, tuple):
    return ",".join(map(str, value))
  return str(value)


def find(cls: type, name: str) -> Setting:
  """The ``Setting`` of field ``name`` of ``cls``."""
  for s in settings(cls):
    if s.name == name:
      return s
  raise KeyError(name)
