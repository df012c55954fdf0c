"""jaxstyle.cli: flags derived from configs, one-line errors, exit codes, subcommands."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

_PROG = textwrap.dedent('''
    """A demo command."""
    import dataclasses, json, sys
    sys.path.insert(0, {experiments!r})
    import cli
    from jaxstyle import config as c

    @dataclasses.dataclass(frozen=True)
    class Cfg:
      batch_size: int = c.setting(64, "Global batch size.", gt=0)
      loss: str = c.setting("hinge", "GAN loss.", choices=("hinge", "lsgan"))
      lr: float | None = c.setting(None, "Learning rate.", gt=0)
      scales: tuple[int, ...] = c.setting((256,), "Scales in pixels.", gt=0)
      ema: bool = c.setting(True, "Keep an average.")
      hidden: int = c.setting(5, "Not a flag.", flag=False)

    def define():
      cli.define_config_flags(Cfg, defaults={{"batch_size": 32}})

    def main(argv):
      print(json.dumps(c.to_dict(cli.config_from_flags(Cfg))))

    def other(argv):
      print("other", cli.FLAGS.size)

    if __name__ == "__main__":
      if sys.argv[1:2] == ["plain"]:
        sys.argv.pop(1)
        define()
        cli.run(main)
      else:
        cli.run_subcommands({{
            "train": cli.Subcommand("Train it.", define, main),
            "other": cli.Subcommand("Something else.", lambda: cli.flags.DEFINE_integer("size", 3, "A size."), other),
        }}, __doc__)
''')


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
  path = tmp_path_factory.mktemp("cli") / "prog.py"
  path.write_text(_PROG.format(experiments=os.path.join(ROOT, "experiments")))

  def run(*args):
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
  return run


def test_flags_build_the_config(prog):
  import json
  p = prog("plain", "--scales=128,64", "--noema", "--lr=0.5")
  assert p.returncode == 0, p.stderr
  assert json.loads(p.stdout) == {"batch_size": 32, "loss": "hinge", "lr": 0.5, "scales": [128, 64],
                                  "ema": False, "hidden": 5}


@pytest.mark.parametrize("args, words", [
    (("--batch_size=0",), "--batch_size=0: must be > 0"),
    (("--scales=1,x",), "--scales=1,x: cannot read it"),
    (("--loss=wgan",), "--loss"),
    (("--hidden=3",), "hidden"),
    (("stray",), "unexpected positional"),
])
def test_user_errors_are_one_line_exit_2(prog, args, words):
  p = prog("plain", *args)
  assert p.returncode == 2
  lines = p.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], p.stderr
  assert "Traceback" not in p.stderr


def test_help_exits_0_and_lists_every_flag_with_help(prog):
  p = prog("plain", "--help")
  assert p.returncode == 0
  for text in ("--batch_size: Global batch size.", "--loss: <hinge|lsgan>: GAN loss.", "Scales in pixels."):
    assert text in p.stdout
  assert "--hidden" not in p.stdout


def test_subcommands_have_their_own_flags_and_help(prog):
  p = prog("train", "--loss=lsgan")
  assert p.returncode == 0 and '"loss": "lsgan"' in p.stdout
  p = prog("other", "--size=4")
  assert p.returncode == 0 and p.stdout.strip() == "other 4"
  p = prog("other", "--loss=lsgan")  # another subcommand's flag is refused
  assert p.returncode == 2 and p.stderr.startswith("error: ") and "loss" in p.stderr
  p = prog("train", "--help")
  assert p.returncode == 0 and "Train it." in p.stdout and "--batch_size" in p.stdout
  assert "--size" not in p.stdout
  p = prog("--help")
  assert p.returncode == 0 and "train" in p.stdout and "Something else." in p.stdout
  p = prog("nope")
  assert p.returncode == 2 and "unknown command 'nope'" in p.stderr
  p = prog()
  assert p.returncode == 2 and "choose a command" in p.stderr
