"""Seed streams: `replicates: {init: 3, data_order: 2}` read, crossed, keyed and seeded so that
each source of randomness moves only what it drives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ablate.errors import AblateError, StudyFileError
from ablate.study import parse_study
from ablate.study.grid import expand_trials, trial_key
from ablate.study.streams import Streams, replicate_numbers, stream_seed
from ablate.training import order
from tests.helpers import function_study_text, tiny_study_text


def _tiny(tmp_path: Path, replicates: str) -> str:
    return tiny_study_text(tmp_path / "results").replace(
        "replicates: 1", f"replicates: {replicates}"
    )


def test_streams_are_read_crossed_and_written_back(tmp_path: Path) -> None:
    study = parse_study(_tiny(tmp_path, "{init: 3, data_order: 2}"))
    assert study.replicates == 6 and study.streams == Streams((("init", 3), ("data_order", 2)))
    trials = expand_trials(study)
    assert len(trials) == 4 * 6 and len({t.key for t in trials}) == 24
    first = [t for t in trials if t.cell.index == 0]
    assert [t.stream_indices() for t in first][:3] == [
        {"init": 0, "data_order": 0}, {"init": 0, "data_order": 1}, {"init": 1, "data_order": 0},
    ]  # fmt: skip
    assert parse_study(study.to_yaml()) == study  # the resolved study is a valid study file
    assert study.experiment()["streams"] == ["init", "data_order"]
    plain = parse_study(_tiny(tmp_path, "6"))
    assert "streams" not in plain.experiment() and plain.fingerprint() != study.fingerprint()


def test_keys_and_seeds_are_stable_when_a_stream_grows(tmp_path: Path) -> None:
    small = expand_trials(parse_study(_tiny(tmp_path, "{init: 2, data_order: 2}")))
    grown = expand_trials(parse_study(_tiny(tmp_path, "{init: 2, data_order: 3}")))
    seeds = {t.key: (t.seed, t.streams) for t in grown}
    assert all(seeds[t.key] == (t.seed, t.streams) for t in small)  # nothing that ran changes
    # a stream index means the same seed in every cell, and the streams draw apart
    for t in grown:
        assert t.seed_of("init") == stream_seed(768, "init", t.stream_indices()["init"])
    assert stream_seed(768, "init", 0) != stream_seed(768, "data_order", 0)
    # a plain count keeps its keys and seeds: replicate r, seed + r
    plain = expand_trials(parse_study(_tiny(tmp_path, "2")))
    assert [(t.key, t.seed) for t in plain[:5]] == [
        (trial_key(t.cell.as_dict(), t.replicate), 768 + t.replicate) for t in plain[:5]
    ]


def test_replicate_numbers_follow_the_crossing_and_never_collide() -> None:
    streams = Streams((("init", 2), ("data_order", 3)))
    found = [{"init": i, "data_order": j} for i in range(2) for j in range(3)]
    assert replicate_numbers(found, streams) == [0, 1, 2, 3, 4, 5]
    kept = [*found, {"init": 2, "data_order": 0}]  # a trial of a count the file no longer asks
    numbers = replicate_numbers(kept, streams)
    assert len(set(numbers)) == len(numbers) == 7


@pytest.mark.parametrize(("replicates", "said"), [
    ("{weights: 3}", "ablate's Keras loop seeds these sources apart: init"),
    ("{init: 0}", "a number of seeds from 1 to 1000"),
    ("{init: true}", "a number of seeds from 1 to 1000"),
    ("{batch_norm: 2}", "'batch_norm' is a factor"),
    ("{}", "a count, or seed streams and their counts"),
])  # fmt: skip
def test_bad_streams_are_refused_naming_the_key(tmp_path: Path, replicates: str, said: str) -> None:
    with pytest.raises(StudyFileError, match="replicates") as caught:
        parse_study(_tiny(tmp_path, replicates))
    assert said in str(caught.value)


def test_a_function_or_program_names_its_own_streams_and_must_take_their_seeds(
    tmp_path: Path,
) -> None:
    from ablate.training.trainers import trainer_for

    text = function_study_text(tmp_path / "results", "streams").replace(
        "replicates: 1", "replicates: {init: 3, data_order: 2}"
    )
    study = parse_study(text)
    trainer_for(study).check()  # tests.user_trainers:streams takes seed_init, seed_data_order
    lacking = parse_study(text.replace(":streams", ":seeds"))
    with pytest.raises(AblateError, match="does not take the keyword argument 'seed_init' "
                       r"\(the seed of the stream init, named in replicates\)"):  # fmt: skip
        trainer_for(lacking).check()


def test_each_stream_moves_only_what_it_drives(tmp_path: Path) -> None:
    """Two trials of one cell that differ in one stream's index: the init stream changes the
    initial weights only, the data-order stream the batch order only, the noise stream the
    dropout and sampling generators only."""
    from ablate.data import load_dataset
    from ablate.training.trial import build_model

    text = _tiny(tmp_path, "{init: 2, data_order: 2, noise: 2}").replace(
        "depth: 1}", "depth: 1, dropout: true}"
    )
    study = parse_study(text)
    dataset = load_dataset(study.data, study.seed)
    cell0 = {tuple(t.stream_indices().values()): t for t in expand_trials(study)
             if t.cell.index == 0}  # fmt: skip
    base = _drawn(study, cell0[(0, 0, 0)], dataset, build_model)
    moved = {name: _drawn(study, cell0[at], dataset, build_model)
             for name, at in (("init", (1, 0, 0)), ("data_order", (0, 1, 0)),
                              ("noise", (0, 0, 1)))}  # fmt: skip
    for stream, drawn in moved.items():
        changed = {what for what in ("weights", "order", "noise")
                   if not np.array_equal(drawn[what], base[what])}  # fmt: skip
        assert changed == {"init": {"weights"}, "data_order": {"order"},
                           "noise": {"noise"}}[stream], stream  # fmt: skip


def _drawn(study, spec, dataset, build_model) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    model = build_model(study, spec, dataset)
    weights = np.concatenate([np.ravel(np.asarray(w)) for w in model.trainable_weights])
    noise = np.concatenate([np.ravel(np.asarray(v)) for v in model.variables
                            if v.path.endswith("seed_generator_state")])  # fmt: skip
    perm = order.permutation(spec.seed_of("data_order"), 0, len(dataset.x_train))
    return {"weights": weights, "order": perm, "noise": noise}


@pytest.mark.slow
def test_a_streams_study_runs_resumes_grows_and_splits_its_variance(tmp_path: Path) -> None:
    """tests.user_trainers:streams draws its score from the two streams apart (init SD 0.3,
    data order SD 0.1, nothing else random): the analysis finds init ~90% of the variance;
    a rerun trains nothing; a grown stream trains only its new trials."""
    import os

    import pandas as pd

    from ablate.execution.runner import run_study
    from ablate.results import load_results
    from ablate.stats.overall import analyze
    from tests.helpers import ROOT

    text = function_study_text(tmp_path / "results", "streams").replace(
        "replicates: 1", "replicates: {init: 4, data_order: 3}"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", env["PYTHONPATH"])
        first = run_study(parse_study(text), workers=2, live=False)
        again = run_study(parse_study(text), workers=2, live=False)
        grown = run_study(parse_study(text.replace("data_order: 3", "data_order: 4")),
                          workers=2, live=False)  # fmt: skip
    assert (first.complete, first.total, again.trained) == (48, 48, 0)
    assert (grown.total, grown.trained) == (64, 16)  # 4 cells x 4 inits x 1 new order
    trials = pd.read_parquet(first.directory / "trials.parquet")
    assert {"stream_init", "stream_data_order"} <= set(trials.columns)
    assert trials.groupby("cell")["replicate"].nunique().eq(16).all()  # renumbered, distinct
    a = analyze(load_results(first.directory))
    assert a.components is not None
    shares = {c.source: c.share for c in a.components.scopes[0].components}
    assert shares["init"] > 0.75 and shares["data_order"] < 0.25
    assert shares["interaction and the rest"] < 0.01  # nothing else is random
    assert any(f.text.startswith("seeds: of the seed-to-seed variance") for f in a.findings)
