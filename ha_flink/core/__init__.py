"""The contracts between user code and the runtime, as Flink's `flink-core` holds them: the function
interfaces and `RuntimeContext` (`functions.py`), state descriptors and state interfaces (`state.py`),
windows, assigners and triggers (`window.py`), `OutputTag` (`output_tag.py`).

They live below both `runtime/` (whose operators and state backends are written against them) and
`datastream/` (which re-exports them under PyFlink's module names, `ha_flink.core.functions`, ...),
so that every layer imports downward only. They import nothing of ha_flink but `common`."""
