//! The `perfsink` command line: `check` (configuration and connectivity), `k6` (stock k6
//! streamed through the engine), `serve` (the line-protocol relay) and `version`.

use std::process::ExitCode;

mod check;
mod k6;
mod serve;

const USAGE: &str = "usage: perfsink <command>

commands:
  check     read the configuration from INFLUXDB_* / PERFSINK_* and check that InfluxDB answers
  k6        run stock k6 and stream its samples into InfluxDB (perfsink k6 --help)
  serve     InfluxDB-compatible write endpoint in front of the sink (perfsink serve --help)
  version   print the version

configuration: see README.md (INFLUXDB_URL unset means reporting disabled)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => check::run(),
        Some("k6") => k6::run(&args[1..]),
        Some("serve") => serve::run(&args[1..]),
        Some("version") | Some("--version") | Some("-V") => {
            println!("perfsink {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("perfsink: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
