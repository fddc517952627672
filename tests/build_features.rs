//! No rebuild when switching between `make build`, `make test` and `make demo`.
//!
//! Cargo resolves features per command: a build of the library and the CLI leaves the
//! dev-dependencies out, a build of tests or examples (`cargo test`, `cargo run --example`)
//! takes them in, and a feature they turn on in a shared dependency changes that dependency's
//! hash — and the hash of everything above it, the engine included, whose `libperfsink.so` then
//! is rebuilt on every switch. The feature pins in Cargo.toml prevent that. This test asks
//! cargo itself (`cargo tree`, offline) for both resolutions and checks that every package of
//! the library's graph gets the same features in both; and that `cargo build --lib` (as
//! `make test` runs it) and `cargo test` build the engine as the same unit (one hash: the same
//! features and profile settings all the way down).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `package version [(proc-macro)]` → the feature lists cargo resolves for it (a package built
/// for both the host and the target may appear with two lists).
type Resolution = BTreeMap<String, BTreeSet<String>>;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn resolve(edges: &str) -> Resolution {
    let cargo = cargo();
    let out = Command::new(&cargo)
        .args(["tree", "--locked", "--offline", "--prefix", "none"])
        .args(["-e", edges, "-f", "{p}|{f}", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(
        out.status.success(),
        "cargo tree -e {edges} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packages = Resolution::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        // `-e features` also prints the feature nodes (`name feature "x"`); only packages count.
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        let package = package.trim_end_matches(" (*)").trim();
        let package = package.split(" (/").next().unwrap(); // the local path of perfsink itself
        packages
            .entry(package.to_string())
            .or_default()
            .insert(features.trim_end_matches(" (*)").to_string());
    }
    packages
}

#[test]
fn dev_dependencies_change_no_feature_of_the_library_graph() {
    let build = resolve("normal,build,features");
    let with_dev = resolve("normal,build,dev,features");
    assert!(
        build.keys().any(|p| p.starts_with("serde_json "))
            && build.keys().any(|p| p.starts_with("tokio ")),
        "cargo tree's output is not what this test reads: {build:?}"
    );
    assert!(
        with_dev.keys().any(|p| p.starts_with("cbindgen ")),
        "the dev resolution lacks the dev-dependencies: {with_dev:?}"
    );
    let differ: Vec<String> = build
        .iter()
        .filter(|(package, features)| with_dev.get(*package) != Some(features))
        .map(|(package, features)| {
            format!(
                "{package}: build {features:?}, tests/examples {:?}",
                with_dev.get(package)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "these packages are built with other features by cargo test / cargo run --example than \
         by cargo build, so switching rebuilds them and the engine; pin the features in \
         Cargo.toml's [dependencies]:\n{}",
        differ.join("\n")
    );
}

/// Whether `cargo <args>` found the engine's library fresh (compiled nothing for it), in the
/// profile of this test binary. When `make test` runs this, both builds below are done already
/// (it runs `cargo build --lib`, then `cargo test`): quick.
fn engine_fresh(args: &[&str]) -> bool {
    let exe = std::env::current_exe().unwrap();
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .expect("the test binary is in <target>/<profile>/deps")
        .to_string();
    let mut cmd = Command::new(cargo());
    cmd.args(args)
        .args([
            "--locked",
            "--quiet",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let engine: Vec<bool> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == "perfsink"
                && m["target"]["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "rlib"))
        })
        .map(|m| m["fresh"] == true)
        .collect();
    assert_eq!(engine.len(), 1, "{cmd:?}: the engine's library, once");
    engine[0]
}

/// `make test` runs `cargo build --lib`, then `cargo test`; with any setting of the engine's
/// dependency graph differing between the two (a feature, or the profile of a crate that proc
/// macros and dev-dependencies share), each would rebuild the engine the other built.
#[test]
fn cargo_build_and_cargo_test_build_the_same_engine() {
    engine_fresh(&["build", "--lib"]);
    assert!(
        engine_fresh(&["test", "--no-run", "--test", "build_features"]),
        "cargo test rebuilt the engine right after cargo build --lib"
    );
    assert!(
        engine_fresh(&["build", "--lib"]),
        "cargo build --lib rebuilt the engine right after cargo test"
    );
}
