"""The JobManager: contends for leadership; as leader runs the Dispatcher, the ResourceManager and one
JobMaster per job."""
