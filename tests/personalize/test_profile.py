"""Tests of the ``.style`` profile format (jaxstyle.personalize.profile)."""

import dataclasses
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from jaxstyle.errors import JaxstyleError, ProfileError
from jaxstyle.personalize import profile as P


def _collection(n=40, big_d=10, seed=0):
  rng = np.random.default_rng(seed)
  stds = np.linspace(3.0, 0.2, big_d)
  rot, _ = np.linalg.qr(rng.normal(size=(big_d, big_d)))
  return (rng.normal(size=(n, big_d)) * stds) @ rot.T + rng.normal(size=big_d)


def _full_profile():
  space = P.fit_style_space(_collection(), 3, source="wikiart-40 encoder means")
  latent = space.to_latent(np.array([0.5, -1.0, 2.0])) + np.float32(0.01)
  provenance = {
      "checkpoint": {"path": "runs/v4/ckpt", "fingerprint": "ab" * 32, "step": 12000},
      "method": "choices", "created": "2025-01-02T03:04:05+00:00", "jaxstyle_version": "0.1.0",
      "liked": [{"file": "liked/é.jpg", "sha256": "0" * 64, "score": 0.75}],
      "rounds": [{"round": 1, "chosen": 2, "shown": [[0.1, 0.2, 0.3]]}],
  }
  return P.StyleProfile(latent=latent, coords=np.array([0.5, -1.0, 2.25], np.float32),
                        space=space, strength=0.35, provenance=provenance)


# ----------------------------------------------------------------------------- round trip


def test_full_round_trip_is_exact(tmp_path):
  p = _full_profile()
  path = str(tmp_path / "me.style")
  assert P.save_profile(path, p) == path
  q = P.load_profile(path)
  assert q == p
  for a, b in [(q.latent, p.latent), (q.coords, p.coords), (q.space.mean, p.space.mean),
               (q.space.basis, p.space.basis), (q.space.scales, p.space.scales),
               (q.space.explained, p.space.explained)]:
    assert a.dtype == np.float32 and a.shape == b.shape and a.tobytes() == b.tobytes()
  assert q.provenance == p.provenance and q.strength == 0.35
  assert q.space.source == "wikiart-40 encoder means" and q.latent_dim == 10
  with np.load(path, allow_pickle=False) as data:
    assert sorted(data.files) == sorted(["latent", "coords", "meta", "space_mean", "space_basis",
                                         "space_scales", "space_explained"])
    meta = json.loads(data["meta"].tobytes().decode("utf-8"))
  assert meta["format"] == "jaxstyle.style" and meta["version"] == P.FORMAT_VERSION == 1
  # Equality is not identity: a changed bit or field is seen.
  assert q != dataclasses.replace(p, strength=0.36)
  assert q != dataclasses.replace(p, latent=p.latent + np.float32(1e-6))


def test_minimal_round_trip(tmp_path):
  p = P.StyleProfile(latent=np.arange(5, dtype=np.float64))
  path = P.save_profile(str(tmp_path / "sub" / "min.style"), p)
  q = P.load_profile(path)
  assert q == p and q.coords is None and q.space is None and q.strength == 1.0
  assert q.provenance == {} and q.latent.dtype == np.float32
  with np.load(path, allow_pickle=False) as data:
    assert sorted(data.files) == ["latent", "meta"]


def test_profile_is_immutable_and_coords_default_to_the_projection():
  p = _full_profile()
  with pytest.raises(dataclasses.FrozenInstanceError):
    p.strength = 0.5
  with pytest.raises(ValueError):
    p.latent[0] = 1.0
  q = P.StyleProfile(latent=p.latent, space=p.space)
  np.testing.assert_array_equal(q.coords, p.space.to_coords(p.latent))


@pytest.mark.parametrize("kwargs,match", [
    (dict(coords=np.zeros(3)), "coords need a space"),
    (dict(strength=1.5), "strength"),
    (dict(strength=True), "strength"),
    (dict(provenance={"x": object()}), "JSON"),
    (dict(provenance={"x": float("nan")}), "JSON"),
    (dict(provenance=[1]), "JSON object"),
])
def test_constructor_rejects_bad_fields(kwargs, match):
  with pytest.raises(ValueError, match=match):
    P.StyleProfile(latent=np.zeros(4), **kwargs)


def _failing_savez(f, *args, **kwargs):
  f.write(b"PK\x03\x04 half an archive")
  raise OSError("disk full")


