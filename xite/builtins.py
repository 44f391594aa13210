"""xite's built-in components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from xite.hookspecs import hookimpl


@hookimpl
def register_encoders(register):
    from xite.encoders.e5_small import E5SmallEncoder
    from xite.encoders.hf import HFEncoder

    register("e5-small", E5SmallEncoder)
    register("hf:", HFEncoder)  # a prefix: hf:NAME_OR_PATH


@hookimpl
def register_retrievers(register):
    from xite.retrievers.exact import ExactRetriever
    from xite.retrievers.faiss_index import FaissRetriever

    register("faiss", FaissRetriever)
    register("exact", ExactRetriever)


@hookimpl
def register_projectors(register):
    from xite.projectors.lda import LDAProjector
    from xite.projectors.none import NoneProjector
    from xite.projectors.pca import PCAProjector

    register("lda", LDAProjector)
    register("pca", PCAProjector)
    register("none", NoneProjector)


@hookimpl
def register_interpolators(register):
    from xite.interpolators.linear import LinearInterpolator
    from xite.interpolators.mixup import MixupInterpolator
    from xite.interpolators.slerp import SlerpInterpolator

    register("linear", LinearInterpolator)
    register("mixup", MixupInterpolator)
    register("slerp", SlerpInterpolator)


@hookimpl
def register_adopters(register):
    from xite.adopters.agree import AgreeAdopter
    from xite.adopters.top1 import Top1Adopter
    from xite.adopters.vote import VoteAdopter

    register("top1", Top1Adopter)
    register("vote", VoteAdopter)
    register("agree", AgreeAdopter)
