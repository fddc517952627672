//! The committed `include/perfsink.h` must equal a fresh cbindgen generation, so the header
//! can never drift from `src/ffi`. `PERFSINK_BLESS=1 cargo test --test c_header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generation")
        .write(&mut fresh);
    let path = root.join("include/perfsink.h");
    if std::env::var_os("PERFSINK_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write header");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/perfsink.h differs from a fresh cbindgen generation: run `make header` and commit it"
    );
}

#[test]
fn header_names_the_crate_version() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/perfsink.h"))
            .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        header.contains(&format!("#define PERFSINK_VERSION \"{version}\"")),
        "the header must define PERFSINK_VERSION \"{version}\""
    );
}
