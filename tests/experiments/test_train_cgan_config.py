"""One source per setting: each experiment's Config fields are its flags; config.json round-trips.

Covers ``experiments/train_cgan.py`` (``configs/cgan.py``),
``experiments/train_classifier.py`` (``configs/classifier.py``) and
``experiments/train_stylizer.py`` (``configs/stylizer.py``). The flags are
inspected in one subprocess per script: each script defines its flags on the
global absl FLAGS, so two scripts cannot share a process.
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
from configs import cgan as cgan_config
from configs import classifier as classifier_config
from configs import stylizer as stylizer_config

from conftest import EXPERIMENTS, ROOT
from jaxstyle import config as cfglib
from jaxstyle.errors import ConfigError

_INSPECT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {experiments!r})
    import cli, {script} as script
    from jaxstyle import config as cfglib
    script.define_flags()
    out = {{"flags": {{name: cli.FLAGS[name].help for name in cli.FLAGS}}, "flagfiles": {{}}}}
    for path in {flagfiles!r}:
      cli.FLAGS.unparse_flags()
      cli.FLAGS(["prog", "--flagfile=" + path, "--workdir=unused"])
      out["flagfiles"][path] = cfglib.to_dict(cli.config_from_flags(script.Config))
    print(json.dumps(out))
""")

# script -> (its config module, {variant: the shipped flagfile with those settings})
EXPERIMENTS_UNDER_TEST = {
    "train_cgan": (cgan_config, {"quick": "experiments/configs/cgan_mnist_quick.flags",
                                 "full": "experiments/configs/cgan_mnist.flags"}),
    "train_classifier": (classifier_config, {}),
    "train_stylizer": (stylizer_config, {"quick": "experiments/configs/stylizer_quick.flags",
                                         "full": "experiments/configs/stylizer_full.flags",
                                         "gpu": "experiments/configs/stylizer_gpu.flags"}),
}


@pytest.fixture(scope="module", params=sorted(EXPERIMENTS_UNDER_TEST))
def inspected(request):
  """(config module, flagfiles, what the script's flags say) for one script."""
  configs, flagfiles = EXPERIMENTS_UNDER_TEST[request.param]
  code = _INSPECT.format(experiments=EXPERIMENTS, script=request.param,
                         flagfiles=sorted(flagfiles.values()))
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                        env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return configs, flagfiles, json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_config_field_is_a_flag_with_help(inspected):
  configs, _, out = inspected
  settings = {s.name: s for s in cfglib.settings(configs.Config)}
  assert set(settings) == {f.name for f in dataclasses.fields(configs.Config)}  # all are settings
  for name, s in settings.items():
    assert s.help.strip(), name
    if s.flag:
      assert out["flags"].get(name, "").endswith(s.help), name  # enums prefix "<a|b>: "
    else:  # fixed by the data (MNIST's shape) or a nested architecture: never a flag
      assert name not in out["flags"], name
  assert "workdir" in out["flags"] and "workdir" not in settings  # an argument, not a setting


def test_config_json_round_trips(inspected):
  configs, _, _ = inspected
  cfgs = [configs.get_config(v) for v in configs.VARIANTS]
  names = {f.name for f in dataclasses.fields(configs.Config)}
  cfgs.append(dataclasses.replace(cfgs[0], seed=7, **({"mnist_dir": "/data/mnist"} if "mnist_dir" in names
                                                     else {"styles": ("/a.jpg", "/b.csv")})))
  for cfg in cfgs:
    text = json.dumps(cfglib.to_dict(cfg))
    assert cfglib.from_dict(configs.Config, json.loads(text)) == cfg


def test_shipped_flagfiles_are_the_config_variants(inspected):
  configs, flagfiles, out = inspected
  for variant, path in flagfiles.items():
    assert cfglib.from_dict(configs.Config, out["flagfiles"][path]) == configs.get_config(variant), path


@pytest.mark.parametrize("changes, setting, words", [
    ({"dataset": "cifar10"}, "dataset", "one of mnist"),
    ({"parallel": "vmap"}, "parallel", "one of"),
    ({"batch_size": 0}, "batch_size", "> 0"),
    ({"lr_decay_begin": 10}, "lr_decay_begin", "needs a positive --lr_decay_end"),
    ({"lr_decay_begin": 10, "lr_decay_end": 5}, "lr_decay_begin", ""),
    ({"lr_decay_end": -3}, "lr_decay_end", ">= 0"),
    ({"d_learning_rate": 0.0}, "d_learning_rate", "> 0"),
    ({"cpu_devices": -1}, "cpu_devices", ">= 0"),
    ({"ema_decay": 1.0}, "ema_decay", "< 1"),
])
def test_bad_cgan_settings_name_the_setting(changes, setting, words):
  """The checks the subprocess test (slow) drives through flags, in-process."""
  with pytest.raises(ConfigError) as e:
    cfglib.validate(dataclasses.replace(cgan_config.get_config("quick"), **changes))
  assert getattr(e.value, "setting", None) == setting, str(e.value)
  assert words in str(e.value)


@pytest.mark.parametrize("changes, setting, words", [
    ({"styles": ()}, "styles", "at least one style"),
    ({"style_size": 64, "crop_size": 96}, "style_size", ">= --crop_size"),
    ({"adv_weight": 0.1, "d_steps": 0}, "d_steps", ">= 1 when adv_weight > 0"),
    ({"widths": ()}, "widths", "at least one width"),
    ({"stem_kernel": 4}, "stem_kernel", "odd"),
    ({"latent_source": "clip"}, "latent_source", "one of"),
    ({"encoder_taps": ("relu9_9",)}, "encoder_taps", ""),
])
def test_bad_stylizer_settings_name_the_setting(changes, setting, words):
  with pytest.raises(ConfigError) as e:
    stylizer_config.model_config(cfglib.validate(dataclasses.replace(
        stylizer_config.get_config("quick"), **changes)))
  assert getattr(e.value, "setting", None) == setting, str(e.value)
  assert words in str(e.value)
