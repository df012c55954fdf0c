"""The one command-line style of jaxstyle: absl flags, subcommands, one-line errors.

Every command (``experiments/*.py``, ``python -m jaxstyle.vgg``) is a thin absl
main built from these pieces. This is the only module of the package that
touches flags; library functions never read them.

* ``define_config_flags(Config)`` defines one flag per ``jaxstyle.config``
  setting of a config dataclass (help, default and choices from the field);
  ``config_from_flags(Config)`` builds and validates the config from them.
* ``run(main)``: ``absl.app.run`` where user errors (``JaxstyleError``, flag
  errors, stray positional arguments) print one ``error: …`` line and exit 2,
  Ctrl-C exits 130, a training run stopped by a signal (``Stopped``, after
  saving a checkpoint) prints its one line and exits 128 + signal, and
  ``--help`` exits 0. JAX's INFO lines about the platforms it probes
  ("Unable to initialize backend 'tpu'") are hidden unless ``--verbosity`` is
  given; warnings still show. ``-h`` is ``--help``. Safety net: an ``OSError``
  about a user's path (a file in the way, a folder given for a file, no
  permission, a full disk, ...) that escapes ``main`` is one ``error:`` line
  naming the path and the errno, exit 2; commands check their outputs first
  (``jaxstyle.fileio.check_output_file``/``check_output_dir``). A
  ``JaxstyleWarning`` shows as one ``warning: ...`` line.
* Resource flags: ``define_max_pixels()`` (``--max_pixels``, applied by
  ``run`` to every image the command reads: ``jaxstyle.images.set_max_pixels``)
  and ``define_max_memory()`` (``--max_memory_gb``) with
  ``check_memory(bytes, what)``, which refuses a job whose estimated peak
  memory exceeds the limit (default: the memory available now).
* ``run_subcommands({name: Subcommand(...)}, doc)``: ``prog NAME [flags]``;
  only the chosen subcommand's flags are defined, so each has its own
  ``--help`` and refuses the flags of the others.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import sys
import warnings
from typing import Any, Callable, Mapping, Sequence

from absl import app
from absl import flags

from jaxstyle import config as cfglib
from jaxstyle.errors import (NO_SPACE_ERRNOS, ConfigError, JaxstyleError, JaxstyleWarning, Stopped,
                             print_warning)

FLAGS = flags.FLAGS

_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "h", "?")
# Python loggers whose INFO lines report JAX probing platforms it does not find (e.g. the TPU).
_PROBING_LOGGERS = ("jax._src.xla_bridge",)


class UsageError(JaxstyleError):
  """A bad command line."""


def fail(message: str, code: int = 2):
  """Prints ``error: message`` as one line on stderr and exits with ``code``."""
  message = " ".join(str(message).split())
  sys.stderr.write(f"error: {message}\n")
  sys.stderr.flush()
  sys.exit(code)


# ----------------------------------------------------------------------------- common flags


def define_workdir(default: str | None = None, required: bool = True, resumes: bool = True):
  help_text = "Run directory: config.json, metrics.jsonl, checkpoints/, samples/ go here."
  if resumes:
    help_text += " Rerunning with the same workdir resumes from its latest checkpoint."
  flags.DEFINE_string("workdir", default, help_text)
  if required and default is None:
    flags.mark_flag_as_required("workdir")


def define_seed(default: int = 0):
  flags.DEFINE_integer("seed", default, cfglib.SEED_HELP)


def define_vgg_weights():
  flags.DEFINE_string("vgg_weights", None, cfglib.VGG_WEIGHTS_HELP)


def define_mnist_dir():
  flags.DEFINE_string("mnist_dir", None, cfglib.MNIST_DIR_HELP)


# ----------------------------------------------------------------------------- config flags


def _flag_text(s: cfglib.Setting, value: Any) -> Any:
  """A setting's value as the default of its absl flag."""
  if value is None:
    return None
  if s.format is not None:
    return s.format(value)
  if s.element_type is not None:
    return [str(v) for v in value]
  return value


