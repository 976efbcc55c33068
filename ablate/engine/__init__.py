"""The execution engine: one trial, the trial queue on Optuna storage, worker processes."""
