"""Starting and stopping cluster processes: ZooKeeper servers, JobManagers and TaskManagers, locally or
over SSH."""
