"""The web gallery front end of the choice loop: a page on 127.0.0.1 only.

Contract:

* ``GalleryServer(port=0, photo=None)`` serves on ``127.0.0.1:port`` (0: any
  free port, then ``.port``) from a daemon thread, and is a front end of
  ``jaxstyle.personalize.loop``: ``ask(view)`` publishes the round's K
  candidates and blocks until the page posts a pick; ``close()`` marks the
  session done (open pages show it within ``grace`` seconds) and stops the
  server.
* Routes: ``GET /`` the page (self-contained HTML + JS: the K candidates side
  by side, candidate 1 marked "your style so far", the photo beside them, a
  round counter; click a candidate or press 1..K, N = none of these);
  ``GET /state`` JSON ``{"round", "total", "k", "done"}``; ``GET
  /img/ROUND/I.png`` candidate I (0-based) of that round; ``GET /photo.png``;
  ``POST /choose`` JSON ``{"round": r, "choice": k}`` (k = 1..K, 0 = none) —
  answered 409 if ``r`` is not the current round (a double click or a stale
  page), 400 if malformed. Anything else is 404.
* It binds 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import html
import io
import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from jaxstyle.images import to_uint8
from jaxstyle.personalize.loop import QUIT, RoundView, parse_choice
from jaxstyle.errors import ConfigError


def png_bytes(image: np.ndarray) -> bytes:
  """PNG encoding of a float32 RGB [0, 1] image [H, W, 3]."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  buf = io.BytesIO()
  Image.fromarray(to_uint8(image)).save(buf, format="PNG")
  return buf.getvalue()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jaxstyle: pick your style</title>
<style>
 body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
 #bar{display:flex;gap:1.5em;align-items:baseline}
 #row{display:flex;gap:14px;flex-wrap:wrap;margin-top:1em}
 figure{margin:0;cursor:pointer;border:3px solid transparent;border-radius:6px;padding:4px;background:#fff}
 figure:hover{border-color:#6aa0ff} figure.current{border-color:#999}
 figure img{display:block;max-width:300px;max-height:300px}
 figcaption{text-align:center;font-size:.95em;margin-top:4px}
 #photo img{max-width:200px;max-height:200px} #msg{color:#555} button{font-size:1em}
</style></head><body>
<div id="bar"><h2 id="round">waiting…</h2><span id="msg"></span></div>
<p>Which do you prefer? Click it or press its number. <b>N</b> or the button: none of these
(keep your current style).</p>
<div id="row"></div>
<p><button id="none">None of these (N)</button></p>
<div id="photo"><p>Your photo:</p><img src="/photo.png" alt="your photo"></div>
<script>
let state = {round: 0, k: 0, done: false}, busy = false;
function show(s) {
  state = s; busy = false;
  document.getElementById('round').textContent = s.done ? 'Done: your profile is saved.'
      : 'Round ' + s.round + ' of ' + s.total;
  document.getElementById('msg').textContent = '';
  const row = document.getElementById('row'); row.innerHTML = '';
  if (s.done) return;
  for (let i = 0; i < s.k; i++) {
    const f = document.createElement('figure');
    f.id = 'cand' + (i + 1); if (i == 0) f.className = 'current';
    f.innerHTML = '<img src="/img/' + s.round + '/' + i + '.png" alt="candidate ' + (i + 1) + '">' +
        '<figcaption>' + (i + 1) + (i == 0 ? ' (your style so far)' : '') + '</figcaption>';
    f.onclick = () => choose(i + 1);
    row.appendChild(f);
  }
}
async function poll(wantAfter) {
  for (;;) {
    const s = await (await fetch('/state')).json();
    if (s.done || s.round > wantAfter) { show(s); return; }
    await new Promise(r => setTimeout(r, 200));
  }
}
async function choose(k) {
  if (busy || state.done || state.round < 1) return;
  busy = true; document.getElementById('msg').textContent = 'thinking…';
  const r = await fetch('/choose', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({round: state.round, choice: k})});
  poll(state.round);
}
document.addEventListener('keydown', e => {
  if (e.key === 'n' || e.key === 'N') choose(0);
  const k = parseInt(e.key, 10);
  if (k >= 1 && k <= state.k) choose(k);
});
document.getElementById('none').onclick = () => choose(0);
poll(0);
</script></body></html>
"""


class GalleryServer:
  """The web front end (see the module contract)."""

  def __init__(self, port: int = 0, photo: np.ndarray | None = None):
    self._lock = threading.Lock()
    self._answers: queue.Queue = queue.Queue()
    self._round, self._total, self._k, self._done = 0, 0, 0, False
    self._images: list[bytes] = []
    self._photo = png_bytes(photo) if photo is not None else b""
    self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
    self._server.daemon_threads = True
    self.port = self._server.server_address[1]
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
    self._thread.start()

  def _state(self) -> dict:
    with self._lock:
      return {"round": self._round, "total": self._total, "k": self._k, "done": self._done}

  def _handler(self):
    gallery = self

    class Handler(BaseHTTPRequestHandler):
      def log_message(self, *args):  # quiet
        pass

      def _send(self, code: int, body: bytes, ctype: str):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

      def _json(self, code: int, obj: dict):
        self._send(code, json.dumps(obj).encode(), "application/json")

      def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        if path == "/":
          return self._send(200, _PAGE.encode(), "text/html; charset=utf-8")
        if path == "/state":
          return self._json(200, gallery._state())
        if path == "/photo.png" and gallery._photo:
          return self._send(200, gallery._photo, "image/png")
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "img" and parts[2].endswith(".png"):
          with gallery._lock:
            ok = parts[1] == str(gallery._round) and parts[2][:-4].isdigit()
            i = int(parts[2][:-4]) if ok else -1
            body = gallery._images[i] if 0 <= i < len(gallery._images) else None
          if body is not None:
            return self._send(200, body, "image/png")
        return self._send(404, b"not found", "text/plain")

      def do_POST(self):  # noqa: N802
        if self.path != "/choose":
          return self._send(404, b"not found", "text/plain")
        try:
          n = int(self.headers.get("Content-Length", "0"))
          obj = json.loads(self.rfile.read(min(n, 4096)) or b"null")
          r, k = obj["round"], obj["choice"]
          with gallery._lock:
            current, kk, done = gallery._round, gallery._k, gallery._done
          answer = parse_choice(k, kk, "the page")
        except (ValueError, KeyError, TypeError, ConfigError) as e:
          return self._json(400, {"error": html.escape(str(e))})
        if done or r != current or answer == QUIT:
          return self._json(409, {"error": f"round {r} is not the current round {current}"})
        with gallery._lock:
          if gallery._round != r:
            return self._json(409, {"error": "already answered"})
          gallery._round = -r  # answered: not current until the next round is published
        gallery._answers.put(answer)
        return self._json(200, {"ok": True})

    return Handler

  def ask(self, view: RoundView):
    """Publishes the round and waits for the page's pick (0-based index or None)."""
    pngs = [png_bytes(im) for im in view.candidates]
    with self._lock:
      self._images, self._k, self._total = pngs, len(pngs), view.total
      self._round = view.index
    while True:
      try:
        return self._answers.get(timeout=0.5)
      except queue.Empty:
        continue

  def close(self, grace: float = 1.0):
    """Marks the session done, lets open pages see it for ``grace`` seconds, then stops."""
    with self._lock:
      self._done = True
    if grace > 0:
      threading.Event().wait(grace)
    self._server.shutdown()
    self._server.server_close()
