"""The public API re-exported by ``jaxstyle`` resolves to the real objects."""

import importlib

import jaxstyle


def test_every_export_resolves():
  for name, (module, attr) in jaxstyle._EXPORTS.items():
    assert getattr(jaxstyle, name) is getattr(importlib.import_module(f"jaxstyle.{module}"), attr)


def test_submodules_import():
  for name in jaxstyle._SUBMODULES:
    try:
      importlib.import_module(f"jaxstyle.{name}")
    except ModuleNotFoundError as e:
      raise AssertionError(f"jaxstyle.{name} listed as public but missing: {e}") from e
    assert getattr(jaxstyle, name).__name__ == f"jaxstyle.{name}"
