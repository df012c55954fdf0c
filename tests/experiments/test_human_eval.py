"""experiments/human_eval.py: seeded blind pages, scoring against references, a real browser.

The browser test drives Debian's ``chromium`` through Selenium and its
``chromedriver``: it opens the page from file://, rates with mouse and keys,
reloads midway, exports results.json and scores it. Without chromium,
chromedriver or selenium it is skipped locally and fails in CI (``CI=true``).
"""

import json
import math
import os
import shutil
import time

import numpy as np
import pytest

from conftest import run_experiment
from jaxstyle import images

import human_eval_lib as lib

STEMS = ("content_alpha", "content_beta", "content_gamma", "content_delta", "content_eps")
Z95 = 1.959963984540054


def _folders(tmp_path, n=len(STEMS)):
  """Method A: a folder of PNGs; method B: a run directory with them in samples/."""
  a, b = tmp_path / "method_network", tmp_path / "method_gatys"
  for i, stem in enumerate(STEMS[:n]):
    images.save_image(str(a / f"{stem}.png"), np.full((24, 32, 3), (0.1 + 0.2 * i, 0.9, 0.2),
                                                      np.float32))
    images.save_image(str(b / "samples" / f"{stem}.png"), np.full((24, 32, 3), (0.8, 0.1 + 0.2 * i,
                                                                                0.7), np.float32))
  return a, b


def _make(a, b, out, *args, check=True):
  return run_experiment("human_eval.py", "make", "--a", a, "--b", b, "--out", out, *args,
                        timeout=120, check=check)


def _score(*args, check=True):
  return run_experiment("human_eval.py", "score", *args, timeout=120, check=check)


def _read(path):
  with open(path, "rb") as f:
    return f.read()


def _one_error_line(proc):
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
  return lines[0]


# ----------------------------------------------------------------------------- making pages


def test_help_exits_0():
  for args in ((), ("make",), ("score",)):
    proc = run_experiment("human_eval.py", *args, "--help", timeout=60)
    assert proc.returncode == 0 and proc.stdout


def test_same_seed_same_bytes_other_seed_other_layout_and_no_leak(tmp_path):
  a, b = _folders(tmp_path)
  for name, seed in (("s0", 0), ("s0_again", 0), ("s1", 1)):
    _make(a, b, tmp_path / name, "--seed", seed)
  for f in ("index.html", "key.json"):
    assert _read(tmp_path / "s0" / f) == _read(tmp_path / "s0_again" / f)
  key0 = json.loads(_read(tmp_path / "s0" / "key.json"))
  key1 = json.loads(_read(tmp_path / "s1" / "key.json"))
  sides0 = {p["stem"]: p["a_side"] for p in key0["pairs"]}
  sides1 = {p["stem"]: p["a_side"] for p in key1["pairs"]}
  assert set(sides0) == set(sides1) == set(STEMS)
  assert sides0 != sides1
  assert key0["b"] == str(b / "samples")                   # a run directory: its samples/
  for p in key0["pairs"]:
    assert p["a"]["sha256"] == lib.fileio.file_sha256(p["a"]["path"])
    assert os.path.dirname(p["a"]["path"]) == str(a)
  page = _read(tmp_path / "s0" / "index.html").decode()
  assert page.count("data:image/png;base64,") == 2 * len(STEMS)
  assert key0["page_id"] in page
  for secret in ("method_network", "method_gatys", "samples", "key.json", "a_side",
                 *STEMS, *(p["a"]["sha256"] for p in key0["pairs"])):
    assert secret not in page, secret


