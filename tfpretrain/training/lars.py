"""LARS (You et al., 2017) as a Keras 3 optimizer, with the conventions of SimCLR (Chen et al.,
2020)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfpretrain")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise adaptive rate scaling: SGD with momentum whose step is scaled per variable.

    For each variable `w` with gradient `g` (SimCLR's formulation):

        g = g + weight_decay * w                      (if w is decayed)
        trust = eta * ||w|| / ||g||                   (1 when either norm is 0, or w is excluded)
        v = momentum * v + learning_rate * trust * g
        w = w - v                                     (without nesterov)
        w = w - (momentum * v + learning_rate * trust * g)    (with nesterov)

    Biases and batch-norm scales/offsets (variables of rank < 2), and any variable whose path
    contains one of `exclude_names`, are excluded from both the weight decay and the adaptation,
    as in SimCLR.

    Args:
        learning_rate: float or `LearningRateSchedule` (SimCLR: 0.3 x batch / 256, warm-up +
            cosine).
        momentum: momentum coefficient in [0, 1).
        weight_decay: L2 penalty folded into the gradient before the trust ratio (SimCLR: 1e-6).
        eta: trust coefficient (SimCLR: 0.001).
        nesterov: use Nesterov momentum.
        exclude_names: extra substrings of variable paths to exclude from decay and adaptation.
        name: optimizer name.
        **kwargs: other `keras.optimizers.Optimizer` arguments (clipnorm, ema, ...); its own
            decoupled `weight_decay` is not used.

    Example:

    >>> optimizer = LARS(learning_rate=0.3, weight_decay=1e-6)
    >>> model.compile(optimizer=optimizer, ...)  # doctest: +SKIP
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 1e-3,
        nesterov: bool = False,
        exclude_names: Sequence[str] = (),
        name: str = "lars",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); got {momentum}.")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0; got {weight_decay}.")
        if not eta > 0:
            raise ValueError(f"`eta` must be > 0; got {eta}.")
        self.momentum = float(momentum)
        self.lars_weight_decay = float(weight_decay)
        self.eta = float(eta)
        self.nesterov = bool(nesterov)
        self.exclude_names = tuple(exclude_names)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def adapted(self, variable) -> bool:
        """Whether `variable` gets weight decay and the trust ratio (matrices/kernels not
        excluded)."""
        if len(variable.shape) < 2:
            return False
        path = getattr(variable, "path", variable.name)
        return not any(name in path for name in self.exclude_names)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        if self.adapted(variable):
            if self.lars_weight_decay:
                gradient = gradient + self.lars_weight_decay * variable
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            safe = ops.logical_and(w_norm > 0, g_norm > 0)
            trust = ops.where(safe, self.eta * w_norm / ops.where(safe, g_norm, 1.0), 1.0)
            learning_rate = learning_rate * trust
        step = learning_rate * gradient
        self.assign(velocity, self.momentum * velocity + step)
        if self.nesterov:
            self.assign_sub(variable, self.momentum * velocity + step)
        else:
            self.assign_sub(variable, velocity)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "weight_decay": self.lars_weight_decay,
                "eta": self.eta,
                "nesterov": self.nesterov,
                "exclude_names": list(self.exclude_names),
            }
        )
        return config
