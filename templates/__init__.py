"""Jinja2 templates that `ptycho-knobs generate` renders."""