def test_pairs_subset_unreadable_skipped_and_errors(tmp_path):
  a, b = _folders(tmp_path)
  full = lib.layout(STEMS, 3)
  _make(a, b, tmp_path / "three", "--seed", 3, "--pairs", 3)
  key = json.loads(_read(tmp_path / "three" / "key.json"))
  assert [(p["stem"], p["a_side"]) for p in key["pairs"]] == full[:3]
  assert [p["id"] for p in key["pairs"]] == ["p1", "p2", "p3"]

  (a / f"{full[0][0]}.png").write_bytes(b"not an image")    # the first pair of the order
  proc = _make(a, b, tmp_path / "skip", "--seed", 3, "--pairs", 3)
  key = json.loads(_read(tmp_path / "skip" / "key.json"))
  assert [(p["stem"], p["a_side"]) for p in key["pairs"]] == full[1:4]
  assert "skipped pair" in proc.stderr and full[0][0] in proc.stderr
  images.save_image(str(a / f"{full[0][0]}.png"), np.zeros((8, 8, 3), np.float32))

  assert "only 5" in _one_error_line(_make(a, b, tmp_path / "x", "--pairs", 9, check=False))
  empty = tmp_path / "empty"
  empty.mkdir()
  assert "no images" in _one_error_line(_make(a, empty, tmp_path / "x", check=False))
  other = tmp_path / "other"
  images.save_image(str(other / "unrelated.png"), np.zeros((8, 8, 3), np.float32))
  assert "in common" in _one_error_line(_make(a, other, tmp_path / "x", check=False))
  # Another page's key is not replaced silently.
  assert "--overwrite" in _one_error_line(_make(a, b, tmp_path / "three", "--seed", 4,
                                                check=False))
  _make(a, b, tmp_path / "three", "--seed", 4, "--overwrite")


# ----------------------------------------------------------------------------- intervals


def _wilson_reference(k, n):
  p = k / n
  centre = p + Z95**2 / (2 * n)
  spread = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
  return (centre - spread) / (1 + Z95**2 / n), (centre + spread) / (1 + Z95**2 / n)


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (8, 12), (37, 80), (100, 100), (1, 1)])
def test_wilson_matches_the_formula(k, n):
  low, high = lib.wilson(k, n)
  ref_low, ref_high = _wilson_reference(k, n)
  assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
  assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)
  assert lib.wilson(0, 0) is None


def test_interval_published_values():
  """Textbook values (4 decimals): Wilson and Clopper-Pearson at 95%."""
  assert lib.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
  assert lib.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
  assert lib.clopper_pearson(0, 10) == pytest.approx((0.0, 0.3085), abs=1e-4)
  assert lib.clopper_pearson(10, 10) == pytest.approx((0.6915, 1.0), abs=1e-4)
  assert lib.clopper_pearson(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)
  assert lib.clopper_pearson(3, 3) is not None and lib.clopper_pearson(0, 0) is None


@pytest.mark.parametrize("k,n,level", [(0, 10, 0.95), (1, 10, 0.95), (7, 20, 0.95),
                                       (45, 100, 0.9), (999, 1000, 0.99), (250, 2000, 0.95)])
def test_clopper_pearson_matches_scipy(k, n, level):
  beta = pytest.importorskip("scipy.stats").beta
  alpha = 1 - level
  ref_low = 0.0 if k == 0 else beta.ppf(alpha / 2, k, n - k + 1)
  ref_high = 1.0 if k == n else beta.ppf(1 - alpha / 2, k + 1, n - k)
  low, high = lib.clopper_pearson(k, n, level)
  assert low == pytest.approx(ref_low, abs=1e-9)
  assert high == pytest.approx(ref_high, abs=1e-9)


# ----------------------------------------------------------------------------- scoring


def _results(path, key, rater, choices, page_id=None):
  doc = {"format": "jaxstyle-human-eval", "version": 1, "page_id": page_id or key["page_id"],
         "rater": rater,
         "choices": [{"pair": p, "choice": c, "time": t} for p, c, t in choices]}
  path.write_text(json.dumps(doc))
  return path


