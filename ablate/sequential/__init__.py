"""Studies that grow: rounds of replicates added until the effects are precise enough."""
