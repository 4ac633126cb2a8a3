"""The runtime: job graphs, operators, tasks, state, and the processes that run them."""
