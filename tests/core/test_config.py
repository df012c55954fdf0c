"""jaxstyle.config: settings carry help and checks; dicts round-trip; resume mismatches."""

from __future__ import annotations

import dataclasses
import json

import pytest

from jaxstyle import config as cfglib
from jaxstyle.errors import ConfigError


def _pair_parse(text):
  name, _, w = text.partition(":")
  return ((name, float(w or 1)),)


@dataclasses.dataclass(frozen=True)
class Inner:
  width: int = cfglib.setting(8, "Width.", gt=0)


@dataclasses.dataclass(frozen=True)
class Example:
  batch_size: int = cfglib.setting(64, "Global batch size.", gt=0, resume=True)
  loss: str = cfglib.setting("hinge", "GAN loss.", choices=("hinge", "lsgan"), resume=True)
  lr: float | None = cfglib.setting(None, "Optional learning rate.", gt=0)
  decay: float = cfglib.setting(0.5, "Decay in [0, 1).", ge=0, lt=1)
  scales: tuple[int, ...] = cfglib.setting((256, 512), "Scales.", gt=0)
  taps: tuple[str, ...] = cfglib.setting(("relu1_1",), "Taps.", choices=("relu1_1", "relu2_1"))
  pairs: tuple[tuple[str, float], ...] = cfglib.setting(
      (("relu1_1", 1.0),), "tap:weight pairs.", parse=_pair_parse,
      format=lambda v: ",".join(f"{a}:{b:g}" for a, b in v))
  even: int = cfglib.setting(2, "An even number.", check=lambda v: None if v % 2 == 0 else "must be even")
  inner: Inner = cfglib.setting(Inner(), "Nested config.", flag=False)

  def check(self):
    if self.lr is not None and self.lr > 1 and self.loss == "lsgan":
      raise cfglib.invalid("lr", self.lr, "must be <= 1 with --loss=lsgan")


def test_defaults_validate_and_settings_have_help():
  cfg = cfglib.validate(Example())
  assert cfg.batch_size == 64
  names = [s.name for s in cfglib.settings(Example)]
  assert names == [f.name for f in dataclasses.fields(Example)]
  assert all(s.help for s in cfglib.settings(Example))
  assert [s.name for s in cfglib.settings(Example) if s.resume] == ["batch_size", "loss"]


@pytest.mark.parametrize("kwargs, field, words", [
    ({"batch_size": 0}, "batch_size", "> 0"),
    ({"loss": "wgan"}, "loss", "one of hinge, lsgan"),
    ({"lr": -1.0}, "lr", "> 0"),
    ({"decay": 1.0}, "decay", "< 1"),
    ({"decay": float("nan")}, "decay", "NaN"),
    ({"scales": (256, 0)}, "scales", "> 0"),
    ({"taps": ("relu9_9",)}, "taps", "one of"),
    ({"even": 3}, "even", "even"),
    ({"inner": Inner(width=0)}, "width", "> 0"),
    ({"loss": "lsgan", "lr": 2.0}, "lr", "lsgan"),
    ({"batch_size": None}, "batch_size", "must be set"),
])
def test_invalid_settings_name_the_field(kwargs, field, words):
  with pytest.raises(ConfigError) as e:
    cfglib.validate(Example(**kwargs))
  assert e.value.setting == field
  assert words in str(e.value) and field in str(e.value)


def test_dict_round_trip_through_json():
  cfg = Example(batch_size=3, lr=0.1, scales=(128,), pairs=(("relu2_1", 0.5), ("relu1_1", 2.0)),
                inner=Inner(width=4))
  d = json.loads(json.dumps(cfglib.to_dict(cfg)))
  assert d["scales"] == [128] and d["inner"] == {"width": 4}
  back = cfglib.from_dict(Example, d)
  assert back == cfg and isinstance(back.pairs[0], tuple) and isinstance(back.scales, tuple)


def test_from_dict_rejects_unknown_keys_unless_told():
  with pytest.raises(ConfigError, match="unknown setting"):
    cfglib.from_dict(Example, {"batch_sise": 3})
  assert cfglib.from_dict(Example, {"batch_sise": 3}, ignore_unknown=True) == Example()


def test_resume_mismatch_only_compares_resume_settings():
  old = cfglib.to_dict(Example(batch_size=8))
  assert cfglib.resume_mismatch(Example, old, Example(batch_size=8, lr=0.5, decay=0.1)) is None
  msg = cfglib.resume_mismatch(Example, old, Example(batch_size=16))
  assert msg == "--batch_size=8 (now 16)"
  # A setting added after the old run was written is not compared.
  del old["loss"]
  assert cfglib.resume_mismatch(Example, old, Example(batch_size=8, loss="lsgan")) is None


def test_setting_needs_help():
  with pytest.raises(ValueError):
    cfglib.setting(1, "")


def test_run_dir_resume_check(tmp_path):
  from jaxstyle import rundir
  run = rundir.RunDir(str(tmp_path / "run"))
  run.check_resume(Example, Example())  # no config.json yet: nothing to compare
  run.write_config(cfglib.to_dict(Example(batch_size=8)))
  run.check_resume(Example, Example(batch_size=8, decay=0.25))
  with pytest.raises(ConfigError, match=r"--batch_size=8 \(now 4\)"):
    run.check_resume(Example, Example(batch_size=4))
  with open(run.config_path, "w") as f:
    f.write("{not json")
  with pytest.raises(ConfigError, match="damaged"):
    run.check_resume(Example, Example())
