"""``python -m jaxstyle.vgg convert|info|download``: VGG-19 weight files from the command line.

  python -m jaxstyle.vgg convert SRC DST.npz [--preprocessing caffe|torch]
  python -m jaxstyle.vgg info FILE
  python -m jaxstyle.vgg download [--dest PATH] [--url URL] [--force] [--no_progress]

Positional arguments are shorthands for flags: ``convert --src SRC --dst
DST.npz``, ``info --file FILE``. Each command has its own flags and ``--help``;
user errors print one ``error:`` line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from jaxstyle import cli
from jaxstyle.cli import FLAGS, flags
from jaxstyle.vgg.download import TORCHVISION_URL, download
from jaxstyle.errors import WeightsError
from jaxstyle.vgg.preprocessing import PREPROCESSING
from jaxstyle.vgg.weights import CACHE_DIR, CACHE_FILE, convert, describe, load_weights

PROG = "python -m jaxstyle.vgg"


def _define_convert(fv: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string("src", None, "Torchvision state dict (.pth), Keras weights (.h5) or jaxstyle "
                      ".npz to convert (also the first positional argument).", flag_values=fv)
  flags.DEFINE_string("dst", None, "Output .npz, written atomically (also the second positional "
                      "argument).", flag_values=fv)
  flags.DEFINE_enum("preprocessing", None, sorted(PREPROCESSING), "Input convention of the "
                    "weights; default: torch for .pth, caffe for .h5, the stored one for .npz.",
                    flag_values=fv)


def _convert_main(argv: list[str]) -> None:
  del argv
  if not FLAGS.src or not FLAGS.dst:
    raise cli.UsageError(f"convert needs SRC and DST.npz: {PROG} convert SRC DST.npz "
                         "(or --src/--dst; see --help)")
  if not FLAGS.dst.endswith(".npz"):
    raise WeightsError(f"{FLAGS.dst}: the output must be a .npz file")
  weights = convert(FLAGS.src, FLAGS.dst, FLAGS.preprocessing)
  print(f"wrote {FLAGS.dst}: {len(weights.layers)} conv layers "
        f"({weights.layers[0]}..{weights.layers[-1]}), preprocessing {weights.preprocessing}")


def _define_info(fv: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string("file", None, "Weight file to describe: .npz, .pth or .h5 (also the "
                      "positional argument).", flag_values=fv)


def _info_main(argv: list[str]) -> None:
  del argv
  if not FLAGS.file:
    raise cli.UsageError(f"info needs a FILE: {PROG} info FILE (or --file; see --help)")
  if not os.path.isfile(FLAGS.file):
    raise WeightsError(f"{FLAGS.file}: no such file")
  print(describe(load_weights(FLAGS.file)))


def _define_download(fv: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string("url", TORCHVISION_URL, "Source URL of the .pth (file:// works); its name "
                      "must carry the SHA-256 prefix, like vgg19-dcbb9e9d.pth.", flag_values=fv)
  flags.DEFINE_string("dest", os.path.join(CACHE_DIR, CACHE_FILE), "Output .npz.", flag_values=fv)
  flags.DEFINE_boolean("force", False, "Overwrite an existing output.", flag_values=fv)
  flags.DEFINE_boolean("no_progress", False, "No progress bar.", flag_values=fv)


def _download_main(argv: list[str]) -> None:
  del argv
  path = os.path.expanduser(FLAGS.dest)
  if os.path.exists(path) and not FLAGS.force:
    print(f"{path} exists (use --force to download again)")
    return
  print(f"wrote {download(FLAGS.url, path, progress=not FLAGS.no_progress, force=FLAGS.force)}")


# name -> (subcommand, its flag definitions, the flags its positional arguments fill in order)
_COMMANDS: dict[str, tuple[cli.Subcommand, Callable[..., None], tuple[str, ...]]] = {
    "convert": (cli.Subcommand("Convert a .pth / .h5 / .npz to the jaxstyle .npz format.",
                               define=_define_convert, main=_convert_main),
                _define_convert, ("src", "dst")),
    "info": (cli.Subcommand("Print the layers and preprocessing of a weight file.",
                            define=_define_info, main=_info_main),
             _define_info, ("file",)),
    "download": (cli.Subcommand("Fetch torchvision's VGG-19, verify its SHA-256 prefix, convert "
                                "and cache it.", define=_define_download, main=_download_main),
                 _define_download, ()),
}


def _positional_as_flags(args: Sequence[str], names: Sequence[str],
                         define: Callable[..., None]) -> list[str]:
  """Rewrites positional ``args`` as ``--name=value`` for ``names``, in order.

  ``define(flag_values)`` defines the command's flags: a token after a flag
  that takes a value (``--dst X``) is that flag's value, not a positional.
  Names already given as flags are not filled; extra positionals stay as they
  are (and are refused as unexpected).
  """
  own = flags.FlagValues()
  define(own)
  takes_value = {n for fv in (own, FLAGS) for n in fv if not fv[n].boolean}
  given = {a.lstrip("-").split("=")[0] for a in args if a.startswith("-")}
  free = [n for n in names if n not in given]
  out, extra, i = [], [], 0
  while i < len(args):
    arg = args[i]
    if arg == "--":
      positional = list(args[i + 1:])
      break
    if arg.startswith("-") and len(arg) > 1:
      out.append(arg)
      if "=" not in arg and arg.lstrip("-") in takes_value and i + 1 < len(args):
        i += 1
        out.append(args[i])
    else:
      (out if free else extra).append(f"--{free.pop(0)}={arg}" if free else arg)
    i += 1
  else:
    positional = []
  for arg in positional:
    (out if free else extra).append(f"--{free.pop(0)}={arg}" if free else arg)
  return out + (["--"] + extra if extra else [])


def main(argv: Sequence[str] | None = None) -> None:
  """Runs ``python -m jaxstyle.vgg COMMAND ...`` (``argv`` defaults to ``sys.argv``); exits."""
  argv = list(sys.argv if argv is None else argv)
  if len(argv) > 2 and argv[1] in _COMMANDS:
    _, define, names = _COMMANDS[argv[1]]
    argv = argv[:2] + _positional_as_flags(argv[2:], names, define)
  cli.run_subcommands({name: spec[0] for name, spec in _COMMANDS.items()}, doc=__doc__,
                      argv=[PROG] + argv[1:])


if __name__ == "__main__":
  main()
