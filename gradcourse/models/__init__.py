"""gradcourse.models: ready-made networks for the case-study notebooks (core layer).

One submodule per family, every one following the same convention (in the spirit of stax and
equinox: plain-pytree parameters, pure functions, a static configuration)::

    config = gc.models.cnn.Config(depth=8, width=16)      # frozen dataclass, validated on creation
    params = gc.models.cnn.init(key, config)               # a plain pytree, ready for jax.grad / optax
    out    = gc.models.cnn.apply(params, config, x)        # the network's output
    value  = gc.models.cnn.loss(params, config, batch)     # a scalar: fit(lambda p, b: loss(p, config, b), ...)
    hs     = gc.models.cnn.states(params, config, x)       # intermediate signals for the gradient tools

* ``cnn``: a deep CNN for 8×8 digits, plain or residual, optional batch / layer norm;
  ``states``: block outputs and activation outputs.
* ``rnn``: Elman, LSTM and GRU unrolled with ``lax.scan``; ``states``: hidden states h_0..h_T.
* ``transformer``: a decoder-only transformer, Pre-/Post-LN, optional QK-norm; ``states``: the
  residual stream h_0..h_L.

A config is hashable, so it can be a static argument of ``jax.jit``. Training is ``gc.train.fit``
(one run) or ``gc.train.fit_many`` (several runs in one compiled program); data tasks are in
``gc.data``.
"""
from . import cnn, rnn, transformer

__all__ = ["cnn", "rnn", "transformer"]
