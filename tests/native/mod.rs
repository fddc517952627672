//! The crate's native libraries (`libperfsink.so`, `libperfsink.a`) for tests that use them as
//! a C caller would. Use from a test file with `mod native;`.
//!
//! `cargo test` links the tests against the rlib; it does not promise a fresh cdylib and
//! staticlib. [`libs()`] therefore runs `cargo build --lib` (same manifest, target dir, profile
//! and target as the running test binary) when either library is missing or older than the
//! sources, once per test process (a `OnceLock`). Several test processes doing it at once are
//! serialized by cargo's own lock on the build directory, and the second one finds everything
//! fresh. What an mtime cannot see (a `RUSTFLAGS` change alone) is not rebuilt: run
//! `cargo build --lib` yourself then, as `make test` does.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::SystemTime;

/// The system libraries a C program linking `libperfsink.a` needs, as printed by
/// `cargo rustc --lib -- --print native-static-libs` on x86_64 Linux (glibc 2.36, Rust 1.95).
/// It is Rust std's list: no dependency links a system library (aws-lc and ring are compiled
/// into the archive). With glibc ≥ 2.34, `-lutil -lrt -lpthread -ldl` are empty stubs, which is
/// why the shorter `-lpthread -ldl -lm -lgcc_s -lc` links too; this is the list rustc gives.
pub const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Where the native libraries of the current profile are.
pub struct Libs {
    /// `target/<profile>` (or `target/<triple>/<profile>`).
    pub dir: PathBuf,
    pub cdylib: PathBuf,
    pub staticlib: PathBuf,
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The native libraries, built first when missing or stale (see the module doc).
pub fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| {
        let dir = profile_dir();
        let libs = Libs {
            cdylib: dir.join("libperfsink.so"),
            staticlib: dir.join("libperfsink.a"),
            dir,
        };
        let newest_source = newest_mtime_of_sources();
        let stale = |p: &Path| match fs::metadata(p).and_then(|m| m.modified()) {
            Ok(built) => Some(built) < newest_source,
            Err(_) => true,
        };
        if stale(&libs.cdylib) || stale(&libs.staticlib) {
            cargo_build_lib(&libs.dir);
        }
        for lib in [&libs.cdylib, &libs.staticlib] {
            assert!(
                lib.is_file(),
                "{} is missing after cargo build --lib",
                lib.display()
            );
        }
        libs
    })
}

/// `target/<profile>`: the test binary runs from `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in <target>/<profile>/deps");
    dir.to_path_buf()
}

/// `cargo build --lib` into the same target dir with the same profile (and target triple).
fn cargo_build_lib(profile_dir: &Path) {
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name");
    let parent = profile_dir.parent().expect("target dir");
    // `target/<triple>/<profile>` when the tests were built with `--target`.
    let (target_dir, triple) = if parent.join("CACHEDIR.TAG").is_file() {
        (parent, None)
    } else {
        let triple = parent.file_name().and_then(|n| n.to_str());
        (parent.parent().expect("target dir"), triple)
    };
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--lib", "--quiet", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(triple) = triple {
        cmd.args(["--target", triple]);
    }
    let out = cmd.output().expect("run cargo build --lib");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The newest modification time of what the library is built from.
fn newest_mtime_of_sources() -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                // The CLI binary's sources do not change the library.
                if path != root().join("src/bin") {
                    walk(&path, newest);
                }
            } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(Some(t));
            }
        }
    }
    let mut newest = None;
    walk(&root().join("src"), &mut newest);
    for f in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        if let Ok(t) = fs::metadata(root().join(f)).and_then(|m| m.modified()) {
            newest = newest.max(Some(t));
        }
    }
    newest
}

/// A private directory under cargo's `CARGO_TARGET_TMPDIR` for one test's files; removed when
/// the test passes, kept (and named on stderr) when it fails.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("perfsink-native")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept the files of the failed test in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
