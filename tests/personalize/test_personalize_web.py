"""The web gallery: its HTTP contract, and a real headless Chromium clicking through a session.

The browser test drives Debian's ``chromium`` through Selenium and its
``chromedriver`` (``.ci/run`` installs both). Without them it is skipped
locally and fails in CI (``CI=true``), so a broken setup is never silent there.
"""

import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from jaxstyle.personalize import choices, loop, web
from jaxstyle.personalize import preference as pref

K = 3


def _get(port, path):
  with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
    return r.status, r.read()


def _post(port, obj):
  req = urllib.request.Request(f"http://127.0.0.1:{port}/choose", data=json.dumps(obj).encode(),
                               headers={"Content-Type": "application/json"}, method="POST")
  try:
    with urllib.request.urlopen(req, timeout=10) as r:
      return r.status
  except urllib.error.HTTPError as e:
    return e.code


def _render(coords):
  """Candidates as flat colours from their coordinates (what the page shows does not matter here)."""
  c = 0.5 + 0.4 * np.tanh(np.asarray(coords)[:, :3])
  return np.broadcast_to(c[:, None, None, :], (len(coords), 24, 32, 3)).astype(np.float32)


def _session_thread(server, rounds, records):
  session = choices.Session(pref.PreferenceConfig(pool_size=32), np.zeros(3, np.float32), k=K,
                            capacity=rounds, key=0)

  def target():
    try:
      loop.run_loop(session, _render, server, rounds, records.append)
    finally:
      server.close(grace=1.0)

  t = threading.Thread(target=target, daemon=True)
  t.start()
  return t


def _wait_round(port, r, timeout=60):
  import time
  end = time.time() + timeout
  while time.time() < end:
    if json.loads(_get(port, "/state")[1])["round"] == r:
      return
    time.sleep(0.05)
  raise AssertionError(f"round {r} never came")


def test_http_contract():
  server = web.GalleryServer(port=0, photo=np.full((20, 30, 3), 0.5, np.float32))
  assert server._server.server_address[0] == "127.0.0.1"
  records = []
  t = _session_thread(server, 2, records)
  port = server.port
  _wait_round(port, 1)
  status, page = _get(port, "/")
  assert status == 200 and b"/choose" in page and b"keydown" in page
  status, png = _get(port, "/img/1/2.png")
  assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
  assert _get(port, "/photo.png")[1][:4] == b"\x89PNG"
  for bad in ("/img/1/9.png", "/img/7/0.png", "/nothing"):
    with pytest.raises(urllib.error.HTTPError) as e:
      _get(port, bad)
    assert e.value.code == 404
  assert _post(port, {"round": 2, "choice": 1}) == 409      # not the current round
  assert _post(port, {"round": 1, "choice": 9}) == 400      # not a candidate
  assert _post(port, {"round": 1}) == 400
  assert _post(port, {"round": 1, "choice": 3}) == 200
  assert _post(port, {"round": 1, "choice": 2}) == 409      # answered already (double click)
  _wait_round(port, 2)
  assert _post(port, {"round": 2, "choice": 0}) == 200      # none of these
  t.join(30)
  assert [r["choice"] for r in records] == [2, None]


def _chrome():
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top

  opts = webdriver.ChromeOptions()
  opts.binary_location = shutil.which("chromium")
  for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1200,800"):
    opts.add_argument(a)
  return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))


def test_a_real_browser_clicks_keys_and_reloads(tmp_path):
  try:
    import selenium  # noqa: F401  pylint: disable=g-import-not-at-top
    have = bool(shutil.which("chromium") and shutil.which("chromedriver"))
  except ImportError:
    have = False
  if not have:
    if os.environ.get("CI"):
      pytest.fail("chromium, chromedriver or selenium missing: .ci/run must install them")
    pytest.skip("no chromium/chromedriver/selenium here")
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top

  server = web.GalleryServer(port=0, photo=np.full((20, 30, 3), 0.5, np.float32))
  records = []
  t = _session_thread(server, 4, records)
  driver = _chrome()
  try:
    wait = WebDriverWait(driver, 60)
    driver.get(f"http://127.0.0.1:{server.port}/")

    def at_round(r):
      wait.until(lambda d: d.find_element(By.ID, "round").text == f"Round {r} of 4")
      wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#row figure img")) == K)

    at_round(1)
    assert "your style so far" in driver.find_element(By.ID, "cand1").text
    driver.find_element(By.ID, "cand3").click()                      # mouse: candidate 3
    at_round(2)
    driver.find_element(By.TAG_NAME, "body").send_keys("2")          # key 2
    at_round(3)
    driver.refresh()                                                 # reload midway
    at_round(3)
    driver.find_element(By.TAG_NAME, "body").send_keys("n")          # none of these
    at_round(4)
    driver.find_element(By.ID, "none").click()                       # the button
    wait.until(lambda d: "Done" in d.find_element(By.ID, "round").text)
    driver.save_screenshot(str(tmp_path / "done.png"))
  finally:
    driver.quit()
    t.join(30)
  assert [r["choice"] for r in records] == [2, 1, None, None]
  assert [r["round"] for r in records] == [1, 2, 3, 4]
