"""Stream operators: what a task runs for each record batch, chained into one call path."""
