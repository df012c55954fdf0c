"""Personalization: style spaces, preference models, profiles, and learning a user's style.

Modules (imported by name; nothing is loaded here):

* ``profile``: the ``.style`` file (``StyleProfile``, ``save_profile``, ``load_profile``,
  ``check_profile_for``, ``parse_profile_arg``) and the style space (``StyleSpace``,
  ``fit_style_space``).
* ``space``: a trained stylizer's style space over a painting collection.
* ``gram_match``: Gram statistics of a stylizer's outputs and the style distance.
* ``from_images``: a style from liked images (encoder mean, Gram fit, outlier scores).
* ``preference``: the preference settings, and the Luce/Bradley-Terry likelihood over a
  GP utility, Laplace fit, expected-improvement or Thompson proposals (``utility="gp"``).
* ``ideal_point``: the default model (``utility="ideal"``): Luce picks over a quadratic
  utility around the user's ideal point, importance-sampled posterior, Thompson proposals.
* ``choices``: a from-choices session (candidates, picks, replay).
* ``loop``, ``web``: the choice loop and its front ends (terminal, replay, web gallery).
* ``simulate``: simulated users and baseline searches.
"""
