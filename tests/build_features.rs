//! No rebuild when switching between `make build`, `make test` and `make demo`.
//!
//! Cargo resolves features per command: a build of the library and the CLI leaves the
//! dev-dependencies out, a build of tests or examples (`cargo test`, `cargo run --example`)
//! takes them in, and a feature they turn on in a shared dependency changes that dependency's
//! hash — and the hash of everything above it, the engine included, whose `libperfsink.so` then
//! is rebuilt on every switch. The feature pins in Cargo.toml prevent that. This test asks
//! cargo itself (`cargo tree`, offline) for both resolutions and checks that every package of
//! the library's graph gets the same features in both.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// `package version [(proc-macro)]` → the feature lists cargo resolves for it (a package built
/// for both the host and the target may appear with two lists).
type Resolution = BTreeMap<String, BTreeSet<String>>;

fn resolve(edges: &str) -> Resolution {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
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
