"""XLA-compiled training steps that also work under `tf.distribute` strategies.

Why Keras 3 fails: its `model.compile(jit_compile=True)` wraps the *cross-replica* function
`strategy.run(train_step)` in one `tf.function(jit_compile=True)`. An XLA cluster runs on one
device, so under `MirroredStrategy` the cluster placed on device 0 tries to read the variable
copies of replica 1 ("Trying to access resource ... located in device ..."). tf-keras (Keras 2)
compiled the *per-replica* step instead. The optimizer update cannot go inside that per-replica
XLA function either: on CPUs (and for any non-GPU device) `MirroredStrategy` aggregates gradients
with `merge_call`, which is not allowed inside a nested `tf.function`.

The fix, in this one place for every model family: `use_replica_xla(model)` turns the outer
function's XLA off and XLA-compiles, per replica, the model's own `train_step` (forward pass,
loss, gradients and metric updates; any custom `train_step` works) with the optimizer's
`apply`/`apply_gradients` deferred: inside the compiled function they only record the gradients,
which are then all-reduced and applied by the optimizer outside XLA, in the replica context as
usual. `test_step` and `predict_step` are compiled whole, per replica. `tfpretrain.training.fit`
calls it, so every command gets it.
"""

from __future__ import annotations

import contextlib
import warnings

import keras
import tensorflow as tf

_INSTALLED = "_tfpretrain_replica_xla"


def _is_multi_device(strategy: tf.distribute.Strategy) -> bool:
    """Strategies where Keras' own `jit_compile=True` breaks: all but the default and TPU ones."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False  # TPUStrategy compiles the whole replicated step itself.
    return strategy.num_replicas_in_sync > 1


@contextlib.contextmanager
def _deferred_optimizer(optimizer, recorded: list):
    """While tracing, `optimizer.apply(_gradients)` records `(grads, variables)` instead of
    updating."""

    def apply(grads, trainable_variables=None):
        recorded.append(
            (list(grads), None if trainable_variables is None else list(trainable_variables))
        )

    def apply_gradients(grads_and_vars):
        grads, variables = zip(*grads_and_vars, strict=True)
        apply(grads, variables)
        return optimizer.iterations

    saved = optimizer.__dict__.get("apply"), optimizer.__dict__.get("apply_gradients")
    optimizer.apply, optimizer.apply_gradients = apply, apply_gradients
    try:
        yield
    finally:
        for name, value in zip(("apply", "apply_gradients"), saved, strict=True):
            if value is None:
                optimizer.__dict__.pop(name, None)
            else:
                setattr(optimizer, name, value)


class ReplicaXlaSteps:
    """The per-replica XLA-compiled steps installed on a model by `use_replica_xla`.

    `compiled("train")` lists the `tf.function(jit_compile=True)` objects (one per replica device)
    computing one replica's metrics and gradients; `compiled("test")` and `compiled("predict")`
    wrap the model's `test_step` and `predict_step`.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        cls = type(model)
        # The class's methods, so that a custom `train_step` of a subclass is what gets compiled.
        self._train_step = cls.train_step.__get__(model)
        self._test_step = cls.test_step.__get__(model)
        self._predict_step = cls.predict_step.__get__(model)
        self._grads_structure: list = []
        # One compiled function per replica device: a function traced in one replica's graph
        # context must not be reused by another (its captures belong to the first).
        self._compiled: dict[str, dict[str, tf.types.experimental.GenericFunction]] = {}

    def _functions(self) -> dict:
        context = tf.distribute.get_replica_context()
        try:
            key = str(context.devices) if context is not None else ""
        except (IndexError, AttributeError, NotImplementedError):  # e.g. multi-worker contexts
            key = str(tf.get_static_value(context.replica_id_in_sync_group))
        if key not in self._compiled:
            self._compiled[key] = {
                "train": tf.function(self._train_compute, jit_compile=True, reduce_retracing=True),
                "test": tf.function(self._test_step, jit_compile=True, reduce_retracing=True),
                "predict": tf.function(self._predict_step, jit_compile=True, reduce_retracing=True),
            }
        return self._compiled[key]

    def compiled(self, kind: str) -> list:
        """The compiled per-replica functions of `kind` ("train", "test" or "predict")."""
        return [functions[kind] for functions in self._compiled.values()]

    def _train_compute(self, data):
        recorded: list = []
        optimizer = self.model.optimizer
        with _deferred_optimizer(optimizer, recorded):
            logs = self._train_step(data)
        if len(recorded) != 1:
            raise RuntimeError(
                "use_replica_xla needs a train_step that calls optimizer.apply or apply_gradients "
                f"exactly once; {type(self.model).__name__}.train_step called it "
                f"{len(recorded)} times."
            )
        grads, variables = recorded[0]
        # Variables cannot leave an XLA function; keep them here and return gradients only.
        self._grads_structure = variables
        return logs, [
            tf.zeros_like(v) if g is None else g
            for g, v in zip(grads, variables or grads, strict=True)
        ]

    def train_step(self, data):
        logs, grads = self._functions()["train"](data)
        variables = self._grads_structure or self.model.trainable_variables
        self.model.optimizer.apply(grads, variables)
        return logs

    def test_step(self, data):
        return self._functions()["test"](data)

    def predict_step(self, data):
        return self._functions()["predict"](data)


