"""ZooKeeper server daemon in the foreground: `python daemons/zookeeper.py --zkConfigFile conf/zoo.cfg
--peerId N` writes server N's own config and myid from zoo.cfg, then becomes its `java ... QuorumPeerMain`
process (logging to the terminal). `bin/start-zookeeper-quorum.sh` starts the servers in the background."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ha_flink.deploy.scripts import run_daemon_action  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_daemon_action("start-foreground", "zookeeper", tuple(sys.argv[1:])))
