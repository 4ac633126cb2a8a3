"""Checkpoint statistics in Flink's REST shape: counts, history (newest first, bounded), latest of each
kind, summary, restore."""

from __future__ import annotations

from ha_flink.runtime.checkpoint.stats import CheckpointStatsTracker


def test_counts_history_latest_and_summary() -> None:
    stats = CheckpointStatsTracker(history_size=3)
    for checkpoint_id in (1, 2, 3, 4):
        stats.triggered(checkpoint_id, 1000 * checkpoint_id, num_subtasks=2)
        # full size, and the part written for this checkpoint (incremental: the rest is reused)
        stats.acknowledged(checkpoint_id, 1000 * checkpoint_id + 10, 100, 100 // checkpoint_id)
        stats.acknowledged(checkpoint_id, 1000 * checkpoint_id + 20 * checkpoint_id, 50, 50 // checkpoint_id)
    stats.completed_checkpoint(1, 1030, "file:///c/chk-1")
    stats.failed_checkpoint(2, 2500, "declined: disk full")
    stats.completed_checkpoint(3, 3070, "file:///c/chk-3")
    stats.completed_checkpoint(2, 2600, "late")  # a failed one never completes
    body = stats.to_json()
    assert body["counts"] == {"restored": 0, "total": 4, "in_progress": 1, "completed": 2, "failed": 1}
    assert [h["id"] for h in body["history"]] == [4, 3, 2]  # newest first, three kept
    assert [h["status"] for h in body["history"]] == ["IN_PROGRESS", "COMPLETED", "FAILED"]
    latest = body["latest"]
    assert latest["completed"]["id"] == 3 and latest["completed"]["external_path"] == "file:///c/chk-3"
    assert latest["completed"]["state_size"] == 150 and latest["completed"]["end_to_end_duration"] == 70
    assert latest["completed"]["checkpointed_size"] == 33 + 16
    assert latest["completed"]["num_acknowledged_subtasks"] == 2
    assert latest["failed"]["failure_message"] == "declined: disk full"
    assert latest["failed"]["end_to_end_duration"] == 500
    assert body["summary"]["end_to_end_duration"]["min"] == 30 and body["summary"]["end_to_end_duration"]["max"] == 70
    assert body["summary"]["state_size"]["max"] == 150 and body["summary"]["checkpointed_size"]["min"] == 49
    assert body["summary"]["checkpointed_size"]["max"] == 150
    assert latest["savepoint"] is None and latest["restored"] is None


def test_savepoints_and_restores_are_their_own_latest() -> None:
    stats = CheckpointStatsTracker()
    stats.triggered(7, 100, 1, is_savepoint=True)
    stats.acknowledged(7, 150, 10, 10)
    stats.completed_checkpoint(7, 160, "file:///sp/savepoint-1")
    stats.restored(5, 999, False, "file:///c/chk-5")
    body = stats.to_json()
    assert body["latest"]["savepoint"]["id"] == 7 and body["latest"]["completed"] is None
    assert body["history"][0]["checkpoint_type"] == "SAVEPOINT"
    assert body["latest"]["restored"] == {"id": 5, "restore_timestamp": 999, "is_savepoint": False,
                                          "external_path": "file:///c/chk-5"}
    assert body["counts"]["restored"] == 1
