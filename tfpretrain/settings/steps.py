"""Rules shared by the commands that count training in steps (`clm`, `seq2seq`)."""

from __future__ import annotations

from tfpretrain.settings import deprecated

WARMUP_STEPS_HELP = "deprecated: linear warm-up steps (use --warmup-fraction, a share of --steps)"


def warmup_steps_to_fraction(run) -> None:
    """Turns the deprecated `warmup_steps` of `run` into `warmup_fraction` of `run.steps`, so that
    the run records one warm-up setting; says that the old flag is deprecated."""
    if run.warmup_steps is None:
        return
    deprecated(
        "--warmup-steps", "--warmup-fraction", f"here {run.warmup_steps} / {run.steps} steps"
    )
    if run.warmup_steps >= run.steps:
        raise ValueError(
            f"--warmup-steps must be below --steps ({run.steps}); got {run.warmup_steps}."
        )
    run.warmup_fraction = run.warmup_steps / run.steps
    run.warmup_steps = None


def evaluation_period(steps: int, eval_interval: int) -> int:
    """Steps between evaluations (one per Keras epoch): `eval_interval`, or all the steps when
    they are fewer. Refuses an interval that does not divide the steps: the run would otherwise
    train a different number of steps than asked."""
    period = min(eval_interval, steps)
    if steps % period:
        below, above = steps // period * period, -(-steps // period) * period
        raise ValueError(
            f"--steps {steps} is not a multiple of --eval-interval {eval_interval}; evaluations "
            f"split the run into equal parts. Use --steps {below} or {above}, or an "
            f"--eval-interval that divides {steps}."
        )
    return period
