"""Imports every node family so that their types register. Add a new family module here."""

from . import (  # noqa: F401
    activation,
    attention,
    block,
    conv,
    generative,
    gnn,
    io,
    linear,
    merge,
    norm,
    opaque,
    pool,
    recurrent,
    reshape,
)
