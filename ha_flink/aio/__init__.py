"""asyncio helpers every daemon uses: groups that own background tasks (`tasks.py`) and the assertion
that loop-owned state is touched only on its loop (`owner.py`). Below every other layer."""
