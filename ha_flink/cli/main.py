"""Entry point of the `flink` console script.

The commands arrive with the cluster runtime; until then the script says so and fails, rather than
pretending to have done something."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "(none)"
    print(f"flink {command}: the cluster runtime is not implemented yet in ha-flink; "
          "no job was submitted or changed.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
