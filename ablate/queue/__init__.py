"""The trial queue: a study's trials claimed, run and finished once each, on any storage.

- :mod:`~ablate.queue.policy`: what the queue knows of a study (retries, staleness, time
  limits, the objective), built once from it;
- :mod:`~ablate.queue.claims`: the queue itself: filling, claiming, heartbeats, finishing,
  retries, lost and stalled workers, duplicates;
- :mod:`~ablate.queue.experiment`: a study in storage is one experiment (its fingerprint);
- :mod:`~ablate.queue.outcomes`: counts, and each trial's final outcome;
- :mod:`~ablate.queue.spool`: results kept while the storage was away;
- :mod:`~ablate.queue.workers`: who holds a trial, and whether its process is alive.
"""