def use_replica_xla(model: keras.Model, force: bool = False) -> bool:
    """Makes a compiled model train with per-replica XLA steps when its strategy has several
    devices.

    Does nothing (returns False) when the model was compiled without `jit_compile=True` or trains
    under the default strategy or a TPU strategy (where Keras' own XLA compilation works), unless
    `force`; call it after `model.compile` and before `model.fit` (`tfpretrain.training.fit` does).

    Args:
        model: a compiled Keras model.
        force: install the per-replica steps even under the default strategy (for tests).

    Returns:
        Whether the per-replica XLA steps are in use; they are then at `model.replica_xla_steps`.
    """
    steps = getattr(model, _INSTALLED, None)
    if steps is not None:
        return True
    if not getattr(model, "jit_compile", False):
        return False
    if not force and not _is_multi_device(model.distribute_strategy):
        return False
    steps = ReplicaXlaSteps(model)
    # Instance attributes shadow the class methods Keras' `make_*_function` call.
    model.train_step = steps.train_step
    model.test_step = steps.test_step
    model.predict_step = steps.predict_step
    model.jit_compile = False  # no XLA around the cross-replica function: that is what fails
    model.train_function = model.test_function = model.predict_function = None
    setattr(model, _INSTALLED, steps)
    return True


def adapt_to_strategy(model: keras.Model) -> keras.Model:
    """Makes a compiled model train correctly, XLA-compiled where asked, under its strategy.

    Under a strategy with several replicas it (0) lets Keras build the model's metrics from one
    replica's batch (see `_local_symbolic_build`), (1) sets `steps_per_execution` to 1, because
    Keras 3's multi-step `tf.while_loop` fails under `MirroredStrategy` even without XLA ("You
    must feed a value for placeholder tensor .../while/cond/Placeholder"), and (2) installs the
    per-replica XLA steps of `use_replica_xla` when the model was compiled with
    `jit_compile=True`. Under the default strategy the model is left as it is. Returns the model.
    """
    strategy = model.distribute_strategy
    optimizer = getattr(model, "optimizer", None)
    if _is_multi_device(strategy) and getattr(optimizer, "gradient_accumulation_steps", None):
        # Keras applies accumulated gradients inside a `cond`, and the cross-replica gradient
        # sum (`merge_call`) cannot run inside control flow.
        raise ValueError(
            f"gradient_accumulation_steps is not supported under {type(strategy).__name__} in this "
            "Keras version; with several replicas raise the global batch size instead (it is "
            "split across the replicas), or train on one device."
        )
    if _is_multi_device(strategy) and getattr(model, "steps_per_execution", 1) != 1:
        warnings.warn(
            f"steps_per_execution={model.steps_per_execution} is not supported by Keras under "
            f"{type(strategy).__name__}; using 1.",
            stacklevel=2,
        )
        model.steps_per_execution = 1
        model.train_function = model.test_function = model.predict_function = None
    if _is_multi_device(strategy) and "_maybe_symbolic_build" not in model.__dict__:
        model._maybe_symbolic_build = _local_symbolic_build(model)
    use_replica_xla(model)
    if (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and "_tfp_mw_logs" not in model.__dict__
    ):
        model._tfp_mw_logs = True
        model.train_step = _logs_with_replica_axis(model.train_step)
        model.test_step = _logs_with_replica_axis(model.test_step)
    return model


def _logs_with_replica_axis(step):
    """Keras reduces each replica's logs across workers with `strategy.reduce("MEAN", v, axis=0)`,
    which fails on the scalar logs every step returns ("Invalid reduction dimension 0 for input
    with 0 dimensions"). Giving each scalar a length-1 axis makes that the mean over replicas."""

    def wrapped(data):
        return tf.nest.map_structure(
            lambda v: tf.reshape(v, [1]) if isinstance(v, tf.Tensor) and v.shape.rank == 0 else v,
            step(data),
        )

    return wrapped


def _local_symbolic_build(model: keras.Model):
    """Keras builds a model's metrics and optimizer from the first batch, reduced across replicas
    with `strategy.reduce("MEAN", (x, y))`, which fails under `MultiWorkerMirroredStrategy` (it
    cannot reduce a tuple). Only the shapes matter, so this builds from the first local replica's
    share instead, with no cross-worker communication."""
    strategy = model.distribute_strategy

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    return maybe_symbolic_build


def replica_xla_steps(model: keras.Model) -> ReplicaXlaSteps | None:
    """The `ReplicaXlaSteps` installed on `model`, or None."""
    return getattr(model, _INSTALLED, None)


def is_xla_compiled(fn) -> bool:
    """Whether every traced concrete function of the `tf.function` `fn` carries XLA's
    must-compile flag.

    The flag (`_XlaMustCompile`) on the function definition is what makes the runtime hand the whole
    function to XLA; a function traced without it runs op by op.
    """
    concrete = fn._list_all_concrete_functions()  # noqa: SLF001 - no public way to list traces
    return bool(concrete) and all(c.function_def.attr["_XlaMustCompile"].b for c in concrete)
