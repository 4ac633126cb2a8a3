"""Security: TLS material from Flink's `security.ssl.*` keys (keystores, truststores, fingerprints) for
the internal RPC and the REST endpoints, and ZooKeeper's SASL credentials from the JAAS file Flink users
name with `-Djava.security.auth.login.config`. Everything here fails at start with the key and the file
named; nothing falls back to plaintext."""
