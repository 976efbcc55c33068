"""Executing a study: the checks before a run, worker processes and their supervision.

- :mod:`~ablate.execution.preflight` and :mod:`~ablate.execution.dryrun`: the checks before
  a run, and what ``--dry-run`` says;
- :mod:`~ablate.execution.planning`: how many workers, on which GPU, with how many threads;
- :mod:`~ablate.execution.runner`: ``run_study``, what ``ablate run`` does;
- :mod:`~ablate.execution.pool`: the coordinator's side (start, watch, replace, stop);
- :mod:`~ablate.execution.worker`: the worker's side (claim, train, record, heartbeat);
- :mod:`~ablate.execution.signals`: stopping a worker cleanly, never outliving its parent;
- :mod:`~ablate.execution.watch`: stopping a study whose first trials fail alike;
- :mod:`~ablate.execution.progress`: what a run shows.
"""
