"""What both storage implementations read of Optuna's own objects (private to them).

A ``FrozenTrial`` carries its storage id only in a private attribute; this module is the one
place that reads it, for the journal and SQL stores alike.
"""

from __future__ import annotations

from typing import Any

from ablate.storage.base import NewTrial, StoredTrial


def stored(trial: Any) -> StoredTrial:
    """An Optuna ``FrozenTrial`` as the seam's :class:`StoredTrial`."""
    return StoredTrial(
        trial_id=trial._trial_id,
        number=trial.number,
        state=trial.state.name,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        user_attrs=trial.user_attrs,
    )


def distributions(new: NewTrial) -> dict[str, Any]:
    """Each factor level's Optuna distribution: categorical over its factor's levels."""
    from optuna.distributions import CategoricalDistribution

    return {name: CategoricalDistribution(list(new.choices[name])) for name in new.params}


def template(new: NewTrial) -> Any:
    """A WAITING ``FrozenTrial`` to create, with its parameters and user attributes."""
    from optuna.trial import TrialState, create_trial

    return create_trial(
        state=TrialState.WAITING,
        params=dict(new.params),
        distributions=distributions(new),
        user_attrs=new.attributes(),
    )
