"""TaskManager daemon: `python daemons/taskexecutor.py --configDir conf [-D k=v]`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ha_flink.deploy.entrypoint import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("taskexecutor"))
