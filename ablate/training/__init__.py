"""Training one trial: the backend set up in a process, the trial itself, what it records.

- :mod:`~ablate.training.backend`: threads, GPUs and a quiet import of Keras;
- :mod:`~ablate.training.trial`: build, train, evaluate and record one (cell, replicate);
- :mod:`~ablate.training.records`: what a trial produced, as plain data;
- :mod:`~ablate.training.failures`: what a failure means (worth a retry, or not).
"""