def test_save_is_atomic(tmp_path, monkeypatch):
  path = str(tmp_path / "me.style")
  P.save_profile(path, _full_profile())
  before = open(path, "rb").read()
  monkeypatch.setattr(np, "savez", _failing_savez)
  with pytest.raises(OSError, match="disk full"):
    P.save_profile(path, P.StyleProfile(latent=np.ones(3)))
  assert open(path, "rb").read() == before
  assert os.listdir(tmp_path) == ["me.style"]
  with pytest.raises(OSError):  # a first write that fails leaves nothing
    P.save_profile(str(tmp_path / "new.style"), P.StyleProfile(latent=np.ones(3)))
  assert os.listdir(tmp_path) == ["me.style"]


# ----------------------------------------------------------------------------- style space


def test_fit_style_space_matches_covariance_eigendecomposition():
  z = _collection(n=40, big_d=10)
  dims = 4
  space = P.fit_style_space(z, dims, source="test")
  lam, vec = np.linalg.eigh(np.cov(z.T))  # float64 reference, ddof=1
  lam, vec = lam[::-1], vec[:, ::-1]
  np.testing.assert_allclose(space.explained, lam[:dims] / lam.sum(), rtol=1e-5)
  np.testing.assert_allclose(space.scales, np.sqrt(lam[:dims]), rtol=1e-5)
  np.testing.assert_allclose(space.mean, z.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.abs(space.basis.T @ vec[:, :dims]), np.eye(dims), atol=1e-5)
  for j in range(dims):  # sign convention: the largest-magnitude entry is positive
    assert space.basis[np.argmax(np.abs(space.basis[:, j])), j] > 0
  assert space.dim == dims and space.latent_dim == 10 and space.source == "test"
  assert all(a.dtype == np.float32 for a in (space.mean, space.basis, space.scales,
                                             space.explained))
  assert P.fit_style_space(z.copy(), dims, source="test") == space  # deterministic
  # The sign convention, not the SVD's arbitrary signs, fixes the columns: -z gives the same.
  np.testing.assert_allclose(P.fit_style_space(-z, dims).basis, space.basis, atol=1e-5)


def test_style_space_maps():
  z = _collection()
  space = P.fit_style_space(z, 3)
  y = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)
  np.testing.assert_allclose(space.to_coords(space.to_latent(y)), y, atol=1e-4)
  latents = z[:5].astype(np.float32)
  b = space.basis.astype(np.float64)
  projected = space.mean + (latents - space.mean) @ b @ b.T
  np.testing.assert_allclose(space.to_latent(space.to_coords(latents)), projected, atol=1e-4)
  coords = space.to_coords(z)
  np.testing.assert_allclose(coords.std(axis=0, ddof=1), 1.0, rtol=1e-4)
  np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-4)
  import jax.numpy as jnp
  out = space.to_latent(jnp.asarray(y[0]))
  assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (10,)
  with pytest.raises(ValueError):
    space.to_latent(np.zeros(4))


@pytest.mark.parametrize("latents,dims", [
    (np.zeros((5, 4)) + np.arange(4), 1),  # all identical: spans nothing
    (_collection(n=6)[:, :3] @ np.eye(3, 8), 4),  # spans 3 directions
    (_collection(n=5), 5),  # dims > n - 1
    (_collection(n=40, big_d=3), 4),  # dims > D
    (_collection(), 0),
    (_collection()[0], 1),  # not [n, D]
    (np.full((4, 3), np.nan), 1),
])
def test_fit_style_space_rejects_bad_inputs(latents, dims):
  with pytest.raises(ValueError):
    P.fit_style_space(latents, dims)


# ----------------------------------------------------------------------------- bad files


def _parts(p):
  """The arrays and meta dict save_profile would write for ``p``."""
  arrays = {"latent": p.latent, "coords": p.coords, "space_mean": p.space.mean,
            "space_basis": p.space.basis, "space_scales": p.space.scales,
            "space_explained": p.space.explained}
  meta = {"format": "jaxstyle.style", "version": 1, "strength": p.strength,
          "space_source": p.space.source, "provenance": p.provenance}
  return {k: np.array(v) for k, v in arrays.items()}, meta


def _write(path, arrays, meta):
  arrays = dict(arrays)
  if meta is not None and "meta" not in arrays:  # a case may have set its own
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  with open(path, "wb") as f:
    np.savez(f, **arrays)


def _mutate(fn):
  def make(path):
    arrays, meta = _parts(_full_profile())
    fn(arrays, meta)
    _write(path, arrays, meta)
  return make


