"""Spherical interpolation (beyond the paper) between the normalised projected target and source.

λ is the target's weight, as in the linear mode; the options are the linear interpolator's, only
the kernel's interpolation differs. For nearly parallel rows the slerp weights tend to λ and 1 − λ (the
linear limit); for nearly antiparallel rows slerp is ill-defined (see xite.ops.reference), which
retrieved nearest neighbours do not produce.
"""

from __future__ import annotations

from xite.interpolators.linear import LinearInterpolator


class SlerpInterpolator(LinearInterpolator):
    """Spherical interpolation between the normalised projected target and the source.

    Options:
        lam: weight of the target row, in [0, 1] (0.5: the midpoint of the arc)
    """

    name = "slerp"
    interp = "slerp"