def define_config_flags(cls: type, *, defaults: Mapping[str, Any] | None = None,
                        exclude: Sequence[str] = (), prefix: str = "") -> list[str]:
  """Defines one absl flag per flag-enabled setting of config class ``cls``.

  Args:
    cls: a dataclass whose fields use ``jaxstyle.config.setting``.
    defaults: field name → default overriding the field's own (e.g. a
      command whose first-time result needs other defaults than the library's).
    exclude: field names that get no flag (they keep their defaults).
    prefix: flag name prefix (``--{prefix}{field}``).

  Returns:
    The names of the flags defined (a setting's ``flag_name`` if it has one). A flag that already exists (e.g. ``seed``
    from ``define_seed``) is not redefined; ``config_from_flags`` reads it.
  """
  defaults = dict(defaults or {})
  unknown = set(defaults) - {s.name for s in cfglib.settings(cls)}
  if unknown:
    raise ValueError(f"defaults for unknown settings: {sorted(unknown)}")
  names = []
  for s in cfglib.settings(cls):
    if not s.flag or s.name in exclude:
      continue
    name = prefix + s.cli_name
    if name in FLAGS:
      continue
    default = _flag_text(s, defaults.get(s.name, s.default))
    base = s.base_type
    if s.parse is not None:
      flags.DEFINE_string(name, default, s.help)
    elif base is bool:
      flags.DEFINE_boolean(name, default, s.help)
    elif base is int:
      flags.DEFINE_integer(name, default, s.help)
    elif base is float:
      flags.DEFINE_float(name, default, s.help)
    elif base is str and s.choices is not None:
      flags.DEFINE_enum(name, default, [str(c) for c in s.choices], s.help)
    elif base is str:
      flags.DEFINE_string(name, default, s.help)
    elif s.element_type in (str, int, float):
      flags.DEFINE_list(name, default, s.help)
    else:
      raise TypeError(f"setting {cls.__name__}.{s.name} of type {s.type} needs parse= and format=")
    names.append(name)
  return names


def _from_flag(s: cfglib.Setting, flag_name: str, raw: Any) -> Any:
  if raw is None:
    return None
  shown = ",".join(raw) if isinstance(raw, list) else raw
  try:
    if s.parse is not None:
      return s.parse(raw)
    if s.element_type is not None:
      return tuple(s.element_type(v) for v in raw)
    return raw
  except ConfigError as e:
    raise UsageError(f"--{flag_name}={shown}: {getattr(e, 'problem', e)}") from None
  except (TypeError, ValueError) as e:
    raise UsageError(f"--{flag_name}={shown}: cannot read it ({e}); see --help") from None


def config_from_flags(cls: type, *, prefix: str = "", **overrides: Any) -> Any:
  """Builds ``cls`` from the parsed flags (and ``overrides``) and validates it.

  Settings without a flag keep their defaults. A ``ConfigError`` becomes a
  ``UsageError`` naming the flag (``--name=value: problem``).
  """
  values = {}
  for s in cfglib.settings(cls):
    name = prefix + s.cli_name
    if s.name in overrides or not s.flag or name not in FLAGS:
      continue
    values[s.name] = _from_flag(s, name, FLAGS[name].value)
  values.update(overrides)
  try:
    return cfglib.validate(cls(**values))
  except ConfigError as e:
    field = getattr(e, "setting", None)
    by_name = {s.name: s for s in cfglib.settings(cls)}
    if field in by_name and (prefix + by_name[field].cli_name) in FLAGS:
      s = by_name[field]
      raise UsageError(f"--{prefix}{s.cli_name}={cfglib.text(s, e.value)}: {e.problem}") from None
    raise


def flag_given(name: str) -> bool:
  """Whether ``--name`` was given on the command line or in a flagfile."""
  return name in FLAGS and FLAGS[name].present > 0


def refuse_given(names: Sequence[str], why: str) -> None:
  """``UsageError`` ``--NAME {why}`` for the first of ``names`` given: a flag that does not apply.

  E.g. ``refuse_given(["strength"], "applies only with --checkpoint; drop it")``.
  """
  for name in names:
    if flag_given(name):
      raise UsageError(f"--{name} {why}")


# ----------------------------------------------------------------------------- running


def _register_key_flags():
  """Shows every non-absl flag in the main module's ``--help`` (not only ``--helpfull``)."""
  main_module = sys.argv[0]
  for module, module_flags in FLAGS.flags_by_module_dict().items():
    if module.startswith("absl.") or module == main_module:
      continue
    for flag in module_flags:
      FLAGS.register_key_flag_for_module(main_module, flag)


