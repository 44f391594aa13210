"""Interpolators: the coefficients λ and the mode (linear or slerp) of the interpolation."""
