"""From what a job script declares (transformations) to what the cluster runs (the JobGraph)."""
