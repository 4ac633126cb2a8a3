"""Scheduling decisions, kept free of I/O: restart strategies (when to restart) and failover strategies
(which tasks), tested on their own without processes."""
