"""Shared command-line plumbing for the experiments/ scripts.

Every script is a thin absl main::

  import common
  flags = common.flags   # absl.flags
  common.define_workdir(); common.define_seed(); common.define_vgg_weights()
  def main(argv): ...
  if __name__ == "__main__":
    common.run(main)

``common.run`` turns user errors (``jaxstyle.errors.JaxstyleError``,
``common.UsageError``, absl flag errors) into one line on stderr and exit
status 2, with no traceback.
"""

from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # allow running from a source checkout without install
  sys.path.insert(0, _ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from jaxstyle.errors import JaxstyleError  # noqa: E402

FLAGS = flags.FLAGS


class UsageError(JaxstyleError):
  """A bad command line."""


def define_workdir(default=None, required=True, resumes=True):
  help_text = "Run directory: config.json, metrics.jsonl, checkpoints/, samples/ go here."
  if resumes:
    help_text += " Rerunning with the same workdir resumes from its latest checkpoint."
  flags.DEFINE_string("workdir", default, help_text)
  if required and default is None:
    flags.mark_flag_as_required("workdir")


def define_seed(default=0):
  flags.DEFINE_integer("seed", default, "Seed of every random draw (init, data order, noise). "
                       "Same seed and device count give identical numbers.")


def define_vgg_weights():
  flags.DEFINE_string("vgg_weights", None, "VGG-19 weights: a jaxstyle .npz (or a torchvision .pth / "
                      "Keras .h5, converted on load). Default: $JAXSTYLE_VGG19, else "
                      "~/.cache/jaxstyle/vgg19.npz (`python -m jaxstyle.vgg download` puts it there). "
                      "Partial files work for layers up to their deepest conv.")


def define_mnist_dir():
  flags.DEFINE_string("mnist_dir", None, "Directory with MNIST IDX files (train-images-idx3-ubyte"
                      "[.gz], train-labels-idx1-ubyte[.gz], t10k-...). If unset, MNIST comes from TFDS.")


def fail(message: str, code: int = 2):
  """Prints ``error: message`` on one line and exits."""
  message = " ".join(str(message).split())
  sys.stderr.write(f"error: {message}\n")
  sys.stderr.flush()
  sys.exit(code)


def run(main):
  """``absl.app.run(main)`` with one-line user errors (exit 2)."""

  def wrapped(argv):
    if len(argv) > 1:
      fail(f"unexpected positional arguments: {' '.join(argv[1:])} (see --help)")
    try:
      return main(argv)
    except JaxstyleError as e:
      fail(str(e))
    except KeyboardInterrupt:
      fail("interrupted", 130)

  # Flags defined here are shown by the script's own --help, not only --helpfull.
  main_module = sys.argv[0]
  for flag in FLAGS.get_flags_for_module(__name__):
    FLAGS.register_key_flag_for_module(main_module, flag)
  app.run(wrapped, flags_parser=_parse_flags)


def _parse_flags(argv):
  try:
    return FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0] if str(e) else "bad command line (see --help)")
