"""Tasks: one parallel subtask of a job vertex, its input gate, its operator chain and record writers."""
