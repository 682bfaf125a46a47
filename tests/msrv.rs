//! The declared minimum supported Rust version is true for what the lockfile resolves: no
//! locked package may declare a `rust-version` newer than the workspace's.
//!
//! Cargo refuses to build a package whose `rust-version` is newer than the compiler, so a
//! locked dependency that needs more than ours makes ours false. This reads every package of the
//! resolved graph (all features, every target platform, build and dev dependencies included)
//! from `cargo metadata --locked` and names each one that needs a newer Rust.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;

/// `cargo metadata` for the whole workspace, exactly as the lockfile resolves it.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--all-features",
        ])
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

#[test]
fn no_locked_package_needs_a_newer_rust_than_we_declare() {
    let meta = metadata();
    let packages = meta["packages"].as_array().unwrap();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let ours_text = packages
        .iter()
        .find(|p| p["name"] == "lendkit")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the lendkit package declares a rust-version");
    let ours = version(ours_text);

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
        checked += 1;
        if let Some(needs) = needs.filter(|n| version(n) > ours) {
            let locked = package["version"].as_str().unwrap();
            too_new.push(format!("{name} {locked} needs {needs}"));
        }
    }
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
