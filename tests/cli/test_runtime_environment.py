import os
import subprocess
import sys

from tfpretrain.cli.main import XLA_CPU_FLAGS, runtime_environment

SCHEDULER = "--xla_cpu_enable_concurrency_optimized_scheduler"


def test_defaults_on_an_empty_environment():
    chosen = runtime_environment({})
    assert chosen["TF_ENABLE_ONEDNN_OPTS"] == "1" and chosen["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert chosen["XLA_FLAGS"].split() == list(XLA_CPU_FLAGS)


def test_the_users_settings_win_and_their_other_xla_flags_stay():
    chosen = runtime_environment(
        {"TF_ENABLE_ONEDNN_OPTS": "0", "XLA_FLAGS": f"--xla_dump_to=/d {SCHEDULER}=false"}
    )
    assert chosen["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert chosen["XLA_FLAGS"].split() == ["--xla_dump_to=/d", f"{SCHEDULER}=false"]
    kept = runtime_environment({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"})["XLA_FLAGS"]
    assert kept.split() == ["--xla_cpu_multi_thread_eigen=false", *XLA_CPU_FLAGS]


def test_xla_accepts_the_flags():
    # XLA aborts the process on a flag it does not know: compile a function under the CLI's
    # flags in a fresh process, and check that the run records them.
    code = (
        "from tfpretrain.cli.main import _runtime_defaults\n"
        "_runtime_defaults()\n"
        "import tensorflow as tf\n"
        "from tfpretrain.distribute import machine\n"
        "f = tf.function(lambda x: tf.reduce_sum(x * x), jit_compile=True)\n"
        "print(float(f(tf.ones([3]))), machine()['XLA_FLAGS'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={
            k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS")
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    value, flags = result.stdout.split(maxsplit=1)
    assert float(value) == 3.0 and flags.split() == list(XLA_CPU_FLAGS)
