"""Strict JAX for every test: 64-bit floats on, implicit rank promotion raises (STYLE.md)."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
