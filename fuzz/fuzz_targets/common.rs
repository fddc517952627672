//! What several targets share: the configuration of a sink that is enabled (so every point is
//! checked and encoded as in production) but never reaches a server.

/// An enabled sink that never connects: port 1 of the loopback refuses at once, the writer
/// retries slowly, what it holds is capped at a few MiB (then dropped and counted), producers
/// never block (`drop`), no self-metrics (the counters move only with the fuzzer's calls), no
/// `/ping` (`INFLUXDB_VERSION` given) and no `CREATE DATABASE`. `extra` adds or overrides keys.
pub fn unreachable_config(extra: &str) -> String {
    format!(
        "INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_VERSION=1;PERFSINK_CREATE_DATABASE=false;\
         PERFSINK_QUEUE_POLICY=drop;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
         PERFSINK_MEMORY_MAX_BYTES=4194304;PERFSINK_CONNECT_TIMEOUT_MS=100;\
         PERFSINK_RETRY_INITIAL_MS=1000;PERFSINK_RETRY_MAX_MS=60000;PERFSINK_MAX_SERIES=20000;\
         PERFSINK_TAGS=host=fuzz;{extra}"
    )
}
