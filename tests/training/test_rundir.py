"""The run-directory contract (tfpretrain/training/rundir.py), through the autoencoder recipe and
its command line: one writer, settings checked before anything is written, kills at every stage
of a run finished by a rerun with the files of an uninterrupted run."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfpretrain.recipes.autoencoder import AutoencoderRun, run
from tfpretrain.training.checkpoint import checkpoints, read_state
from tfpretrain.training.rundir import LOCK, RunDirectoryError, run_directory

REPO = Path(__file__).resolve().parents[2]
TINY = dict(
    epochs=1,
    limit_train=400,
    validation_size=100,
    batch_size=50,
    verbose=0,
    deterministic=True,
    strategy="default",
    seed=5,
)


def _files(out: Path) -> dict[str, tuple[int, int]]:
    """Every file under `out` with its size and modification time: what a refusal must keep."""
    return {
        str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, dict]:
    """A finished one-epoch run and its metrics (the tests below copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    return out, run(AutoencoderRun(out_dir=str(out), **TINY))


def _copy(source: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(source, tmp_path / "run"))


def test_finished_run_rerun_unchanged_says_so_and_touches_nothing(finished, tmp_path, capsys):
    out = _copy(finished[0], tmp_path)
    before = _files(out)
    assert run(AutoencoderRun(out_dir=str(out), **TINY)) == finished[1]
    assert "holds a finished run with these settings" in capsys.readouterr().out
    assert _files(out) == before and not (out / LOCK).exists()


def test_changed_setting_is_refused_before_anything_is_touched(finished, tmp_path):
    out = _copy(finished[0], tmp_path)
    before = _files(out)
    changed = dict(TINY, learning_rate=0.01, batch_size=25, epochs=2)
    with pytest.raises(RunDirectoryError) as err:
        run(AutoencoderRun(out_dir=str(out), **changed))
    message = str(err.value)
    assert "--learning-rate: 0.001 -> 0.01" in message and "--batch-size: 50 -> 25" in message
    assert "--epochs" not in message  # may grow on resume
    assert "--overwrite" in message and "new --out" in message
    assert _files(out) == before and not (out / LOCK).exists()


def test_fewer_epochs_than_done_are_refused(finished, tmp_path):
    out = _copy(finished[0], tmp_path)
    record = json.loads((out / "config.json").read_text())
    record["segments"][-1]["epochs"] = 3  # as if continued to 3 epochs
    (out / "config.json").write_text(json.dumps(record))
    before = _files(out)
    with pytest.raises(RunDirectoryError, match=r"--epochs: 3 -> 1\).*may only grow"):
        run(AutoencoderRun(out_dir=str(out), **TINY))
    assert _files(out) == before


def test_more_epochs_continue_as_a_new_segment_like_an_uninterrupted_run(finished, tmp_path):
    out = _copy(finished[0], tmp_path)
    continued = run(AutoencoderRun(out_dir=str(out), **dict(TINY, epochs=2)))
    record = json.loads((out / "config.json").read_text())
    assert [s["epochs"] for s in record["segments"]] == [1, 2]
    assert record["run"]["epochs"] == 2 and record["model"]["conv"] is False
    straight = run(AutoencoderRun(out_dir=str(tmp_path / "straight"), **dict(TINY, epochs=2)))
    assert continued["epochs"] == 2 and continued["test_loss"] == straight["test_loss"]
    assert continued["final_val_loss"] == straight["final_val_loss"]


def test_run_killed_after_its_last_checkpoint_finishes_when_rerun(finished, tmp_path):
    """Simulated: the outputs a finished run writes after its last checkpoint are deleted."""
    out = _copy(finished[0], tmp_path)
    for name in ("metrics.json", "model.keras", "loss.png", "reconstructions.png"):
        (out / name).unlink()
    metrics = run(AutoencoderRun(out_dir=str(out), **TINY))
    for key in ("test_loss", "final_loss", "final_val_loss", "epochs"):
        assert metrics[key] == finished[1][key], key
    assert metrics["seconds_per_epoch"] == finished[1]["seconds_per_epoch"]  # kept with the state
    assert (out / "model.keras").exists() and json.loads((out / "metrics.json").read_text())


def test_overwrite_starts_afresh(finished, tmp_path):
    out = _copy(finished[0], tmp_path)
    (out / "stray.txt").write_text("left by someone")
    metrics = run(AutoencoderRun(out_dir=str(out), overwrite=True, **dict(TINY, seed=6)))
    record = json.loads((out / "config.json").read_text())
    assert record["run"]["seed"] == 6 and len(record["segments"]) == 1
    assert not (out / "stray.txt").exists() and metrics["test_loss"] != finished[1]["test_loss"]


def test_unusable_out_is_a_clear_error_before_any_data_loads(tmp_path, monkeypatch):
    import tfpretrain.recipes.autoencoder as recipe

    monkeypatch.setattr(recipe, "load_run_images", lambda *_, **__: pytest.fail("data loaded"))
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(RunDirectoryError, match="is a file, not a directory"):
        run(AutoencoderRun(out_dir=str(a_file), **TINY))
    with pytest.raises(RunDirectoryError, match="cannot be created"):
        run(AutoencoderRun(out_dir=str(a_file / "run"), **TINY))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("")
    with pytest.raises(RunDirectoryError, match="holds files but no config.json"):
        run(AutoencoderRun(out_dir=str(tmp_path / "foreign"), **TINY))


@dataclasses.dataclass
class _Plain:  # settings not (yet) built on TrainingSettings
    out_dir: str
    width: int = 4
    verbose: int = 0


@run_directory
def _failing(cfg: _Plain) -> dict:
    raise FileNotFoundError("no such --init")


@run_directory
def _holding(cfg: _Plain) -> dict:
    holder = json.loads((Path(cfg.out_dir) / LOCK).read_text())
    return {"pid": holder["pid"]}


def test_a_run_that_fails_before_writing_leaves_nothing_behind(tmp_path):
    with pytest.raises(FileNotFoundError):
        _failing(_Plain(out_dir=str(tmp_path / "new")))
    assert not (tmp_path / "new").exists()


def test_plain_dataclass_settings_are_compared_too(tmp_path):
    out = tmp_path / "run"
    assert _holding(_Plain(out_dir=str(out))) == {"pid": os.getpid()}
    (out / "metrics.json").write_text("{}")
    assert _holding(_Plain(out_dir=str(out), verbose=2)) == {}  # finished; verbose is no setting
    with pytest.raises(RunDirectoryError, match="--width: 4 -> 8"):
        _holding(_Plain(out_dir=str(out), width=8))


def test_live_lock_refuses_and_stale_lock_is_taken_over(tmp_path, capsys):
    import socket

    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "earlier"}
        (out / LOCK).write_text(json.dumps(holder))
        with pytest.raises(RunDirectoryError, match=f"pid {sleeper.pid} on host"):
            _holding(_Plain(out_dir=str(out)))
        assert json.loads((out / LOCK).read_text()) == holder  # still theirs
    finally:
        sleeper.kill()
        sleeper.wait()
    assert _holding(_Plain(out_dir=str(out))) == {"pid": os.getpid()}
    assert (
        f"taking over the stale lock {out / LOCK} of pid {sleeper.pid}" in capsys.readouterr().out
    )
    assert not (out / LOCK).exists()