def _quiet_platform_probing() -> None:
  """JAX's platform-probing loggers at WARNING, unless ``--verbosity`` asks for more or less."""
  if not flag_given("verbosity"):
    for name in _PROBING_LOGGERS:
      logging.getLogger(name).setLevel(logging.WARNING)


def _parse_flags(argv: list[str]) -> list[str]:
  if "h" not in FLAGS:  # -h is --help (absl has only --help, --helpshort, -?)
    argv = argv[:1] + ["--help" if a == "-h" else a for a in argv[1:]]
  try:
    return FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0] if str(e) else "bad command line (see --help)")
  except UnicodeDecodeError as e:  # absl reads flagfiles as UTF-8 text
    given = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--flagfile=")]
    fail(f"a --flagfile ({', '.join(given) or 'nested'}) is not UTF-8 text ({e}); write flags "
         "one per line in a text file")
  except SystemExit as e:
    asked = any(a.lstrip("-").split("=")[0] in _HELP_FLAGS for a in argv[1:] if a.startswith("-"))
    if asked and e.code == 1:  # absl's help flags exit 1; asking for help is not an error
      sys.exit(0)
    raise


def run(main: Callable[[list[str]], Any], argv: list[str] | None = None,
        positional: bool = False) -> None:
  """``absl.app.run(main)`` with one-line user errors (exit 2) and ``--help`` exiting 0.

  ``positional``: the command takes positional arguments (e.g. input files);
  ``main`` receives them after the program name, as absl passes them
  (flags may come before or after them). Otherwise any is an error.
  """

  def wrapped(args):
    if len(args) > 1 and not positional:
      fail(f"unexpected positional arguments: {' '.join(args[1:])} (see --help)")
    _quiet_platform_probing()
    warnings.showwarning = _show_warning
    if "max_pixels" in FLAGS and FLAGS.max_pixels is not None:
      from jaxstyle import images  # pylint: disable=g-import-not-at-top
      images.set_max_pixels(FLAGS.max_pixels)
    try:
      main(args)
    except Stopped as e:  # SIGTERM/Ctrl-C in training: a checkpoint was saved; not an error
      sys.stderr.write(f"{e}\n")
      sys.stderr.flush()
      sys.exit(e.exit_code)
    except JaxstyleError as e:
      fail(str(e))
    except KeyboardInterrupt:
      fail("interrupted", 130)
    except OSError as e:
      message = _oserror_line(e)
      if message is None:
        raise
      fail(message)
    return 0

  _register_key_flags()
  app.run(wrapped, argv=argv, flags_parser=_parse_flags)


# What to do about an OSError a user's path or disk caused (by errno).
_OSERROR_ADVICE = {
    errno.EEXIST: "a file is in the way; move it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions, or choose a path you can write",
    errno.EPERM: "check its permissions, or choose a path you can write",
    errno.EROFS: "the disk is read-only; choose another path",
    errno.ENOSPC: "the disk is full; free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free space or write elsewhere",
    errno.ENAMETOOLONG: "use a shorter path",
}


def _oserror_line(e: OSError) -> str | None:
  """The one-line message of an OSError about a user path or disk, or None (a bug: traceback)."""
  advice = _OSERROR_ADVICE.get(e.errno)
  if advice is None or (e.filename is None and e.errno not in NO_SPACE_ERRNOS):
    return None
  what = f"{e.strerror or e} [{errno.errorcode.get(e.errno, e.errno)}]"
  where = "" if e.filename is None else f"{os.fsdecode(e.filename)}: "
  if e.filename2 is not None:
    where = f"{os.fsdecode(e.filename)} -> {os.fsdecode(e.filename2)}: "
  return f"{where}{what}; {advice}"


_show_warning_default = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
  """``JaxstyleWarning`` as one ``warning: ...`` line; other warnings as Python shows them."""
  if issubclass(category, JaxstyleWarning):
    print_warning(str(message))
  else:
    _show_warning_default(message, category, filename, lineno, file, line)


# ----------------------------------------------------------------------------- resources


def define_max_pixels():
  flags.DEFINE_integer("max_pixels", None, "Refuse input images with more pixels (width x "
                       "height) than this, before decoding them. Default: Pillow's "
                       "decompression-bomb limit (about 89.5 million). Raise it for a huge image "
                       "you trust.", lower_bound=1)


