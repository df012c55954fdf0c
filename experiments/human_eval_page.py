"""The blind A/B rating page of experiments/human_eval.py: one self-contained HTML file.

``render_page(title, page_id, pairs)`` fills ``TEMPLATE``. ``pairs`` is a list
of ``{"id": opaque id, "left": data URI, "right": data URI}`` in showing
order; nothing else about a pair (file names, methods, which side is which)
may be passed in, so the page cannot leak the key.

What the page does (all in the browser, no server, works from file://):

* One pair at a time, large, side by side, with "Left better", "Can't tell",
  "Right better" and "Back" buttons and the keys ArrowLeft/1 (left),
  ArrowRight/2 (right), 0/Space (can't tell), Backspace/U (back: undoes the
  last choice and shows that pair again). Keys are ignored while typing in the
  rater name field and when auto-repeated.
* "Pair 3 of 12" progress; when every pair is rated a "finished" view.
* Every choice (and the optional rater name) is saved at once in
  localStorage under ``jaxstyle-human-eval:<page_id>`` and mirrored in the
  page's URL fragment (``history.replaceState``), so a reload resumes at the
  first unrated pair with the earlier choices kept; on load the copy with more
  choices wins. The fragment is there because Chromium does not keep a file://
  page's localStorage across reloads reliably (measured headless: a reload
  half a second after a write saw empty storage in about half the trials; over
  http://127.0.0.1 never); localStorage keeps them when the tab is closed.
* "Export results" downloads ``results.json`` (Blob + ``<a download>``)::

    {"format": "jaxstyle-human-eval", "version": 1, "page_id": ..., "rater": ...,
     "pairs_total": N, "exported": ISO time,
     "choices": [{"pair": id, "choice": "left"|"right"|"tie", "time": ISO time}, ...]}

  Choices are in showing order; a partial export (not finished) is allowed.
"""

from __future__ import annotations

import html
import json
import re
from typing import Sequence