def test_score_per_rater_and_pooled(tmp_path):
  a, b = _folders(tmp_path)
  page = tmp_path / "page"
  _make(a, b, page, "--seed", 7)
  key = json.loads(_read(page / "key.json"))
  side = {p["id"]: p["a_side"] for p in key["pairs"]}
  other = {"left": "right", "right": "left"}
  t = "2024-01-01T00:00:0{}.000Z".format
  # ann: A, A, B, tie, A ; the second file re-rates p2 later as B (the latest counts).
  ann1 = _results(page / "ann1.json", key, "ann", [
      ("p1", side["p1"], t(1)), ("p2", side["p2"], t(2)), ("p3", other[side["p3"]], t(3))])
  ann2 = _results(tmp_path / "ann2.json", key, "ann", [
      ("p2", other[side["p2"]], t(6)), ("p4", "tie", t(4)), ("p5", side["p5"], t(5))])
  # unnamed: B, B, A
  anon = _results(tmp_path / "anon.json", key, "", [
      ("p1", other[side["p1"]], t(1)), ("p2", other[side["p2"]], t(2)), ("p3", side["p3"], t(3))])
  out = tmp_path / "score.json"
  proc = _score(ann1, "--results", ann2, anon, "--out", out)    # key: beside ann1
  assert "pooled" in proc.stdout and "ann" in proc.stdout
  assert "more than once" in proc.stderr
  report = json.loads(_read(out))
  rows = {r["rater"]: r for r in report["raters"]}
  assert set(rows) == {"ann", "(unnamed: anon.json)"}
  assert (rows["ann"]["a"], rows["ann"]["b"], rows["ann"]["ties"], rows["ann"]["rated"]) == \
      (2, 2, 1, 5)
  unnamed = rows["(unnamed: anon.json)"]
  assert (unnamed["a"], unnamed["b"], unnamed["ties"]) == (1, 2, 0)
  pooled = report["pooled"]
  assert (pooled["a"], pooled["b"], pooled["ties"], pooled["rated"]) == (3, 4, 1, 8)
  assert pooled["a_rate"] == pytest.approx(3 / 7)
  assert (pooled["low"], pooled["high"]) == pytest.approx(_wilson_reference(3, 7), abs=1e-12)

  proc = _score(anon, "--key", page / "key.json", "--interval", "clopper-pearson", "--out", out)
  assert json.loads(_read(out))["pooled"]["high"] == pytest.approx(lib.clopper_pearson(1, 3)[1])

  wrong = _results(tmp_path / "wrong.json", key, "x", [("p1", "left", t(1))], page_id="f" * 16)
  line = _one_error_line(_score(wrong, "--key", page / "key.json", check=False))
  assert "wrong.json" in line and "page" in line
  bad = tmp_path / "bad.json"
  bad.write_text('{"format": "jaxstyle-human-eval", ')
  line = _one_error_line(_score(bad, "--key", page / "key.json", check=False))
  assert "bad.json" in line and "JSON" in line
  unknown = _results(tmp_path / "unknown.json", key, "x", [("p99", "left", t(1))])
  assert "unknown.json" in _one_error_line(_score(unknown, "--key", page / "key.json",
                                                  check=False))
  assert "key.json" in _one_error_line(_score(tmp_path / "anon.json", check=False))  # no key


# ----------------------------------------------------------------------------- the browser


def _need_browser():
  try:
    import selenium  # noqa: F401  pylint: disable=g-import-not-at-top
    have = bool(shutil.which("chromium") and shutil.which("chromedriver"))
  except ImportError:
    have = False
  if not have:
    if os.environ.get("CI"):
      pytest.fail("chromium, chromedriver or selenium missing: .ci/run must install them")
    pytest.skip("no chromium/chromedriver/selenium here")


def _chrome(download_dir):
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top

  opts = webdriver.ChromeOptions()
  opts.binary_location = shutil.which("chromium")
  for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,800"):
    opts.add_argument(arg)
  opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                         "download.prompt_for_download": False,
                                         "download.directory_upgrade": True})
  driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
  driver.set_page_load_timeout(60)
  driver.set_script_timeout(30)
  return driver


def _wait_file(path, timeout=30):
  end = time.time() + timeout
  while time.time() < end:
    if os.path.exists(path):
      try:
        return json.loads(_read(path))
      except ValueError:
        pass  # still being written
    time.sleep(0.1)
  raise AssertionError(f"{path} never appeared (downloads: {os.listdir(os.path.dirname(path))})")


