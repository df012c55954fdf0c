"""Fuzz: the ``.style`` profile, the choices JSONL (replay front end) and replayed rounds.

* ``load_profile``: seeds written by ``save_profile`` (with and without a style
  space); byte-, zip-member-, array- and ``meta`` JSON-level mutations; every
  case loads or raises ``ProfileError`` naming the file; object arrays are
  refused, never unpickled.
* ``ReplayFrontend`` (``personalize.py from-choices --choices F``): line-level
  mutations of a valid JSONL; each case plays until QUIT or raises
  ``ConfigError`` naming the file.
* ``Session.from_history``: the rounds a profile records (JSON from a shared
  file), mutated; each case replays or raises ``ConfigError``.
"""

import json

import numpy as np
import pytest

import fuzz_testlib as fz
from jaxstyle.errors import ConfigError, ProfileError
from jaxstyle.personalize import choices, loop
from jaxstyle.personalize import preference as pref
from jaxstyle.personalize import profile as prof

SEED = 13


@pytest.fixture(scope="module")
def profile_seeds(tmp_path_factory):
  d = tmp_path_factory.mktemp("profile_seeds")
  rng = np.random.default_rng(0)
  space = prof.fit_style_space(rng.standard_normal((10, 8)), 3, source="bank")
  provenance = {"checkpoint": {"path": "runs/x", "fingerprint": "ab" * 32, "step": 5},
                "method": "choices", "liked": [{"file": "a.png", "sha256": "0" * 64, "score": 1.5}],
                "rounds": [{"round": 1, "candidates": [[0.0, 1.0, 2.0]], "choice": 1}]}
  out = {}
  for name, p in (("space", prof.StyleProfile(latent=rng.standard_normal(8), space=space,
                                               strength=0.7, provenance=provenance)),
                  ("plain", prof.StyleProfile(latent=rng.standard_normal(8)))):
    path = prof.save_profile(str(d / f"{name}.style"), p)
    assert prof.load_profile(path) == p  # the seed itself is valid
    out[name] = open(path, "rb").read()
  return out


@pytest.mark.parametrize("seed_name", ["space", "plain"])
def test_fuzz_load_profile(tmp_path, profile_seeds, seed_name):
  fz.fuzz(f"personalize.load_profile[{seed_name}]", 250, SEED, str(tmp_path), ".style",
          fz.npz_mutators(profile_seeds[seed_name], json_key="meta", as_bytes=True),
          prof.load_profile, (ProfileError,))


def test_profile_pickles_never_run(tmp_path, profile_seeds):
  marker = str(tmp_path / "PWNED")
  files = fz.evil_npz_files(str(tmp_path), profile_seeds["space"], marker)
  failures = fz.refusals(files, {"load_profile": prof.load_profile}, (ProfileError,), marker)
  assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------- the choices file

CHOICES = "\n".join(json.dumps(c) for c in [
    {"choice": 2}, {"choice": "none"}, {"choice": 0, "note": "extra keys are ignored"},
    {"choice": None}, {"choice": 3}, {"choice": "1"}, {"choice": "quit"}]) + "\n"


def _replay(path, k=3):
  frontend = loop.ReplayFrontend(path, k)
  view = loop.RoundView(index=1, total=1, candidates=np.zeros((k, 2, 2, 3), np.float32))
  for _ in range(1000):
    if frontend.ask(view) == loop.QUIT:
      break
  frontend.close()


def test_fuzz_choices_jsonl(tmp_path):
  seed = fz.write(str(tmp_path / "seed.jsonl"), CHOICES.encode())
  _replay(seed)  # the seed itself is valid
  mutators = [lambda rng: fz.mutate_lines(CHOICES, rng),
              lambda rng: fz.mutate_bytes(CHOICES.encode(), rng)]
  fz.fuzz("personalize.ReplayFrontend", 300, SEED, str(tmp_path), ".jsonl", mutators, _replay,
          (ConfigError,))


# ----------------------------------------------------------------------------- replayed rounds

CFG = pref.PreferenceConfig(pool_size=32)
K, D = 3, 2


def _fuzz_rounds(rounds, n, replay):
  escapes, count = [], 0
  for i in range(n):
    seed, rng = fz.rng_for("choices.history", i, SEED)
    mutated, mutation = fz.mutate_json(rounds, rng)
    count += 1
    escape = fz.run_case("choices.history", seed, mutation, lambda: replay(mutated),
                         (ConfigError,))
    if escape:
      escapes.append(escape)
  fz.assert_no_escapes(escapes, count, "choices.history")


def test_fuzz_check_history():
  """The validation ``from_history`` runs on recorded rounds before replaying any (no JAX)."""
  rng = np.random.default_rng(0)
  rounds = [{"round": r + 1, "candidates": rng.standard_normal((K, D)).tolist(), "choice": c}
            for r, c in enumerate((1, None, 2, 0))]
  assert len(choices.check_history(rounds, K, D)) == 4  # the seed itself is valid
  _fuzz_rounds(rounds, 400, lambda recorded: choices.check_history(recorded, K, D))


@pytest.mark.slow
def test_fuzz_session_from_history():
  """The full replay (compiles the preference model once: ~15 s on 2 cores)."""
  session = choices.Session(CFG, np.zeros(D, np.float32), k=K, capacity=8, key=0)
  rounds = []
  for c in (1, None, 2):
    rounds.append({"round": len(rounds) + 1, "candidates": session.candidates.tolist(),
                   "choice": c})
    session.record(c)

  def replay(recorded):
    choices.Session.from_history(CFG, np.zeros(D, np.float32), recorded, k=K, capacity=8, key=0)

  replay(rounds)  # the seed itself is valid
  _fuzz_rounds(rounds, 100, replay)