def _raw(data):
  def make(path):
    with open(path, "wb") as f:
      f.write(data)
  return make


def _valid_bytes():
  buf = io.BytesIO()
  arrays, meta = _parts(_full_profile())
  arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  np.savez(buf, **arrays)
  return buf.getvalue()


def _bad_crc():
  data = bytearray(_valid_bytes())
  data[200] ^= 0xFF  # inside the first member's array data (stored, uncompressed)
  return bytes(data)


def _meta_bytes(raw):
  def fn(arrays, meta):
    arrays["meta"] = np.frombuffer(raw, np.uint8)
  return fn


def _set(key, value):
  def fn(arrays, meta):
    target = meta if key in meta or key in ("version", "strength") else arrays
    if value is KeyError:
      target.pop(key)
    else:
      target[key] = value
  return fn


def _raw_member(path):
  _raw(_valid_bytes())(path)
  with zipfile.ZipFile(path, "a") as z:
    z.writestr("extra.npy", b"not an array")


def _npy(path):
  np.save(path, np.zeros(3, np.float32))
  os.replace(path + ".npy", path)


BAD_FILES = {
    "missing": (lambda path: None, "(no such profile file)"),
    "directory": (os.mkdir, "(a directory)"),
    "empty": (_raw(b""), "(an empty file)"),
    "text": (_raw(b"latent = [1, 2, 3]\n"), "not a jaxstyle profile"),
    "truncated": (_raw(_valid_bytes()[:700]), "not a jaxstyle profile"),
    "bad_crc": (_raw(_bad_crc()), "not a jaxstyle profile"),
    "npy_not_npz": (_npy, "single .npy"),
    "pickle_file": (_raw(pickle.dumps({"latent": [1.0]})), "not an .npz archive"),
    "raw_member": (_raw_member, "member 'extra' is not a .npy array"),
    "no_latent": (_mutate(_set("latent", KeyError)), "no 'latent'"),
    "no_meta": (lambda path: _write(path, _parts(_full_profile())[0], None), "'meta' is missing"),
    "meta_str_array": (_mutate(lambda a, m: a.update(meta=np.array(json.dumps(m)))),
                       "not a uint8"),
    "meta_not_utf8": (_mutate(_meta_bytes(b"\xff\xfe{}")), "not UTF-8 JSON"),
    "meta_not_json": (_mutate(_meta_bytes(b"{format: 1")), "not UTF-8 JSON"),
    "meta_list": (_mutate(_meta_bytes(b"[1, 2]")), "format 'list'"),
    "wrong_format": (_mutate(_set("format", "jaxstyle-style-index")), "format 'jaxstyle-style"),
    "no_format": (_mutate(_set("format", KeyError)), "format None"),
    "version_str": (_mutate(_set("version", "1")), "not a positive integer"),
    "version_float": (_mutate(_set("version", 1.0)), "not a positive integer"),
    "version_bool": (_mutate(_set("version", True)), "not a positive integer"),
    "version_zero": (_mutate(_set("version", 0)), "not a positive integer"),
    "version_missing": (_mutate(_set("version", KeyError)), "not a positive integer"),
    "newer": (_mutate(_set("version", 7)), "newer jaxstyle (format 7"),
    "unknown_array": (_mutate(lambda a, m: a.update(extra=np.zeros(2))), "unexpected arrays"),
    "incomplete_space": (_mutate(_set("space_scales", KeyError)), "incomplete style space"),
    "coords_without_space": (_mutate(lambda a, m: [a.pop(k) for k in P._SPACE_KEYS]),
                             "incomplete style space"),
    "latent_int": (_mutate(lambda a, m: a.update(latent=np.arange(10))), "dtype int"),
    "basis_bool": (_mutate(lambda a, m: a.update(space_basis=a["space_basis"] > 0)),
                   "dtype bool"),
    "latent_str": (_mutate(lambda a, m: a.update(latent=np.array(["1.0"] * 10))), "dtype <U3"),
    "latent_rank2": (_mutate(lambda a, m: a.update(latent=a["latent"][None])), "rank 1"),
    "latent_scalar": (_mutate(lambda a, m: a.update(latent=np.float32(1))), "rank 1"),
    "latent_empty": (_mutate(lambda a, m: a.update(latent=np.zeros(0, np.float32))), "empty"),
    "basis_rank1": (_mutate(lambda a, m: a.update(space_basis=a["space_basis"][:, 0])),
                    "rank 2"),
    "coords_len": (_mutate(lambda a, m: a.update(coords=a["coords"][:2])), "coords have size 2"),
    "basis_rows": (_mutate(lambda a, m: a.update(latent=a["latent"][:9])), "latent has size 9"),
    "scales_len": (_mutate(lambda a, m: a.update(space_scales=a["space_scales"][:2])),
                   "space shapes do not match"),
    "scale_zero": (_mutate(lambda a, m: a["space_scales"].__setitem__(1, 0.0)), "scales must"),
    "scale_neg": (_mutate(lambda a, m: a["space_scales"].__setitem__(0, -1.0)), "scales must"),
    "explained_neg": (_mutate(lambda a, m: a["space_explained"].__setitem__(0, -0.1)),
                      "explained"),
    "not_orthonormal": (_mutate(lambda a, m: a.update(space_basis=a["space_basis"] * 2)),
                        "orthonormal"),
    "latent_nan": (_mutate(lambda a, m: a["latent"].__setitem__(3, np.nan)), "non-finite"),
    "basis_inf": (_mutate(lambda a, m: a["space_basis"].__setitem__((0, 0), np.inf)),
                  "non-finite"),
    "coords_f64_overflow": (_mutate(lambda a, m: a.update(coords=np.array([1e300, 0, 0]))),
                            "non-finite"),
    "strength_high": (_mutate(_set("strength", 1.5)), "strength"),
    "strength_neg": (_mutate(_set("strength", -0.1)), "strength"),
    "strength_str": (_mutate(_set("strength", "high")), "strength"),
    "strength_bool": (_mutate(_set("strength", True)), "strength"),
    "strength_null": (_mutate(_set("strength", None)), "strength"),
    "source_not_str": (_mutate(_set("space_source", 3)), "space source must be a string"),
    "provenance_list": (_mutate(_set("provenance", [1])), "provenance must be a JSON object"),
    "provenance_str": (_mutate(_set("provenance", "me")), "provenance must be a JSON object"),
    "checkpoint_not_obj": (_mutate(lambda a, m: m["provenance"].update(checkpoint="x")),
                           "'checkpoint'"),
    "fingerprint_not_str": (
        _mutate(lambda a, m: m["provenance"]["checkpoint"].update(fingerprint=5)),
        "'checkpoint'"),
    "rounds_not_list": (_mutate(lambda a, m: m["provenance"].update(rounds={})), "'rounds'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_one_clear_profile_error(tmp_path, case):
  make, fragment = BAD_FILES[case]
  path = str(tmp_path / f"{case}.style")
  make(path)
  with pytest.raises(ProfileError) as info:
    P.load_profile(path)
  msg = str(info.value)
  assert isinstance(info.value, JaxstyleError)
  assert msg.startswith(f"{path}: ") and "\n" not in msg and "Traceback" not in msg
  assert fragment in msg and "allow_pickle" not in msg
  assert "personalize.py" in msg or "upgrade jaxstyle" in msg


def test_the_good_file_used_to_craft_bad_ones_loads(tmp_path):
  path = str(tmp_path / "good.style")
  _raw(_valid_bytes())(path)
  assert P.load_profile(path) == _full_profile()
  _mutate(lambda a, m: a.update(latent=a["latent"].astype(np.float64)))(path)
  assert P.load_profile(path).latent.dtype == np.float32  # other float widths are converted


def test_oversized_archive_is_refused(tmp_path, monkeypatch):
  path = P.save_profile(str(tmp_path / "big.style"), _full_profile())
  monkeypatch.setattr(P, "MAX_BYTES", 1000)
  with pytest.raises(ProfileError, match="unpacks to more than"):
    P.load_profile(path)


def test_newer_version_says_upgrade(tmp_path):
  path = str(tmp_path / "future.style")
  # A newer format may change anything else too: the version is judged first.
  _mutate(lambda a, m: (m.update(version=2), a.pop("latent"), a.update(new=np.zeros(1))))(path)
  with pytest.raises(ProfileError, match=r"written by a newer jaxstyle \(format 2.*upgrade"):
    P.load_profile(path)


class _Payload:
  """Unpickling this creates the marker file: proof that code ran."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, "w"))


@pytest.mark.parametrize("key", ["latent", "meta", "extra"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, key):
  marker = str(tmp_path / "pwned")
  arrays, meta = _parts(_full_profile())
  arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  arrays[key] = np.array([_Payload(marker), 1], dtype=object)
  path = str(tmp_path / "evil.style")
  with open(path, "wb") as f:
    np.savez(f, allow_pickle=True, **arrays)
  assert not os.path.exists(marker)
  with pytest.raises(ProfileError, match="refused.*pickled") as info:
    P.load_profile(path)
  assert str(info.value).startswith(path) and key in str(info.value)
  assert not os.path.exists(marker)
  # The payload is live: a pickle-allowing reader would have run it.
  with np.load(path, allow_pickle=True) as data:
    data[key]
  assert os.path.exists(marker)


def test_raw_pickle_file_is_refused_and_never_runs(tmp_path):
  marker = str(tmp_path / "pwned")
  path = str(tmp_path / "evil.style")
  with open(path, "wb") as f:
    pickle.dump(_Payload(marker), f)
  with pytest.raises(ProfileError, match="not an .npz archive"):
    P.load_profile(path)
  assert not os.path.exists(marker)
  with open(path, "rb") as f:  # the payload is live
    pickle.load(f)
  assert os.path.exists(marker)


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("text,expected", [
    ("me.style", ("me.style", 1.0)),
    ("me.style:0.7", ("me.style", 0.7)),
    ("me.style:0", ("me.style", 0.0)),
    ("me.style:1", ("me.style", 1.0)),
    ("dir/me.style:.25", ("dir/me.style", 0.25)),
    ("C:\\x\\me.style:0.3", ("C:\\x\\me.style", 0.3)),
    ("C:\\x\\me.style", ("C:\\x\\me.style", 1.0)),
    ("a:b/me.style", ("a:b/me.style", 1.0)),
    ("C:me.style", ("C:me.style", 1.0)),
])
def test_parse_profile_arg(text, expected):
  assert P.parse_profile_arg(text) == expected


@pytest.mark.parametrize("text", ["me.style:abc", "me.style:1.5", "me.style:-0.1",
                                  "me.style:nan", "me.style:inf", "me.style:", ":0.5", ""])
def test_parse_profile_arg_rejects(text):
  with pytest.raises(ProfileError) as info:
    P.parse_profile_arg(text)
  assert repr(text) in str(info.value) and "PATH[:WEIGHT]" in str(info.value)


def test_check_profile_for():
  p = _full_profile()
  fp = p.provenance["checkpoint"]["fingerprint"]
  P.check_profile_for(p, latent_dim=10, fingerprint=fp, path="me.style")
  P.check_profile_for(p, latent_dim=10, fingerprint=None)
  with pytest.raises(ProfileError) as info:
    P.check_profile_for(p, latent_dim=16, fingerprint=fp, path="me.style")
  msg = str(info.value)
  assert msg.startswith("me.style: ") and "10" in msg and "16" in msg
  other = "cd" * 32
  with pytest.raises(ProfileError) as info:
    P.check_profile_for(p, latent_dim=10, fingerprint=other, path="me.style")
  msg = str(info.value)
  assert "another checkpoint" in msg and fp[:12] in msg and other[:12] in msg
  assert fp not in msg and "runs/v4/ckpt" in msg and "personalize.py" in msg
  unrecorded = P.StyleProfile(latent=p.latent, provenance={"checkpoint": {"step": 3}})
  P.check_profile_for(unrecorded, latent_dim=10, fingerprint=other)
  P.check_profile_for(P.StyleProfile(latent=p.latent), latent_dim=10, fingerprint=other)
  with pytest.raises(ProfileError, match="the style profile: latent size 10"):
    P.check_profile_for(unrecorded, latent_dim=11, fingerprint=other)


def test_append_round_returns_a_new_profile():
  p = _full_profile()
  before = json.dumps(p.provenance, sort_keys=True)
  record = {"round": 2, "chosen": 0}
  q = P.append_round(p, record)
  assert json.dumps(p.provenance, sort_keys=True) == before
  assert len(p.provenance["rounds"]) == 1
  assert q.provenance["rounds"] == p.provenance["rounds"] + [{"round": 2, "chosen": 0}]
  record["chosen"] = 9  # the caller's dict is copied
  assert q.provenance["rounds"][-1]["chosen"] == 0
  assert q.latent.tobytes() == p.latent.tobytes() and q.space == p.space
  assert q.strength == p.strength
  fresh = P.append_round(P.StyleProfile(latent=np.zeros(2)), {"round": 1})
  assert fresh.provenance == {"rounds": [{"round": 1}]}
  with pytest.raises(ValueError):
    P.append_round(p, [1])
  with pytest.raises(ValueError):
    P.append_round(p, {"x": {1, 2}})


def test_profile_error_is_reexported():
  assert P.ProfileError is ProfileError
