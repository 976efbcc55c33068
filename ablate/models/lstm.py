"""An LSTM sequence classifier with attention over time (the attention sources' temporal model).

Input (T, D) -> LSTM(units, activation, recurrent dropout) -> one of:

- ``none``: the LSTM's last state (U) -> Dense(classes, softmax);
- ``additive``: outputs h (T, U) -> :class:`~ablate.models.attention.AdditiveTemporalAttention`
  (Dense(width, tanh) -> Dense(1) -> softmax over the T steps) -> context (U) -> Dense(classes,
  softmax);
- ``block``: h (T, U) -> :class:`~ablate.models.attention.BlockTemporalAttention` (Dense(T,
  softmax) over time for every dimension) -> h · a (T, U) -> Flatten -> Dense(classes,
  softmax). The source's binary head, Dense(1, sigmoid), is Dense(2, softmax) here, as
  ablate's classification task has one probability per class.

The model's ``attention_maps`` give the weight of every time step (T): α for ``additive``,
a averaged over the U dimensions for ``block``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from ablate.models.attention import AdditiveTemporalAttention, BlockTemporalAttention


def build_lstm_attention(
    *,
    input_shape: Sequence[int],
    n_classes: int,
    units: int,
    activation: str,
    recurrent_dropout: float,
    attention: str,
    attention_width: int,
) -> keras.Model:
    """The classifier for one cell (parameters: ``ablate.models.registry.LSTM_ATTENTION``)."""
    sequence = keras.Input(tuple(input_shape), name="sequence")  # (T, D)
    h = layers.LSTM(
        units,
        activation=activation,
        recurrent_dropout=recurrent_dropout,
        return_sequences=attention != "none",
        name="lstm",
    )(sequence)  # (T, U), or (U) for the last state alone
    maps: dict[str, keras.Model] = {}
    if attention == "additive":
        layer = AdditiveTemporalAttention(attention_width, name="attention")
        context = layer(h)  # (U); called first, so that the layer is built
        maps["temporal"] = keras.Model(sequence, layer.attention(h))  # α (T)
        h = context
    elif attention == "block":
        layer = BlockTemporalAttention(name="attention")
        attended = layer(h)  # (T, U)
        maps["temporal"] = keras.Model(sequence, ops.mean(layer.attention(h), axis=-1))  # (T)
        h = layers.Flatten()(attended)  # (T·U)
    probabilities = layers.Dense(n_classes, activation="softmax", name="classes")(h)
    model = keras.Model(sequence, probabilities, name="lstm_attention")
    model.attention_maps = maps  # see ablate.models.explain
    return model
