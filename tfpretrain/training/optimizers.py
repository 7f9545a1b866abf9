"""Optimizers with the conventions of the pre-training literature."""

from __future__ import annotations

import keras


def adamw(
    model: keras.Model,
    learning_rate,
    weight_decay: float = 0.01,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-6,
    clipnorm: float | None = None,
) -> keras.optimizers.AdamW:
    """AdamW that decays weight matrices only: biases (of any rank), norm scales and other vectors
    are exempt.

    Decaying weight matrices and embeddings only is what BERT, GPT-2 and nanoGPT do. The model
    must be built.

    Args:
        model: the built model whose variables will be trained.
        learning_rate: float or `LearningRateSchedule`.
        weight_decay: decoupled weight decay of the matrices.
        beta_1, beta_2, epsilon: Adam's moments and epsilon.
        clipnorm: optional clip of the global gradient norm (all variables together, as GPT does).
    """
    if not model.built:
        raise ValueError(
            "Build the model (call it once or give it an Input) before creating its optimizer."
        )
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=clipnorm,
    )
    # By role, not rank alone: attention biases are `[heads, head_dim]` matrices.
    exempt = [v for v in model.trainable_variables if len(v.shape) < 2 or v.name.endswith("bias")]
    optimizer.exclude_from_weight_decay(var_list=exempt)
    return optimizer
