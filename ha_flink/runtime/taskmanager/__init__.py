"""The TaskManager: follows whichever JobManager leads, offers its slots, runs tasks, exchanges records."""