def test_a_real_browser_rates_reloads_exports_and_scores(tmp_path):
  _need_browser()
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.common.keys import Keys  # pylint: disable=g-import-not-at-top
  from selenium.common.exceptions import TimeoutException  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top

  a, b = _folders(tmp_path)
  page = tmp_path / "page"
  _make(a, b, page, "--seed", 11)
  key = json.loads(_read(page / "key.json"))
  downloads = tmp_path / "downloads"
  downloads.mkdir()
  driver = _chrome(downloads)
  try:
    wait = WebDriverWait(driver, 30)
    driver.get((page / "index.html").as_uri())

    def at_pair(i):
      try:
        wait.until(lambda d: d.find_element(By.ID, "progress").text == f"Pair {i} of 5")
        wait.until(lambda d: d.find_element(By.ID, "left").get_attribute("src").startswith("data:"))
      except TimeoutException:
        raise AssertionError(  # pylint: disable=raise-missing-from
            f"waited for pair {i}: the page shows {driver.find_element(By.ID, 'progress').text!r}, "
            f"its storage holds {driver.execute_script('return JSON.stringify(localStorage)')}")

    def press(key_):
      driver.execute_script("if (document.activeElement) document.activeElement.blur();")
      driver.find_element(By.TAG_NAME, "body").send_keys(key_)

    at_pair(1)
    name = driver.find_element(By.ID, "rater")
    name.send_keys("uma 12")                        # shortcut keys typed in the field are text
    at_pair(1)
    driver.find_element(By.ID, "choose-left").click()                 # 1: mouse, left
    at_pair(2)
    press(Keys.ARROW_RIGHT)                                           # 2: key, right
    at_pair(3)
    press("1")                                                        # 3: left ...
    at_pair(4)
    press(Keys.BACKSPACE)                                             # ... undone
    at_pair(3)
    driver.find_element(By.ID, "choose-right").click()                # 3: mouse, right
    at_pair(4)
    driver.execute_script("localStorage.clear()")  # the URL fragment's copy alone must do
    driver.refresh()                                                  # reload midway
    at_pair(4)
    assert driver.find_element(By.ID, "rater").get_attribute("value") == "uma 12"
    press(Keys.SPACE)                                                 # 4: tie (Space) ...
    at_pair(5)
    press("u")                                                        # ... back to 4,
    at_pair(4)
    press("0")                                                        # tie (0) ...
    at_pair(5)
    press("u")                                                        # ... back to 4,
    at_pair(4)
    driver.find_element(By.ID, "choose-tie").click()                  # ... tie again (mouse)
    at_pair(5)
    press("2")                                                        # 5: right
    wait.until(lambda d: d.find_element(By.ID, "progress").text == "All 5 pairs rated")
    assert driver.find_element(By.ID, "done").is_displayed()
    assert not driver.find_element(By.ID, "rate").is_displayed()
    driver.refresh()
    wait.until(lambda d: d.find_element(By.ID, "done").is_displayed())
    driver.find_element(By.ID, "export-done").click()
    results = _wait_file(str(downloads / "results.json"))
  finally:
    driver.quit()

  clicked = ["left", "right", "right", "tie", "right"]
  assert results["format"] == "jaxstyle-human-eval" and results["page_id"] == key["page_id"]
  assert results["rater"] == "uma 12"
  assert [c["pair"] for c in results["choices"]] == ["p1", "p2", "p3", "p4", "p5"]
  assert [c["choice"] for c in results["choices"]] == clicked
  side = {p["id"]: p["a_side"] for p in key["pairs"]}
  want_a = sum(c == side[f"p{i + 1}"] for i, c in enumerate(clicked))
  shutil.copy(downloads / "results.json", page / "results.json")
  out = tmp_path / "score.json"
  _score(page / "results.json", "--out", out)
  pooled = json.loads(_read(out))["pooled"]
  assert (pooled["a"], pooled["b"], pooled["ties"]) == (want_a, 4 - want_a, 1)
