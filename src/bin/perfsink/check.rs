//! `perfsink check`: the effective configuration and whether InfluxDB answers.

use std::process::ExitCode;

use perfsink::config::{Api, Config};
use perfsink::writer::http::HttpTarget;

/// Prints the effective configuration (secrets hidden) and what InfluxDB answers.
pub fn run() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("perfsink: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(endpoint) = config.endpoint.clone() else {
        println!("reporting disabled: INFLUXDB_URL is not set");
        return ExitCode::SUCCESS;
    };
    match &endpoint.api {
        Api::V1 {
            db, rp, username, ..
        } => println!(
            "target: InfluxDB v1 API at {} database {db:?}{}{}",
            endpoint.base_url,
            rp.as_ref()
                .map(|r| format!(" retention policy {r:?}"))
                .unwrap_or_default(),
            username
                .as_ref()
                .map(|u| format!(" as user {u:?}"))
                .unwrap_or_default()
        ),
        Api::V2 { org, bucket, .. } => println!(
            "target: InfluxDB v2 API at {} bucket {bucket:?}{} with a token",
            endpoint.base_url,
            org.as_ref()
                .map(|o| format!(" org {o:?}"))
                .unwrap_or_default()
        ),
    }
    println!(
        "batches of {} lines / {} bytes every {:?}, {} in flight, gzip level {}, precision {}",
        config.batch_lines,
        config.batch_bytes,
        config.flush_interval,
        config.concurrency,
        config.gzip_level,
        config.precision.as_query()
    );
    if config.mode.aggregate() {
        let a = &config.aggregate;
        let percentiles: Vec<&str> = a.percentiles.iter().map(|p| p.field()).collect();
        println!(
            "mode {:?}: intervals of {:?} written {:?} after they end, percentiles {}",
            config.mode,
            a.interval,
            a.grace,
            percentiles.join(",")
        );
    }
    let target = match HttpTarget::new(&config, &endpoint) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("perfsink: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perfsink: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match target.ping().await {
            Ok(version) => println!("ping: InfluxDB {version} answers"),
            Err(e) => {
                eprintln!("ping: {} does not answer: {e}", endpoint.base_url);
                return ExitCode::FAILURE;
            }
        }
        match target.check_database().await {
            Ok(true) => println!("database: exists, credentials accepted"),
            Ok(false) if config.create_database => {
                println!("database: missing; it will be created on the first write")
            }
            Ok(false) => {
                eprintln!("database: missing and PERFSINK_CREATE_DATABASE is off");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("database: {e}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    })
}
