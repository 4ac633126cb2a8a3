"""The ha-flink image: Flink's entry point commands, FLINK_PROPERTIES merged into the config, a non-root
user, and the content-hash cache (asking again builds nothing)."""

from __future__ import annotations

from ha_flink.testing.containers import BuiltImage, Podman, build_image


def test_the_image_runs_as_flink_and_merges_flink_properties(podman: Podman, image: BuiltImage) -> None:
    done = podman.run("run", "--rm", "-e", "FLINK_PROPERTIES=rest.port: 9999\nparallelism.default: 7", image.name,
                      "bash", "-c", "id -un; flink -v; cat \"$FLINK_CONF_DIR/flink-conf.yaml\"")
    lines = done.stdout.splitlines()
    assert lines[0] == "flink", done.stdout
    assert lines[1].startswith("Version: "), done.stdout
    # appended after the image's own settings (Flink's docker-entrypoint.sh); the earlier line of the key is
    # commented out, so the loader has nothing to warn about
    assert lines[-2:] == ["rest.port: 9999", "parallelism.default: 7"], done.stdout
    assert "# (replaced by FLINK_PROPERTIES) rest.port: 8081" in lines, done.stdout
    assert "rest.port: 8081" not in lines, done.stdout


def test_the_entry_point_has_flinks_commands(podman: Podman, image: BuiltImage) -> None:
    done = podman.run("run", "--rm", image.name)
    assert "jobmanager" in done.stdout and "taskmanager" in done.stdout and "zookeeper" in done.stdout, done.stdout
    assert "FLINK_PROPERTIES" in done.stdout, done.stdout


def test_a_second_build_of_the_same_inputs_builds_nothing(podman: Podman, image: BuiltImage) -> None:
    # (built here again first: the tree may have changed since the session's build, someone edits it)
    first = build_image(podman, print)
    again = build_image(podman, print)
    assert again.name == first.name and not again.built, again
    assert again.seconds < 30, again
    print(f"image {image.name}: {image.size_bytes / 1e6:.0f} MB")
