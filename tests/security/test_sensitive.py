"""Which keys are hidden in REST, the dashboard and the logs."""

from __future__ import annotations

import pytest

from ha_flink.config.sensitive import HIDDEN, is_sensitive, masked_items


@pytest.mark.parametrize("key", [
    "security.ssl.internal.keystore-password", "security.ssl.rest.key-password", "s3.secret-key",
    "s3.access-key", "fs.azure.account.key.acc.blob.core.windows.net", "metrics.reporter.x.apikey",
    "metrics.reporter.otel.exporter.headers.api-key", "security.delegation.token.provider.x", "my.oauth.TOKEN",
    "zookeeper.jaas.file", "aws.credentials.provider", "rest.client.http-headers", "x.basic-auth",
    "security.ssl.internal.keystore",
])
def test_sensitive_keys_are_hidden(key: str) -> None:
    assert is_sensitive(key)
    assert masked_items({key: "s3cr3t"}) == {key: HIDDEN}


@pytest.mark.parametrize("key", ["high-availability.storageDir", "rest.port", "state.checkpoints.dir",
                                 "taskmanager.numberOfTaskSlots", "security.ssl.internal.enabled"])
def test_other_keys_are_shown(key: str) -> None:
    assert not is_sensitive(key)
    assert masked_items({key: "v"}) == {key: "v"}
