"""The builder protocol, and the built-in builders with their parameters, each declared once.

A builder is a function ``build(*, input_shape, task, n_classes, seed, **parameters) ->
keras.Model``: ``input_shape`` is one example's shape, ``task`` the study's task,
``n_classes`` the number of classes (classification only), ``seed`` the trial's seed, and
``parameters`` the study's ``model:`` settings merged with one cell's factor levels — so a
factor can be any of the builder's parameters. ablate passes only the protocol arguments a
builder's signature names. The model's output must fit the task (see :mod:`ablate.tasks`),
and it adds any further loss terms with ``add_loss``.

Each built-in builder is declared here (:class:`ModelSpec`): its parameters with types,
ranges, defaults and docs, the tasks it serves and the inputs it needs. Study files are
validated against these declarations without importing Keras; the build functions receive
every parameter resolved, so defaults live here and nowhere else. A study may also name a
user's builder as ``"package.module:function"``; it then receives ``model.options``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError
from ablate.parameters import Parameter, find
from ablate.targets import check_keywords, import_target, is_target, protocol_arguments

if TYPE_CHECKING:
    from ablate.data import Dataset

#: Activations a convolution block accepts (names Keras resolves with ``keras.activations.get``).
ACTIVATIONS = (
    "elu", "gelu", "hard_sigmoid", "leaky_relu", "linear", "mish", "relu", "relu6",
    "selu", "sigmoid", "silu", "softplus", "softsign", "swish", "tanh",
)  # fmt: skip

#: The VAE's ``attention`` levels, and the LSTM classifier's.
VAE_ATTENTION = ("none", "spatial", "channel", "cbam", "stn")
TEMPORAL_ATTENTION = ("none", "additive", "block")

#: What ablate passes a builder where its signature names them (see the module).
PROTOCOL = ("input_shape", "task", "n_classes", "seed")


@dataclass(frozen=True)
class ModelSpec:
    """A named builder: where its code lives, its parameters, its tasks and its inputs."""

    name: str
    target: str  # "module:function", imported only when a model is built
    doc: str
    parameters: tuple[Parameter, ...] | None  # None: a user's builder, not checked ahead
    tasks: tuple[str, ...] = ()  # the tasks it serves, the default first; () = any
    input_rank: int | None = None  # dimensions of one example it needs (3: H, W, C)
    input_doc: str = ""  # those dimensions in words
    exclusive: tuple[tuple[str, str], ...] = ()  # parameters that cannot both be in use
    fused: str = ""  # "module:function" building one model for a fused group of its cells
    #: Levels of fusable parameters that still change the model's variables: a cell at one
    #: of them fuses only with its own replicates.
    unfusable_levels: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def default_task(self) -> str:
        return self.tasks[0] if self.tasks else "reconstruction"

    def parameter(self, name: str) -> Parameter | None:
        return find(self.parameters or (), name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters or ()}

    @property
    def is_users(self) -> bool:
        """A user's builder ("package.module:function"), not one of ablate's."""
        return self.parameters is None

    def check_inputs(self, data: Dataset) -> None:
        """Refuse data whose examples do not have the dimensions this model needs (an image
        array without a channel axis, say), naming the array and the way out."""
        if self.input_rank is None:
            return
        rank = len(data.input_shape)
        if rank == self.input_rank:
            return
        hint = (
            f"; an image array without a channel axis gets one with x[..., None], shape "
            f"{(*data.x_train.shape, 1)}"
            if rank == self.input_rank - 1
            else ""
        )
        raise AblateError(
            f"x_train has shape {data.x_train.shape}: examples of {rank} dimension"
            f"{'s' if rank != 1 else ''}, but the {self.name} model needs {self.input_rank} "
            f"({self.input_doc}){hint}."
        )

    def load(self) -> Callable[..., Any]:
        """Import and return the builder function (this imports Keras)."""
        if self.is_users:
            return import_target(self.target, "the model builder")
        module, _, function = self.target.partition(":")
        builder: Callable[..., Any] = getattr(importlib.import_module(module), function)
        return builder

    def check_callable(self, options: tuple[str, ...], factors: tuple[str, ...]) -> None:
        """Import a user's builder and refuse it if it cannot take the keyword arguments the
        study gives it (``model.options`` and the factors) or needs one ablate does not pass."""
        if not self.is_users:
            return  # ablate's own: declared above and tested
        check_keywords(
            self.load(),
            role="the model builder",
            target=self.target,
            given=(*options, *factors),
            protocol=PROTOCOL,
            origin=lambda name: " (a factor)" if name in factors else " (in model.options)",
        )

    def build(
        self,
        *,
        input_shape: tuple[int, ...],
        task: str | None = None,
        n_classes: int | None = None,
        seed: int | None = None,
        **parameters: Any,
    ) -> Any:
        """The model for these parameters (defaults filled in from the declaration)."""
        function = self.load()
        protocol: dict[str, Any] = {
            "input_shape": tuple(input_shape),
            "task": task or self.default_task,
            "seed": seed,
        }
        if n_classes is not None:
            protocol["n_classes"] = n_classes
        accepted = protocol_arguments(function, protocol)
        return function(**accepted, **{**self.defaults(), **parameters})


VAE = ModelSpec(
    name="vae",
    target="ablate.models.vae:build_vae",
    fused="ablate.models.vae:build_fused_vae",
    unfusable_levels=(("attention", ("stn",)),),  # a spatial transformer has weights of its own
    doc="the reference study's dense convolutional variational autoencoder",
    tasks=("reconstruction",),
    input_rank=3,
    input_doc="height, width, channels: an image with a channel axis",
    exclusive=(("spatial_attention", "attention"),),
    parameters=(
        Parameter(
            "units",
            "int_list",
            (35, 25, 15, 5),
            "filters per coder stage",
            maximum=4096,
            factor=False,
        ),
        Parameter("depth", "int", 3, "convolution blocks per dense block", minimum=1, maximum=64),
        Parameter("latent_dim", "int", 2, "dimension of the latent space", minimum=1, maximum=4096),
        Parameter("kl_weight", "float", 0.001, "weight of the KL term", minimum=0, maximum=1e6),
        Parameter(
            "dropout_rate",
            "float",
            0.2,
            "rate of every Dropout layer",
            minimum=0,
            below=1,
            fusable=True,
        ),
        Parameter(
            "batch_norm",
            "bool",
            False,
            "BatchNormalization in every convolution block",
            fusable=True,
        ),
        Parameter("dropout", "bool", False, "Dropout in every convolution block", fusable=True),
        Parameter(
            "spatial_attention",
            "bool",
            False,
            "spatial attention in every convolution block (the reference's flag: true is "
            "`attention: spatial`; set one of the two)",
            fusable=True,
        ),
        Parameter(
            "attention",
            "choice",
            "none",
            "attention in every convolution block: `spatial` (the reference layer), `channel` "
            "(squeeze-and-excitation), `cbam` (channel, then spatial); or `stn`, a spatial "
            "transformer on the input image",
            choices=VAE_ATTENTION,
            fusable=True,  # a spatial transformer (stn) only with its own replicates
        ),
        Parameter(
            "reduction_ratio",
            "int",
            4,
            "r of `channel` and `cbam` attention: their MLP has C/r hidden units (at least 1)",
            minimum=1,
            maximum=1024,
        ),
        Parameter(
            "activation",
            "choice",
            "relu",
            "activation closing every convolution block",
            choices=ACTIVATIONS,
            fusable=True,
        ),
        Parameter(
            "output_batch_norm",
            "bool",
            True,
            "BatchNormalization before the decoder's final sigmoid, as in the reference "
            "(off: the last convolution gets a bias instead)",
        ),
        Parameter(
            "batch_norm_momentum",
            "float",
            0.99,
            "momentum of every BatchNormalization's moving statistics (Keras's default, as in "
            "the reference; lower settles them in fewer steps, for short trainings)",
            minimum=0,
            below=1,
        ),
    ),
)

MULTISCALE_CNN = ModelSpec(
    name="multiscale_cnn",
    target="ablate.models.multiscale:build_multiscale_cnn",
    doc="a multi-scale CNN classifier with an attention module",
    tasks=("classification",),
    input_rank=3,
    input_doc="height, width, channels: an image with a channel axis",
    parameters=(
        Parameter(
            "filters",
            "int_list",
            (40, 30, 20, 10),
            "filters of every branch, stage by stage (the attention module uses the 2nd, "
            "3rd and last)",
            maximum=4096,
            factor=False,
        ),
        Parameter(
            "multi_scale",
            "bool",
            True,
            "parallel kernels 1, 3, …, 9 − 2i in stage i, combined by their maximum; false: one "
            "3×3 convolution per stage (the source's basic CNN)",
        ),
        Parameter(
            "attention",
            "bool",
            True,
            "the attention module: the head reads x + x·a instead of the last stage's x",
        ),
        Parameter(
            "activation",
            "choice",
            "relu",
            "activation of every convolution of the stages",
            choices=ACTIVATIONS,
        ),
    ),
)

LSTM_ATTENTION = ModelSpec(
    name="lstm_attention",
    target="ablate.models.lstm:build_lstm_attention",
    doc="an LSTM sequence classifier with attention over time",
    tasks=("classification",),
    input_rank=2,
    input_doc="time steps, features: a sequence",
    parameters=(
        Parameter("units", "int", 60, "units of the LSTM", minimum=1, maximum=4096),
        Parameter("activation", "choice", "tanh", "the LSTM's activation", choices=ACTIVATIONS),
        Parameter(
            "recurrent_dropout",
            "float",
            0.5,
            "dropout rate of the LSTM's recurrent connections",
            minimum=0,
            below=1,
        ),
        Parameter(
            "attention",
            "choice",
            "additive",
            "`none`: the last state; `additive`: softmax over time, context vector; `block`: "
            "a Dense(T, softmax) over time for every dimension",
            choices=TEMPORAL_ATTENTION,
        ),
        Parameter(
            "attention_width",
            "int",
            50,
            "hidden units of the additive attention's scoring layer",
            minimum=1,
            maximum=4096,
        ),
    ),
)

BUILDERS: dict[str, ModelSpec] = {m.name: m for m in (VAE, MULTISCALE_CNN, LSTM_ATTENTION)}


def builder_spec(name: str) -> ModelSpec | None:
    """A built-in builder by name, or a user's builder written as "package.module:function"."""
    if name in BUILDERS:
        return BUILDERS[name]
    if is_target(name):
        return ModelSpec(name=name, target=name, doc="a user's builder", parameters=None)
    return None
