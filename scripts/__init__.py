"""The template repository's scripts, run from its root: `python -m scripts.demo`."""
