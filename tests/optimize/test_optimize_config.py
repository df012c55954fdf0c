"""Tests of jaxstyle.optimize.config: StylizeConfig's checks, layer text and config.json form."""

import json
import math

import pytest

from jaxstyle import config as cfglib
from jaxstyle import optimize
from jaxstyle.errors import ConfigError


@pytest.mark.parametrize("changes, setting", [
    ({"steps": 0}, "steps"), ({"alpha": -1.0}, "alpha"), ({"beta": math.inf}, "beta"),
    ({"gamma": math.nan}, "gamma"), ({"learning_rate": 0.0}, "learning_rate"),
    ({"optimizer": "sgd"}, "optimizer"), ({"dtype": "float16"}, "dtype"),
    ({"style_layers": ()}, "style_layers"), ({"style_layers": (("relu9_9", 1.0),)}, "style_layers"),
    ({"content_layers": (("relu3_2", -1.0),)}, "content_layers"),
    ({"content_layers": ()}, "content_layers"),                      # alpha > 0 needs a layer
    ({"num_scales": 2, "scale_steps": (5,)}, "scale_steps"),
    ({"num_scales": 2, "steps": 1, "scale_steps": (-1, 2)}, "scale_steps"),   # entries >= 0
])
def test_validate_names_the_setting(changes, setting):
  with pytest.raises(ConfigError) as info:
    cfglib.validate(optimize.StylizeConfig(**changes))
  assert info.value.setting == setting, str(info.value)
  cfglib.validate(optimize.synthesis_config())                     # alpha 0: no content layers
  cfglib.validate(optimize.StylizeConfig(num_scales=2, steps=10, scale_steps=(7, 3)))


def test_layers_text_and_config_dict_round_trip():
  layers = optimize.parse_layers(" relu1_1:1, relu2_1:0.5 ,relu3_1")
  assert layers == (("relu1_1", 1.0), ("relu2_1", 0.5), ("relu3_1", 1.0))
  assert optimize.format_layers(layers) == "relu1_1:1,relu2_1:0.5,relu3_1:1"
  assert optimize.parse_layers("") == ()
  with pytest.raises(ConfigError, match="bad weight"):
    optimize.parse_layers("relu1_1:x")
  for cfg in (optimize.StylizeConfig(style_layers=optimize.CLASSIC_STYLE_LAYERS, scale_steps=(3,),
                                     steps=3),
              optimize.synthesis_config(steps=7)):
    d = json.loads(json.dumps(cfglib.to_dict(cfg)))
    assert cfglib.from_dict(optimize.StylizeConfig, d) == cfg
  for s in cfglib.settings(optimize.StylizeConfig):
    assert s.help and s.flag, s.name