def test_non_chief_worker_takes_no_lock_and_writes_nothing(tmp_path, monkeypatch):
    cluster = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )

    @run_directory
    def worker(cfg: _Plain) -> dict:
        return {"lock": (Path(cfg.out_dir) / LOCK).exists()}

    assert worker(_Plain(out_dir=str(tmp_path / "run"))) == {"lock": False}
    assert not (tmp_path / "run").exists()


# The command line, killed with SIGKILL at each stage of a run, then run again.
EPOCHS, STEPS_PER_EPOCH = 2, 50  # 800 training images, batch 16


def _cli(out: Path, seed: int = 3) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tfpretrain.cli.main",
        "autoencoder",
        "--out",
        str(out),
        "--epochs",
        str(EPOCHS),
        "--limit-train",
        "900",
        "--validation-size",
        "100",
        "--batch-size",
        "16",
        "--steps-per-execution",
        "1",
        "--checkpoint-every",
        "5",
        "--deterministic",
        "--strategy",
        "default",
        "--seed",
        str(seed),
    ]


def _env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))


def _steps(out: Path) -> list[int]:
    return [int(p.stem.split("-")[1]) for p in checkpoints(out / "checkpoints" / "state")]


KILL_POINTS = {
    "mid_epoch": lambda out: any(15 <= s < STEPS_PER_EPOCH for s in _steps(out)),
    "after_last_checkpoint": lambda out: EPOCHS * STEPS_PER_EPOCH in _steps(out),
    "during_export": lambda out: any((out / "saved_model").glob(".1.*")),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(_cli(out), cwd=REPO, env=_env(), check=True, capture_output=True, timeout=300)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_sigkill_at_each_stage_then_rerun_finishes_like_an_uninterrupted_run(
    kill_point, uninterrupted, tmp_path
):
    out = tmp_path / "run"
    process = subprocess.Popen(
        _cli(out), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline, killed = time.monotonic() + 240, False
    while time.monotonic() < deadline and process.poll() is None:
        if KILL_POINTS[kill_point](out):
            process.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    process.wait()
    assert killed, f"the run ended before reaching {kill_point}"
    assert not (out / "metrics.json").exists()
    assert (out / LOCK).exists()  # left by the killed process: stale now

    rerun = subprocess.run(
        _cli(out), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "taking over the stale lock" in rerun.stdout
    final = f"step-{EPOCHS * STEPS_PER_EPOCH:09d}.npz"
    _, ref_state = read_state(uninterrupted / "checkpoints" / "state" / final)
    _, run_state = read_state(out / "checkpoints" / "state" / final)
    for key in ref_state:
        np.testing.assert_array_equal(run_state[key], ref_state[key], err_msg=key)
    ref, got = (json.loads((d / "metrics.json").read_text()) for d in (uninterrupted, out))
    for key in ("test_loss", "test_mse", "final_loss", "final_val_loss", "epochs"):
        assert got[key] == ref[key], key
    assert (out / "saved_model" / "1" / "saved_model.pb").exists() and not (out / LOCK).exists()


@pytest.mark.slow
def test_two_runs_started_together_on_one_out_one_is_refused(tmp_path, data_dir):
    out = tmp_path / "run"
    processes = [
        subprocess.Popen(
            _cli(out, seed),
            cwd=REPO,
            env=_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err[-1000:] for _, _, err in results]
    winner = [seed for seed, (code, _, _) in zip((1, 2), results, strict=True) if code == 0][0]
    loser_err = [err for code, _, err in results if code == 2][0]
    assert "is in use" in loser_err and "pid" in loser_err
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == winner
    assert json.loads((out / "metrics.json").read_text())["epochs"] == EPOCHS


# Commands whose settings are plain dataclasses get the same contract (clm here).
@pytest.fixture(scope="module")
def clm_run(tmp_path_factory):
    from tfpretrain.recipes.clm import CLMRun
    from tfpretrain.recipes.clm import run as run_clm

    root = tmp_path_factory.mktemp("clm")
    corpus = root / "corpus.txt"
    data = Path(os.environ["TFPRETRAIN_DATA_DIR"]) / "tinyshakespeare" / "input.txt"
    corpus.write_text(data.read_text()[:6000])

    def settings(**changes):
        return CLMRun(
            **{
                **dict(
                    corpus=str(corpus),
                    out_dir=str(root / "run"),
                    seq_len=16,
                    batch_size=4,
                    steps=4,
                    eval_interval=2,
                    warmup_steps=1,
                    num_samples=0,
                    export=False,
                    verbose=0,
                ),
                **changes,
            }
        )

    return root / "run", settings, run_clm, run_clm(settings())


def test_clm_refused_rerun_does_not_rewrite_config(clm_run):
    out, settings, run_clm, _ = clm_run
    before = _files(out)
    with pytest.raises(RunDirectoryError, match="--preset: 'nano' -> 'shakespeare'"):
        run_clm(settings(preset="shakespeare"))
    with pytest.raises(RunDirectoryError, match="--learning-rate: 0.001 -> 0.01"):
        run_clm(settings(learning_rate=0.01))
    assert _files(out) == before


def test_clm_finished_run_rerun_says_so(clm_run, capsys):
    out, settings, run_clm, metrics = clm_run
    before = _files(out)
    assert run_clm(settings()) == json.loads((out / "metrics.json").read_text())
    assert "holds a finished run" in capsys.readouterr().out and _files(out) == before


def test_clm_killed_after_its_last_checkpoint_reports_every_evaluation(clm_run, tmp_path):
    out, settings, run_clm, metrics = clm_run
    copy = _copy(out, tmp_path)
    (copy / "metrics.json").unlink()
    rerun = run_clm(settings(out_dir=str(copy)))
    assert [e["step"] for e in rerun["evaluations"]] == [2, 4]
    assert (
        rerun["evaluations"] == metrics["evaluations"] and rerun["val_loss"] == metrics["val_loss"]
    )
