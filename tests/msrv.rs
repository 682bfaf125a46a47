//! The declared minimum supported Rust version is true for what the lockfile resolves: no
//! locked package of the default build may declare a `rust-version` newer than the
//! workspace's, and the optional `pg` feature needs no newer Rust than the docs say it does.
//!
//! Cargo refuses to build a package whose `rust-version` is newer than the compiler, so a
//! locked dependency that needs more than ours makes ours false. This reads every package of the
//! resolved graph (every target platform, build and dev dependencies included) from
//! `cargo metadata --locked` — with the default features, then with all of them — and names
//! each one that needs a newer Rust. An optional dependency is compiled only for those who ask
//! for its feature, so it may need more than the rest, as long as the docs say so: the `pg`
//! feature's sqlx 0.9 needs Rust 1.94. The default build is what building the Rust crates
//! (`lendkit`, `lendkit-core`, `lendkit-adapters`, `lendkit-cli`) with their default features
//! resolves (`cargo tree` of those packages: the Python and Node binding crates, which build
//! lendkit with `nats` for `Library.connect`, need Rust 1.94 too, and the README says so).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;

/// What the `pg` feature needs (sqlx 0.9's minimum); the README and the feature's doc say so.
const PG_RUST_VERSION: &str = "1.94";

/// `cargo metadata` for the whole workspace, exactly as the lockfile resolves it, with the
/// default features or (`all`) every feature.
fn metadata(all: bool) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["metadata", "--format-version", "1", "--locked"];
    if all {
        args.push("--all-features");
    }
    let out = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed (is Cargo.lock out of date?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// `"1.85"`, `"1.85.0"` → `(1, 85, 0)`.
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("rust-version {text:?} is not a version"))
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    (major, minor, patch)
}

#[test]
fn versions_compare_as_numbers() {
    assert!(version("1.100") > version("1.89"));
    assert!(version("1.89.1") > version("1.89"));
    assert_eq!(version("1.89"), version("1.89.0"));
}

/// `name vVERSION` of every package building the Rust crates with their default features pulls
/// in (every target platform; normal, build and dev dependencies), as `cargo tree` resolves
/// them for those packages alone.
fn default_build() -> std::collections::HashSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--target",
            "all",
            "-e",
            "normal,build,dev",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .args([
            "-p",
            "lendkit",
            "-p",
            "lendkit-core",
            "-p",
            "lendkit-adapters",
            "-p",
            "lendkit-cli",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree --locked failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect()
}

/// Every locked package of `meta`'s graph (not ours; only those in `within`, when given) that
/// needs a newer Rust than `limit`, and how many were checked. Workspace members must inherit
/// `ours_text`.
fn too_new(
    meta: &Value,
    limit: (u64, u64, u64),
    ours_text: &str,
    within: Option<&std::collections::HashSet<String>>,
) -> (usize, Vec<String>) {
    let packages = meta["packages"].as_array().unwrap();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let mut checked = 0;
    let mut too_new = Vec::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap();
        let package = packages.iter().find(|p| p["id"] == id).unwrap();
        let name = package["name"].as_str().unwrap();
        let needs = package["rust_version"].as_str();
        if members.contains(&id) {
            assert_eq!(
                needs,
                Some(ours_text),
                "workspace member {name} declares its own rust-version; inherit the workspace's"
            );
            continue;
        }
        let locked = package["version"].as_str().unwrap();
        if within.is_some_and(|w| !w.contains(&format!("{name} v{locked}"))) {
            continue;
        }
        checked += 1;
        if let Some(needs) = needs.filter(|n| version(n) > limit) {
            too_new.push(format!("{name} {locked} needs {needs}"));
        }
    }
    (checked, too_new)
}

/// The workspace's declared `rust-version`.
fn ours(meta: &Value) -> String {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lendkit")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the lendkit package declares a rust-version")
        .to_owned()
}

#[test]
fn the_pg_feature_needs_no_newer_rust_than_the_docs_say() {
    let meta = metadata(true);
    let ours_text = ours(&meta);
    let (checked, too_new) = too_new(&meta, version(PG_RUST_VERSION), &ours_text, None);
    assert!(checked > 50, "the walk saw the locked packages: {checked}");
    assert!(
        too_new.is_empty(),
        "with every feature, some locked packages need more than Rust {PG_RUST_VERSION}:\n  {}",
        too_new.join("\n  ")
    );
    // Whatever needs more than ours comes with `pg` only (the default build checks that), and
    // the docs name the version it needs.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["README.md", "adapters/Cargo.toml", "Cargo.toml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            text.contains(&format!("Rust {PG_RUST_VERSION}"))
                || text.contains(&format!("Rust\n{PG_RUST_VERSION}")),
            "{file} should say the pg feature needs Rust {PG_RUST_VERSION}"
        );
    }
}

#[test]
fn no_locked_package_needs_a_newer_rust_than_we_declare() {
    let meta = metadata(false);
    let ours_text = ours(&meta);
    let (checked, too_new) = too_new(
        &meta,
        version(&ours_text),
        &ours_text,
        Some(&default_build()),
    );
    let ours_text = ours_text.as_str();
    assert!(checked > 50, "the walk saw the locked packages: {checked}");
    assert!(
        too_new.is_empty(),
        "rust-version = {ours_text} is false for Cargo.lock: {} locked package(s) need a newer Rust:\n  {}\n\
         raise rust-version in Cargo.toml (and the README and docs/VERSIONING.md) or lock older versions",
        too_new.len(),
        too_new.join("\n  ")
    );

    // The docs state the same version.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, says) in [
        ("README.md", format!("(stable, {ours_text} or newer)")),
        (
            "docs/VERSIONING.md",
            format!("(`rust-version`, now {ours_text})"),
        ),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(text.contains(&says), "{file} should say {says:?}");
    }
}
