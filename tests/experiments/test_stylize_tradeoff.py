"""benchmarks.stylize_tradeoff on a tiny config: record fields, β monotonicity, determinism, figures.

Real partial VGG weights and real photo × painting pairs at 64 px. The
monotonic checks hold with a wide margin at this size (measured on all six
default pairs at 64 px: from β = 1e-4 to 1e-2 at 20 steps the style
reduction grows at least 2.1× and the content ratio at least 2.5× per pair).
"""

import dataclasses

import numpy as np
import pytest

from benchmarks import stylize_tradeoff as st  # experiments/ is on sys.path (conftest)

TINY = st.Options(pairs=("chelsea:starry_night", "coins:matisse_woman_with_a_hat"), size=64,
                  betas=(1e-4, 1e-2), steps=(10, 20), seed=0)
RUN_FIELDS = {"pair", "beta", "steps", "style", "content", "style_reduction", "content_ratio"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, vgg_partial_path):
  out = tmp_path_factory.mktemp("tradeoff")
  opts = dataclasses.replace(TINY, vgg_weights=vgg_partial_path, figure=str(out / "sheet.png"),
                             curve=str(out / "curve.png"))
  return opts, st.run(opts)


def _get(runs, pair, beta, steps):
  (row,) = [r for r in runs if (r["pair"], r["beta"], r["steps"]) == (pair, beta, steps)]
  return row


def test_record_fields(tiny):
  opts, res = tiny
  assert res["size"] == 64 and res["steps"] == [10, 20] and res["betas"] == [1e-4, 1e-2]
  assert "beta" not in res["stylize_config"] and res["stylize_config"]["alpha"] == 1.0
  assert res["layers"]["style"] == {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}
  assert [p["content"] for p in res["pairs"]] == ["skimage_chelsea.png", "skimage_coins.png"]
  assert [p["style"] for p in res["pairs"]] == ["vangogh_starry_night.jpg",
                                                "matisse_woman_with_a_hat.jpg"]
  assert all(p["photo_style"] > 0 and p["painting_content"] > 0 for p in res["pairs"])
  assert len(res["runs"]) == 2 * 2 * 2
  for r in res["runs"]:
    assert RUN_FIELDS <= set(r), r
    assert ("run_s" in r) == (r["steps"] == 20)  # timed once, the longest run
    p = next(p for p in res["pairs"] if p["pair"] == r["pair"])
    assert r["style_reduction"] == pytest.approx(p["photo_style"] / r["style"])
    assert r["content_ratio"] == pytest.approx(r["content"] / p["painting_content"])
    assert r["style_reduction"] > 1 and 0 < r["content_ratio"] < 1.5
  assert len(res["summary"]) == 4 and set(res["compile_s"]) == {"1e-4", "1e-2"}
  for s in res["summary"]:
    rows = [r for r in res["runs"] if (r["beta"], r["steps"]) == (s["beta"], s["steps"])]
    assert s["pairs"] == 2
    assert s["style_reduction_median"] == pytest.approx(np.median([r["style_reduction"]
                                                                   for r in rows]))
    assert s["content_ratio_q25"] <= s["content_ratio_median"] <= s["content_ratio_q75"]
  assert res["figure"]["steps"] == 20 and res["figure"]["pairs"] == list(opts.pairs)


def test_larger_beta_stylizes_more_and_moves_content_further(tiny):
  opts, res = tiny
  for pair in opts.pairs:
    lo, hi = _get(res["runs"], pair, 1e-4, 20), _get(res["runs"], pair, 1e-2, 20)
    assert hi["style_reduction"] > 1.5 * lo["style_reduction"], pair
    assert hi["content_ratio"] > 1.5 * lo["content_ratio"], pair
    for beta in opts.betas:  # more steps, closer to the painting's Grams
      assert (_get(res["runs"], pair, beta, 20)["style_reduction"]
              > _get(res["runs"], pair, beta, 10)["style_reduction"]), (pair, beta)


def test_same_seed_same_numbers_and_short_runs_are_prefixes(tiny, vgg_partial_path):
  opts, res = tiny
  again = st.run(dataclasses.replace(opts, pairs=opts.pairs[:1], figure="", curve=""))
  strip = lambda runs: [{k: v for k, v in r.items() if k != "run_s"} for r in runs
                        if r["pair"] == opts.pairs[0]]
  assert strip(again["runs"]) == strip(res["runs"]) and len(again["runs"]) == 4
  assert again["pairs"] == res["pairs"][:1]
  # A 10-step run on its own scores as the 10-step prefix of the 20-step run.
  alone = st.run(dataclasses.replace(opts, pairs=opts.pairs[:1], betas=(1e-2,), steps=(10,),
                                     figure="", curve=""))
  (row,) = alone["runs"]
  prefix = _get(res["runs"], opts.pairs[0], 1e-2, 10)
  assert row["style"] == pytest.approx(prefix["style"], rel=1e-4)
  assert row["content"] == pytest.approx(prefix["content"], rel=1e-4)


def test_figures_are_pngs_of_the_expected_layout(tiny):
  opts, _ = tiny
  from jaxstyle import images
  sheet = images.load_image(opts.figure)
  # 2 rows x (photo, painting, 2 betas) tiles of 64 px, plus labels around them.
  assert sheet.shape[0] >= 2 * 66 and sheet.shape[1] >= 4 * 66
  curve = images.load_image(opts.curve)
  assert min(curve.shape[:2]) > 200


def test_names_resolve_to_files(shared_data):
  import os
  styles = os.path.join(shared_data, "styles")
  assert st.resolve("the_scream", styles).endswith("munch_the_scream.jpg")
  assert st.resolve("vangogh_starry_night.jpg", styles).endswith("vangogh_starry_night.jpg")
  with pytest.raises(FileNotFoundError, match="matches no file"):
    st.resolve("nope", styles)
  assert st.beta_label(3e-4) == "3e-4" and st.beta_label(1e-2) == "1e-2"
  assert st.beta_label(0.1) == "0.1"
