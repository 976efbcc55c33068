"""The statistics: design matrices, the OLS analysis of a study's results, and its tables."""