def define_max_memory():
  flags.DEFINE_float("max_memory_gb", None, "Refuse a job whose estimated peak memory is above "
                     "this many GB (1e9 bytes). Default: the memory available when it starts "
                     "(free RAM; on an accelerator also its memory). Raise it if you know better.",
                     lower_bound=0)


def _available_memory() -> tuple[int, str]:
  """(bytes, what they are): free RAM now (Linux MemAvailable, else all RAM), and an accelerator's."""
  host, what = None, "memory available"
  try:
    with open("/proc/meminfo") as f:
      for row in f:
        if row.startswith("MemAvailable:"):
          host = int(row.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  if host is None:
    try:
      host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
      host, what = 16 * 10 ** 9, "assumed memory"
  try:
    import jax  # pylint: disable=g-import-not-at-top
    device = jax.devices()[0]
    limit = (device.memory_stats() or {}).get("bytes_limit") if device.platform != "cpu" else None
  except Exception:  # pylint: disable=broad-except
    limit = None
  if limit and limit < host:
    return int(limit), f"memory of the {device.platform.upper()}"
  return host, what


def _gb(n: float) -> str:
  gb = n / 1e9
  return f"{gb:,.0f}" if gb >= 100 else f"{gb:.3g}"


def check_memory(need: int, what: str) -> None:
  """Refuses ``what`` (e.g. ``--size=4096``) when its estimated peak ``need`` bytes exceed the limit.

  The limit is ``--max_memory_gb`` when given (``define_max_memory``), else the memory available.

  Raises:
    UsageError: one line with the estimate, the limit and what to change.
  """
  if "max_memory_gb" in FLAGS and FLAGS.max_memory_gb is not None:
    limit, source = FLAGS.max_memory_gb * 1e9, f"--max_memory_gb={FLAGS.max_memory_gb:g}"
  else:
    limit, source = _available_memory()
  if need > limit:
    raise UsageError(f"{what} needs about {_gb(need)} GB of memory (a conservative estimate), "
                     f"more than the {source} ({_gb(limit)} GB); use a smaller size, or raise "
                     "--max_memory_gb if you know it fits")


@dataclasses.dataclass(frozen=True)
class Subcommand:
  """One subcommand: a one-line ``help``, ``define()`` for its flags, ``main(argv)``.

  ``positional``: it takes positional arguments (``main`` gets them in ``argv[1:]``).
  """
  help: str
  define: Callable[[], None]
  main: Callable[[list[str]], Any]
  positional: bool = False


def run_subcommands(commands: Mapping[str, Subcommand], doc: str | None = None,
                    argv: list[str] | None = None) -> None:
  """Runs ``prog NAME [flags]``: defines only ``commands[NAME]``'s flags, then ``run``s its main.

  ``prog``, ``prog --help`` and ``prog help`` list the subcommands (exit 2, 0, 0);
  an unknown NAME is one error line and exit 2.
  """
  argv = list(sys.argv if argv is None else argv)
  prog = argv[0]
  width = max([12] + [len(name) for name in commands])
  listing = "\n".join(f"  {name:<{width}} {cmd.help}" for name, cmd in commands.items())
  if len(argv) < 2 or argv[1].lstrip("-") in _HELP_FLAGS + ("help",):
    text = (doc or "").rstrip() + f"\n\ncommands:\n{listing}\n\n'{prog} COMMAND --help' shows a command's flags.\n"
    if len(argv) < 2:
      sys.stderr.write(text)
      fail(f"choose a command: {', '.join(commands)}")
    sys.stdout.write(text)
    sys.exit(0)
  name = argv[1]
  if name not in commands:
    fail(f"unknown command {name!r}; choose one of {', '.join(commands)} (see --help)")
  cmd = commands[name]
  cmd.define()
  main_module = sys.modules.get("__main__")
  if main_module is not None:  # absl's --help prints the main module's docstring
    main_module.__doc__ = f"{prog} {name}: {cmd.help}\n\nUSAGE: {prog} {name} [flags]\n"
  sys.argv = [prog] + argv[2:]
  run(cmd.main, argv=[prog] + argv[2:], positional=cmd.positional)
