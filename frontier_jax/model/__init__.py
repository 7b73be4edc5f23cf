"""Pure model functions (no jit, no vmap): SI units in, SI units out."""
