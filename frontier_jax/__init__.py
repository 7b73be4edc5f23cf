"""frontier_jax: cost frontier of LLM serving under SLO contracts, swept with JAX."""
import jax

# float64 must be *available* (tests and fits use it); sweeps choose their dtype explicitly.
jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
