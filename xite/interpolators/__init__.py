"""Interpolators: the coefficients λ and the interpolation (linear or slerp) of the interpolation."""
