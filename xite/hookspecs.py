"""The pluggy hook specifications of xite (project name ``xite``, entry-point group ``xite``).

Each ``register_*`` hook receives a ``register(name, cls, *, override=False)`` callable. A name
another package already registered is an error (the later plugin is skipped) unless it passes
``override=True`` to replace it on purpose. ``cls`` must fulfil its kind's contract
(:mod:`xite.contracts`); its constructor's keyword parameters are its options
(:mod:`xite.options`). Built-in components
(:mod:`xite.builtins`) use exactly these hooks; a third-party package does the same in a module
named in its ``[project.entry-points.xite]`` table.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("xite")
hookimpl = pluggy.HookimplMarker("xite")


@hookspec
def register_encoders(register):
    """Register encoders: ``register("e5-small", E5SmallEncoder)``.

    A factory is called with the encoder's options (keyword arguments) and returns an object
    with ``name``, ``version``, ``dim``, ``encode(texts, batch_size)`` and ``encode_pairs(a, b)``
    (see :class:`xite.encoders.base.Encoder`). A name ending in ``:`` (like ``hf:``) is a prefix:
    ``hf:NAME`` calls the factory with ``spec="NAME"``.
    """


@hookspec
def register_retrievers(register):
    """Register retrievers (see :class:`xite.retrievers.base.Retriever`)."""


@hookspec
def register_projectors(register):
    """Register projectors (see :class:`xite.projectors.base.Projector`)."""


@hookspec
def register_interpolators(register):
    """Register interpolators (see :class:`xite.interpolators.base.Interpolator`)."""


@hookspec
def register_adopters(register):
    """Register label-adoption strategies (see :class:`xite.adopters.base.Adopter`)."""


@hookspec
def register_commands(app):
    """Add commands to the Typer ``app`` of the ``xite`` CLI (``@app.command()``).

    A command whose name xite (or an earlier plugin) already has is an error: the plugin is
    skipped. ``xite plugins`` lists each plugin's commands."""
