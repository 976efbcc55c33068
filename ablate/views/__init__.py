"""The views: charts drawn from an analysis, and the self-contained report."""