RESULTS_FORMAT = "jaxstyle-human-eval"
RESULTS_VERSION = 1
STORAGE_PREFIX = "jaxstyle-human-eval:"

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
  html, body { margin: 0; background: #1e1e1e; color: #eee; font: 16px/1.4 system-ui, sans-serif; }
  header { display: flex; gap: 1.5em; align-items: center; flex-wrap: wrap; padding: .6em 1em;
           background: #2a2a2a; }
  header h1 { font-size: 1.15em; margin: 0; flex: 1 1 auto; }
  #progress { font-weight: bold; white-space: nowrap; }
  input { font: inherit; padding: .2em .4em; }
  button { font: inherit; padding: .5em 1.2em; border-radius: .4em; border: 1px solid #777;
           background: #3a3a3a; color: #eee; cursor: pointer; }
  button:hover { background: #505050; }
  #pair { display: flex; gap: 1em; justify-content: center; align-items: center; padding: 1em; }
  #pair figure { margin: 0; flex: 1 1 0; display: flex; justify-content: center; }
  #pair img { width: 100%; height: 66vh; object-fit: contain; }  /* small images scaled up */
  #buttons { display: flex; gap: 1em; justify-content: center; flex-wrap: wrap; }
  .help { text-align: center; color: #aaa; font-size: .9em; }
  #done { text-align: center; padding: 3em 1em; }
  #warning { color: #fb6; text-align: center; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>{{TITLE}}</h1>
  <span id="progress" aria-live="polite"></span>
  <label>Your name (optional) <input id="rater" type="text" autocomplete="off" size="16"></label>
  <button id="export" type="button">Export results</button>
</header>
<p id="warning" hidden></p>
<main id="rate">
  <div id="pair">
    <figure><img id="left" alt="left image"></figure>
    <figure><img id="right" alt="right image"></figure>
  </div>
  <div id="buttons">
    <button id="choose-left" type="button">Left better</button>
    <button id="choose-tie" type="button">Can't tell</button>
    <button id="choose-right" type="button">Right better</button>
    <button id="undo" type="button">Back</button>
  </div>
  <p class="help">Keys: &larr; or 1 = left better, &rarr; or 2 = right better,
    0 or Space = can't tell, Backspace or U = back. Your choices are kept in this browser;
    click "Export results" when done and send the downloaded results.json.</p>
</main>
<section id="done" hidden>
  <h2>Finished &mdash; thank you!</h2>
  <p>You rated all <span id="total"></span> pairs. Click "Export results" and send the downloaded
    file results.json. (Backspace or U goes back to the last pair.)</p>
  <button id="export-done" type="button">Export results</button>
</section>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const PAIRS = DATA.pairs;
  const N = PAIRS.length;
  const STORE = "{{STORAGE_PREFIX}}" + DATA.page_id;
  const $ = (id) => document.getElementById(id);
  let state = load();

  function parse(text) {  // a saved state, checked against this page's pairs; null if unusable
    try {
      const s = JSON.parse(text || "null");
      if (s && Array.isArray(s.choices)) {
        const kept = [];
        for (const c of s.choices) {  // a prefix of the pairs, in order
          if (kept.length >= N || !c || c.pair !== PAIRS[kept.length].id) break;
          if (!["left", "right", "tie"].includes(c.choice)) break;
          kept.push({pair: c.pair, choice: c.choice, time: String(c.time || "")});
        }
        return {rater: typeof s.rater === "string" ? s.rater : "", choices: kept};
      }
    } catch (e) { /* unreadable: ignored */ }
    return null;
  }

  function load() {  // the saved copy with more choices: localStorage or the URL fragment
    let stored = null, fragment = null;
    try { stored = parse(localStorage.getItem(STORE)); } catch (e) { /* no storage */ }
    try { fragment = parse(decodeURIComponent(location.hash.slice(1))); } catch (e) { /* bad */ }
    const copies = [stored, fragment].filter((s) => s !== null);
    copies.sort((x, y) => y.choices.length - x.choices.length);
    return copies.length ? copies[0] : {rater: "", choices: []};
  }

  function save() {
    const text = JSON.stringify(state);
    try {
      history.replaceState(null, "", "#" + encodeURIComponent(text));
    } catch (e) { /* the fragment is a second copy only */ }
    try {
      localStorage.setItem(STORE, text);
    } catch (e) {
      $("warning").textContent = "This browser cannot save your choices (" + e +
        "); export your results before closing the page.";
      $("warning").hidden = false;
    }
  }

  function show() {
    const cur = state.choices.length;
    const finished = cur >= N;
    $("rate").hidden = finished;
    $("done").hidden = !finished;
    $("total").textContent = String(N);
    if (finished) {
      $("progress").textContent = "All " + N + " pairs rated";
      $("left").removeAttribute("src");
      $("right").removeAttribute("src");
    } else {
      $("progress").textContent = "Pair " + (cur + 1) + " of " + N;
      $("left").src = PAIRS[cur].left;
      $("right").src = PAIRS[cur].right;
    }
    $("undo").disabled = cur === 0;
  }

  function choose(choice) {
    const cur = state.choices.length;
    if (cur >= N) return;
    state.choices.push({pair: PAIRS[cur].id, choice: choice, time: new Date().toISOString()});
    save();
    show();
  }

  function undo() {
    if (!state.choices.length) return;
    state.choices.pop();
    save();
    show();
  }

  function exportResults() {
    const out = {format: "{{FORMAT}}", version: {{VERSION}}, page_id: DATA.page_id,
                 rater: state.rater, pairs_total: N, exported: new Date().toISOString(),
                 choices: state.choices};
    const blob = new Blob([JSON.stringify(out, null, 2) + "\\n"], {type: "application/json"});
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = "results.json";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  function button(id, action) {
    $(id).addEventListener("click", (e) => {
      action();
      e.currentTarget.blur();  // so Space/Enter do not click it again
    });
  }
  button("choose-left", () => choose("left"));
  button("choose-right", () => choose("right"));
  button("choose-tie", () => choose("tie"));
  button("undo", undo);
  button("export", exportResults);
  button("export-done", exportResults);

  $("rater").value = state.rater;
  $("rater").addEventListener("input", () => { state.rater = $("rater").value; save(); });

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    let act = null;
    switch (e.key) {
      case "ArrowLeft": case "1": act = () => choose("left"); break;
      case "ArrowRight": case "2": act = () => choose("right"); break;
      case "0": case " ": case "Spacebar": act = () => choose("tie"); break;
      case "Backspace": case "u": case "U": act = undo; break;
    }
    if (act) {
      e.preventDefault();
      act();
    }
  });

  show();
})();
</script>
</body>
</html>
"""


def _script_json(obj) -> str:
  """JSON safe inside a ``<script>`` element (no ``<``, ``>``, ``&`` characters)."""
  text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
  return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(title: str, page_id: str, pairs: Sequence[dict]) -> str:
  """The rating page's HTML for ``pairs`` (``{"id", "left", "right"}`` each, in showing order)."""
  data = {"page_id": page_id,
          "pairs": [{"id": p["id"], "left": p["left"], "right": p["right"]} for p in pairs]}
  values = {
      "TITLE": html.escape(title),
      "STORAGE_PREFIX": STORAGE_PREFIX,
      "FORMAT": RESULTS_FORMAT,
      "VERSION": str(RESULTS_VERSION),
      "DATA": _script_json(data),
  }
  # One pass, so a title or the data can never be taken for a placeholder.
  return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: values[m.group(1)], TEMPLATE)
