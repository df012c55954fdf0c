"""personalize.py end to end on a tiny trained stylizer, and the profile in stylize.py and generate.py."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_experiment
from jaxstyle import images, inference
from jaxstyle.personalize import profile as prof

LIKED = ("vangogh_starry_night.jpg", "hokusai_great_wave.jpg", "picabia_udnie.jpg",
         "munch_the_scream.jpg")


@pytest.fixture(scope="module")
def liked_dir(tmp_path_factory, shared_data):
  d = tmp_path_factory.mktemp("liked")
  for name in LIKED:
    shutil.copy(os.path.join(shared_data, "styles", name), d / name)
  (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  return str(d)


def _choices(path, picks):
  with open(path, "w") as f:
    for p in picks:
      f.write(json.dumps({"choice": p}) + "\n")
  return path


def test_from_images_writes_a_profile_and_reports_fit(tiny_stylizer_run, liked_dir, tmp_path):
  out = tmp_path / "me.style"
  proc = run_experiment("personalize.py", "from-images", "--checkpoint", tiny_stylizer_run,
                        "--liked", liked_dir, "--out", out, "--space_dims", 3, "--steps", 5,
                        "--style_size", 48, "--photo_size", 40)
  assert "broken.jpg" in proc.stderr  # reported and skipped
  for name in LIKED:
    assert name in proc.stdout
  p = prof.load_profile(str(out))
  model = inference.load_stylizer(tiny_stylizer_run)
  assert p.provenance["checkpoint"]["fingerprint"] == model.fingerprint
  assert p.provenance["method"] == "from_images:fit"
  assert sorted(os.path.basename(r["file"]) for r in p.provenance["liked"]) == sorted(LIKED)
  assert all(len(r["sha256"]) == 64 for r in p.provenance["liked"])
  # 3 asked; the tiny encoder's 5 collection latents may span fewer directions (space.effective_rank)
  assert p.space is not None and 1 <= p.space.dim <= 3 and p.latent.shape == (model.latent_dim,)
  np.testing.assert_allclose(p.coords, p.space.to_coords(p.latent), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # three subprocess sessions (the model-free replay test runs by default)
def test_from_choices_replay_saves_every_round_and_continues(tiny_stylizer_run, shared_data,
                                                              tmp_path):
  photo = os.path.join(shared_data, "content", "skimage_chelsea.png")
  common = ["--checkpoint", tiny_stylizer_run, "--photo", photo, "--k", 3, "--size", 48,
            "--space_dims", 3, "--pool_size", 64, "--seed", 5]
  full = tmp_path / "full.style"
  run_experiment("personalize.py", "from-choices", *common, "--rounds", 4, "--out", full,
                 "--choices", _choices(tmp_path / "all.jsonl", [2, 3, 0, 1]))
  # Interrupted after two rounds (the picks ran out), then continued from the saved profile.
  part = tmp_path / "part.style"
  proc = run_experiment("personalize.py", "from-choices", *common, "--rounds", 4, "--out", part,
                        "--choices", _choices(tmp_path / "two.jsonl", [2, 3]))
  assert "2 round(s) this session" in proc.stdout
  assert len(prof.load_profile(str(part)).provenance["rounds"]) == 2
  run_experiment("personalize.py", "from-choices", *common, "--rounds", 2, "--out", part,
                 "--start", part, "--choices", _choices(tmp_path / "rest.jsonl", ["none", 1]))
  a, b = prof.load_profile(str(full)), prof.load_profile(str(part))
  assert [r["choice"] for r in a.provenance["rounds"]] == [1, 2, None, 0]
  assert [r["choice"] for r in b.provenance["rounds"]] == [1, 2, None, 0]
  assert np.array_equal(a.latent, b.latent) and np.array_equal(a.coords, b.coords)
  preview = images.load_image(str(tmp_path / "full_preview.png"))
  assert preview.shape[0] == 36 or preview.shape[1] >= 96  # photo | final estimate


def test_stylize_with_a_profile(tiny_stylizer_run, shared_data, tmp_path):
  model = inference.load_stylizer(tiny_stylizer_run)
  z = np.linspace(-1, 1, model.latent_dim).astype(np.float32)
  path = prof.save_profile(str(tmp_path / "z.style"), prof.StyleProfile(
      latent=z, strength=0.5, provenance={"checkpoint": {"path": tiny_stylizer_run,
                                                         "fingerprint": model.fingerprint}}))
  photo = os.path.join(shared_data, "content", "skimage_chelsea.png")
  out = tmp_path / "o.png"
  # No --checkpoint: the profile names its stylizer; no --strength: the profile's 0.5.
  run_experiment("stylize.py", "--content", photo, "--profile", path, "--size", 64, "--out", out)
  content = images.load_image(photo, 64)
  want = np.asarray(model(model.params, content[None], 0.5 * z))[0]
  got = images.load_image(str(out))
  assert np.abs(got - want).max() <= 1.0 / 255 + 1e-6
  # Blended with a bank style at explicit weights and strength.
  out2 = tmp_path / "o2.png"
  run_experiment("stylize.py", "--content", photo, "--profile", f"{path}:0.75", "--style",
                 "picabia_udnie:0.25", "--strength", 1, "--size", 64, "--out", out2,
                 "--checkpoint", tiny_stylizer_run)
  mixed = 0.75 * z + 0.25 * model.bank_latent("picabia_udnie")
  want2 = np.asarray(model(model.params, content[None], mixed))[0]
  assert np.abs(images.load_image(str(out2)) - want2).max() <= 1.0 / 255 + 1e-5


def test_generate_with_a_profile(tiny_stylizer_run, shared_data, vgg_partial_path, tmp_path):
  model = inference.load_stylizer(tiny_stylizer_run)
  z = np.linspace(1, -1, model.latent_dim).astype(np.float32)
  path = prof.save_profile(str(tmp_path / "g.style"), prof.StyleProfile(
      latent=z, strength=0.5, provenance={"checkpoint": {"path": tiny_stylizer_run,
                                                         "fingerprint": model.fingerprint}}))
  photo = os.path.join(shared_data, "content", "skimage_chelsea.png")
  out = tmp_path / "gen"
  run_experiment("generate.py", "--profile", path, "--photos", photo, "--photo_size", 48,
                 "--n", 1, "--size", 32, "--steps", 12, "--seed", 0, "--out_dir", out,
                 "--vgg_weights", vgg_partial_path)
  # The exemplar is the stylizer's output with the profile at its strength.
  crop = images.center_crop(images.load_image(photo, 48, side="shorter"), 48)
  want = np.asarray(model(model.params, crop[None], 0.5 * z))[0]
  assert np.abs(images.load_image(str(out / "exemplar_00.png")) - want).max() <= 1.0 / 255 + 1e-5
  record = json.loads((out / "config.json").read_text())
  assert record["inputs"]["profile"]["fingerprint"] == model.fingerprint
  rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
  assert rows[-1]["style"] < 0.5 * rows[0]["style"] and (out / "sample_00.png").exists()
  # Not both, and a profile of another stylizer is refused before anything is written.
  bad = run_experiment("generate.py", "--profile", path, "--style", photo, "--out_dir",
                       tmp_path / "x", check=False)
  assert bad.returncode == 2 and "either --style images or --profile" in bad.stderr
  other = prof.save_profile(str(tmp_path / "o.style"), prof.StyleProfile(
      latent=z, provenance={"checkpoint": {"path": tiny_stylizer_run, "fingerprint": "1" * 64}}))
  bad = run_experiment("generate.py", "--profile", other, "--photos", photo, "--out_dir",
                       tmp_path / "y", "--vgg_weights", vgg_partial_path, check=False)
  assert bad.returncode == 2 and "another checkpoint" in bad.stderr
  assert not (tmp_path / "y" / "sample_00.png").exists()


def test_profile_for_another_stylizer_is_refused(tiny_stylizer_run, shared_data, tmp_path):
  model = inference.load_stylizer(tiny_stylizer_run)
  path = prof.save_profile(str(tmp_path / "other.style"), prof.StyleProfile(
      latent=np.zeros(model.latent_dim, np.float32),
      provenance={"checkpoint": {"path": tiny_stylizer_run, "fingerprint": "0" * 64}}))
  out = tmp_path / "o.png"
  proc = run_experiment("stylize.py", "--content",
                        os.path.join(shared_data, "content", "skimage_chelsea.png"),
                        "--profile", path, "--checkpoint", tiny_stylizer_run, "--out", out,
                        check=False)
  assert proc.returncode == 2 and not out.exists()
  lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1 and "another" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["from-images", "--liked", "x", "--out", "me.txt"], "FILE.style"),
    (["from-choices", "--photo", "x.jpg", "--out", "me.style", "--choices", "missing.jsonl"],
     "no such file"),
    (["from-choices", "--photo", "x.jpg", "--out", "me.style", "--k", "1"], "--k"),
])
def test_bad_command_lines(tiny_stylizer_run, args, message, tmp_path):
  proc = run_experiment("personalize.py", *args, "--checkpoint", tiny_stylizer_run, check=False)
  assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
