"""Storage: where a study's trials are kept (an Optuna journal file or a database), the queue
built on it, and what it reads back.

- :mod:`~ablate.storage.base`: the seam, :class:`~ablate.storage.base.TrialStore`;
- :mod:`~ablate.storage.journal` and :mod:`~ablate.storage.journal_file`: the journal store;
- :mod:`~ablate.storage.sql` (with ``sql_schema``, ``sql_writes``, ``sql_claims``): the
  database store;
- :mod:`~ablate.storage.opening`: opening a storage URL, the one place a backend is chosen;
- :mod:`~ablate.storage.experiment`: a study in storage is one experiment;
- :mod:`~ablate.storage.queue`: claims, retries, lost workers, duplicates (the policy);
- :mod:`~ablate.storage.outcomes`: counts and each trial's final outcome;
- :mod:`~ablate.storage.spool`, :mod:`~ablate.storage.retry`, :mod:`~ablate.storage.workers`:
  results kept while the database is away, riding out its restarts, who holds a trial.
"""
