"""The four shapes of a recurrent network, each as a small runnable example.

Every example generates its own data, trains with :mod:`rnnx`'s layers, heads and
optimizers (explicit forward and backward, no autograd), and reports a held-out score
against the target stated in its docstring. Run one with ``python -m
rnnx.examples.<name>`` (``--help`` lists the options, ``--quick`` is a smaller
configuration); from Python, ``rnnx.examples.<name>.main([...])`` returns the results
as a dict.

==============  ==================  =================================================
module          shape               task
==============  ==================  =================================================
``tagging``     many-to-many        mark every word of a person's name (bidirectional
                (T_x = T_y)         GRU, one tag per word)
``sentiment``   many-to-one         positive or negative, with negations and several
                                    clauses (bidirectional LSTM encoder)
``generate``    one-to-many         sample strings of a requested pattern from a class
                                    token, feeding each output back in
``seq2seq``     encoder-decoder     rewrite dates such as ``25 March 2021`` or
                (T_x != T_y)        ``3/25/21`` as ``2021-03-25``
==============  ==================  =================================================
"""

__all__ = ["tagging", "sentiment", "generate", "seq2seq"]
