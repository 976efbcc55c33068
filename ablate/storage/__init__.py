"""Storage: where a study's trials are kept -- an Optuna journal file or a database -- and
nothing else. It imports nothing of studies, training or designs: what a trial *means* is the
queue's business (:mod:`ablate.queue`), which keeps its own facts in each trial's payload.

- :mod:`~ablate.storage.base`: the seam, :class:`~ablate.storage.base.TrialStore`, and its
  contract (thread safety, consistency, what each method raises);
- :mod:`~ablate.storage.journal` and :mod:`~ablate.storage.journal_file`: the journal store;
- :mod:`~ablate.storage.sql` (with ``sql_schema``, ``sql_writes``, ``sql_claims``): the
  database store;
- :mod:`~ablate.storage.opening`: opening a storage URL, the one place a backend is chosen;
- :mod:`~ablate.storage.retry`: riding out a database's restarts.
"""
