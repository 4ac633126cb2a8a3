"""Which configuration keys hold secrets, and their values hidden: the REST API (`/jobmanager/config`, a
job's `/config`), the dashboard (which reads REST) and the logs show `******` for each.

A key is sensitive when its name contains one of Flink's parts (GlobalConfiguration.SENSITIVE_KEYS:
password, secret, fs.azure.account.key, apikey, api-key, auth-params, service-key, token, basic-auth,
jaas.config, http-headers) or one of ours: key, jaas, credential. "key" hides every keystore path and
`s3.access-key` too: a path or an access key id is no secret, but hiding one costs less than showing a
new secret key whose name nobody listed."""

from __future__ import annotations

from typing import Mapping, TypeVar

V = TypeVar("V")

HIDDEN = "******"
SENSITIVE_PARTS = (
    "password", "secret", "fs.azure.account.key", "apikey", "api-key", "auth-params", "service-key", "token",
    "basic-auth", "jaas.config", "http-headers", "key", "jaas", "credential",
)


def is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SENSITIVE_PARTS)


def masked(key: str, value: V) -> V | str:
    return HIDDEN if is_sensitive(key) else value


def masked_items(values: Mapping[str, V]) -> dict[str, V | str]:
    return {key: masked(key, value) for key, value in values.items()}
