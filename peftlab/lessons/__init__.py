"""Helpers of one lesson each: the code a notebook uses beside its own, named for what it holds.

Each module's docstring names the notebook that teaches it. They build on the learner's kit
(``peftlab``) and never on the doctor or the maintainer tools.
"""
