"""What a failed trial means: retried or not, when a study stops, and how progress counts it."""

from __future__ import annotations

import io

import pytest

from ablate.execution.progress import Event, Progress
from ablate.execution.watch import FailureWatch, signature, stopped_tally, without_ablate_frames
from ablate.training.failures import describe_exception, is_transient


class ResourceExhaustedError(RuntimeError):
    """Named as TensorFlow names its out-of-memory error."""


@pytest.mark.parametrize(
    ("err", "phase", "transient"),
    [
        (KeyError("width"), "train", False),
        (ValueError("Dimensions must be equal, but are 4 and 784"), "train", False),
        (ImportError("no module named mypkg"), "build", False),
        (TypeError("build() got an unexpected keyword argument"), "build", False),
        (RuntimeError("the model exploded"), "build", False),
        (RuntimeError("the model exploded"), "train", True),  # frameworks' device errors
        (MemoryError(), "build", True),
        (OSError("No space left on device"), "train", True),
        (ResourceExhaustedError("OOM when allocating tensor"), "build", True),
        (ValueError("CUDA error: an illegal memory access"), "train", True),
    ],
)
def test_failures_that_come_back_every_time_are_not_worth_a_retry(
    err: BaseException, phase: str, transient: bool
) -> None:
    assert is_transient(err, phase) is transient  # type: ignore[arg-type]


def test_keras_wrapped_errors_read_as_the_layer_and_the_error() -> None:
    wrapped = (
        "Exception encountered when calling Lookup.call().\n\n\x1b[1mdepth\x1b[0m\n\n"
        "Arguments received by Lookup.call():\n  • x=tf.Tensor(shape=(None, 4))"
    )
    assert describe_exception(KeyError(wrapped)) == "KeyError in Lookup.call(): depth"
    assert describe_exception(ValueError("bad\x1b[1m size\x1b[0m")) == "ValueError: bad size"
    assert describe_exception(KeyError("width")) == "KeyError: width"


def test_the_same_failure_in_two_cells_has_one_signature() -> None:
    a = "ValueError: Dimensions must be equal, but are 4 and 784 for {node 0x7f3a}"
    b = "ValueError: Dimensions must be equal, but are 16 and 784 for {node 0x7f9c}\nmore"
    assert signature(a) == signature(b)
    assert signature("KeyError: width") != signature("KeyError: depth")
    # a command's failure names its trial's own log, wherever the results folder is
    log = "the command exited with code 3; its output ends: E (all of it in {}/trial.log)"
    assert signature(log.format("/home/me/results/s/trials/84e2c59f")) == signature(
        log.format("/home/me/results/s/trials/fe61f9d8")
    )
    assert signature("no such file: a.npz") != signature("no such file: b.npz")


def _watch(*outcomes: tuple[str, str, str | None], total: int = 8) -> str | None:
    watch, tripped = FailureWatch(total), None
    for key, status, error in outcomes:
        tripped = tripped or watch.observe(key, f"cell {key}", status, error)
    return tripped


def test_the_watch_trips_when_the_first_three_trials_fail_alike() -> None:
    same = [(k, "failed", "KeyError: width") for k in "abc"]
    message = _watch(*same)
    assert message is not None and "first 3 trials all failed" in message
    assert "KeyError: width" in message and message.endswith("so the run stopped.")
    assert _watch(*same[:2]) is None  # not yet
    assert _watch(("a", "complete", None), *same) is None  # the study can succeed
    assert _watch(same[0], ("b", "failed", "ValueError: x"), same[2]) is None  # not alike
    assert _watch(same[0], same[0], same[0]) is None  # a retried trial is one trial
    assert _watch(*same[:2], total=2) is not None  # a study of two: both
    assert _watch(same[0], total=1) is None  # one trial: nothing to save


def test_ablates_frames_leave_the_users_traceback() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/x/ablate/engine/training.py", line 5, in train_trial\n'
        "    return _train()\n"
        '  File "/home/me/mymodel.py", line 9, in build\n'
        '    sizes["w4"]\n'
        "KeyError: 'w4'"
    )
    assert without_ablate_frames(text) == (
        '  File "/home/me/mymodel.py", line 9, in build\n    sizes["w4"]\nKeyError: \'w4\''
    )


def test_progress_counts_a_retried_trial_once_and_never_past_the_total() -> None:
    progress = Progress("s", total=2, done_before=0, stream=io.StringIO(), live=False)
    for final in (False, True):  # an attempt retried, then the final one
        progress.handle(Event("finished", "w1", "a", status="failed", key="k1", final=final))
    progress.handle(Event("finished", "w1", "b", status="complete", key="k2"))
    progress.handle(Event("finished", "w2", "b", status="complete", key="k2"))  # twice: once
    assert (progress.done, progress.failed, progress.complete) == (2, 1, 1)
    assert "2/2 done" in progress.status_line() and "1 requeued after failing" in (
        progress.status_line()
    )


def test_the_stop_says_what_it_left_as_counted_after_it() -> None:
    """Trials that fail in a blink may all have failed before the workers heard of the stop:
    the message counts what storage holds, never what the stop hoped to save."""
    assert "5 trials are back in the queue, untrained" in stopped_tally(3, 5)
    assert " 1 trial failed in all; 1 trial is back" in stopped_tally(1, 1)
    assert "8 trials failed in all; no trial was left to hand back" in stopped_tally(8, 0)
