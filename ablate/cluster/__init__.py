"""Running a study's workers on a cluster: SLURM job arrays (:mod:`ablate.cluster.slurm`)."""
