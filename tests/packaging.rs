//! What every published artefact carries: both licence texts (in each crate package, checked
//! with `cargo package --list`), and honest metadata in every manifest (no placeholder URLs).
//! The wheel and the npm tarball are checked by their own suites: `bindings/python/tests/
//! test_packaging.py` and `bindings/node/test/packaging.test.mjs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LICENCES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];
/// The crates published to crates.io.
const PUBLISHED: [&str; 4] = ["lendkit", "lendkit-core", "lendkit-adapters", "lendkit-cli"];
/// Every folder that is packaged on its own: each crate, the Python and the npm package.
const PACKAGE_DIRS: [&str; 6] = [
    ".",
    "core",
    "adapters",
    "cli",
    "bindings/python",
    "bindings/node",
];

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(ROOT);
    command
}

/// What `cargo ARGS` prints, run in the repository; fails with cargo's own message.
fn cargo_stdout(args: &[&str]) -> String {
    let out = cargo().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[test]
fn every_crate_package_holds_both_licences_and_its_readme() {
    for name in PUBLISHED {
        let files = cargo_stdout(&["package", "--list", "--allow-dirty", "--locked", "-p", name]);
        let files: Vec<&str> = files.lines().collect();
        for wanted in LICENCES.iter().chain(&["README.md"]) {
            assert!(
                files.contains(wanted),
                "the {name} crate package lacks {wanted}: {files:?}"
            );
        }
    }
}

#[test]
fn every_package_folder_has_the_same_licence_texts() {
    for licence in LICENCES {
        let root = read(licence);
        assert!(root.len() > 1000, "{licence} holds the licence text");
        for dir in PACKAGE_DIRS {
            assert_eq!(
                read(&format!("{dir}/{licence}")),
                root,
                "{dir}/{licence} differs from the root's"
            );
        }
    }
    assert!(read("LICENSE-MIT").contains("Copyright (c) The lendkit developers"));
    assert!(read("LICENSE-APACHE")
        .contains("Apache License\n                           Version 2.0, January 2004"));
}

#[test]
fn published_manifests_have_honest_metadata() {
    let out = cargo_stdout(&["metadata", "--format-version", "1", "--no-deps", "--locked"]);
    let meta: Value = serde_json::from_str(&out).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 6, "the workspace's packages");
    for package in packages {
        let name = package["name"].as_str().unwrap();
        let manifest = Path::new(package["manifest_path"].as_str().unwrap());
        assert_eq!(package["license"], "MIT OR Apache-2.0", "{name}: license");
        assert!(
            package["description"]
                .as_str()
                .is_some_and(|d| d.len() > 20),
            "{name}: description"
        );
        // A field is left out rather than filled with a made-up address.
        for field in ["repository", "homepage"] {
            assert!(
                package[field].is_null(),
                "{name}: {field} = {}",
                package[field]
            );
        }
        if !PUBLISHED.contains(&name) {
            assert_eq!(
                package["publish"],
                serde_json::json!([]),
                "{name} is built by maturin or napi and is not for crates.io: publish = false"
            );
            continue;
        }
        assert!(package["publish"].is_null(), "{name} is published");
        // docs.rs documents libraries; the command line's manual is its --help.
        let library = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "lib"));
        if library {
            assert_eq!(
                package["documentation"],
                format!("https://docs.rs/{name}").as_str(),
                "{name}: documentation"
            );
        } else {
            assert!(
                package["documentation"].is_null(),
                "{name}: no docs.rs page"
            );
        }
        let readme = package["readme"].as_str().expect("a readme");
        assert!(
            manifest.parent().unwrap().join(readme).is_file(),
            "{name}: readme {readme} exists"
        );
        let keywords = package["keywords"].as_array().unwrap();
        assert!(
            (1..=5).contains(&keywords.len()),
            "{name}: 1 to 5 keywords (crates.io allows 5)"
        );
        for keyword in keywords {
            let keyword = keyword.as_str().unwrap();
            assert!(
                keyword.len() <= 20
                    && keyword.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && keyword
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name}: keyword {keyword:?} is not one crates.io accepts"
            );
        }
        let categories = package["categories"].as_array().unwrap();
        assert!(
            (1..=5).contains(&categories.len()),
            "{name}: 1 to 5 categories"
        );
    }
}

#[test]
fn no_manifest_holds_a_placeholder_address() {
    for file in [
        "Cargo.toml",
        "core/Cargo.toml",
        "adapters/Cargo.toml",
        "bindings/python/Cargo.toml",
        "bindings/python/pyproject.toml",
        "bindings/node/Cargo.toml",
        "bindings/node/package.json",
    ] {
        let text = read(file).to_lowercase();
        for placeholder in [
            "example.invalid",
            "example.com",
            "example.org",
            "todo",
            "fixme",
        ] {
            assert!(
                !text.contains(placeholder),
                "{file} holds the placeholder {placeholder:?}"
            );
        }
    }
}

#[test]
fn every_build_of_the_test_command_uses_the_lockfile() {
    // scripts/test.sh: each cargo command that resolves dependencies passes --locked.
    let script = read("scripts/test.sh");
    let mut cargo_commands = 0;
    for line in script.lines().map(str::trim) {
        // Comments and the step titles and messages that name a command are not commands.
        if line.starts_with('#') || line.starts_with("step ") || line.starts_with("echo ") {
            continue;
        }
        let Some(at) = line.find("cargo ") else {
            continue;
        };
        if line.contains("--version") {
            continue;
        }
        let command = &line[at..];
        if ["clippy", "test", "doc", "build", "install", "fetch"]
            .iter()
            .any(|sub| command.starts_with(&format!("cargo {sub} ")))
        {
            cargo_commands += 1;
            assert!(command.contains("--locked"), "scripts/test.sh: {line}");
        }
    }
    assert!(cargo_commands >= 3, "found {cargo_commands} cargo commands");
    // The wheel: not maturin's `locked` option, which every build from the sdist would obey
    // and fail (its trimmed workspace does not match the full Cargo.lock); each build from this
    // tree passes --locked instead. The addon: `napi build … -- --locked`.
    assert!(
        !read("bindings/python/pyproject.toml").contains("\nlocked = true"),
        "[tool.maturin] locked = true breaks `pip install lendkit-*.tar.gz`"
    );
    assert!(
        read("bindings/python/test.sh").contains("MATURIN_PEP517_ARGS=\"--locked\""),
        "bindings/python/test.sh builds the wheel with --locked"
    );
    // scripts/cross.sh: each maturin and napi build, continuation lines joined.
    let cross = read("scripts/cross.sh").replace("\\\n", " ");
    let mut builds = 0;
    for line in cross.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with("step ") || line.starts_with("echo ") {
            continue;
        }
        if line.contains("maturin build ") {
            builds += 1;
            assert!(line.contains(" --locked "), "scripts/cross.sh: {line}");
        }
        if line.contains("napi build ") {
            builds += 1;
            assert!(line.contains(" -- --locked"), "scripts/cross.sh: {line}");
        }
    }
    assert_eq!(
        builds, 4,
        "scripts/cross.sh builds the wheels and the addons, for glibc and for musl"
    );
    let package: Value = serde_json::from_str(&read("bindings/node/package.json")).unwrap();
    for script in ["build", "build:debug"] {
        let command = package["scripts"][script].as_str().unwrap();
        assert!(
            command.starts_with("napi build ") && command.ends_with(" -- --locked"),
            "package.json scripts.{script}: {command}"
        );
    }
    // The Python test tools: hash-checked, from the lock; the build uses the locked maturin.
    let python = read("bindings/python/test.sh");
    assert!(python.contains("--require-hashes") && python.contains("requirements-test.txt"));
    assert!(python.contains("--no-build-isolation"));
    let lock = read("bindings/python/requirements-test.txt");
    for tool in ["maturin", "pytest", "hypothesis", "mypy"] {
        assert!(
            lock.lines().any(|l| l.starts_with(&format!("{tool}=="))),
            "requirements-test.txt pins {tool}"
        );
    }
    // Every requirement is exact and hashed.
    for requirement in lock
        .lines()
        .filter(|l| !l.starts_with([' ', '#']) && !l.is_empty())
    {
        assert!(requirement.contains("=="), "{requirement} is not pinned");
        assert!(requirement.ends_with('\\'), "{requirement} has no hashes");
    }
}

/// A program that only wants `Library` gets no command line and no allocator: clap, its
/// completions and mimalloc belong to `lendkit-cli`.
#[test]
fn the_library_crate_pulls_in_no_cli_and_no_allocator() {
    let tree = cargo_stdout(&[
        "tree", "-p", "lendkit", "-e", "normal", "--locked", "--prefix", "none",
    ]);
    assert!(
        tree.contains("lendkit-core"),
        "the tree names the core:\n{tree}"
    );
    for unwanted in ["clap", "mimalloc"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(unwanted)),
            "lendkit depends on {unwanted}:\n{tree}"
        );
    }
    let cli = cargo_stdout(&[
        "tree",
        "-p",
        "lendkit-cli",
        "-e",
        "normal",
        "--locked",
        "--depth",
        "1",
        "--prefix",
        "none",
    ]);
    assert!(
        cli.lines().any(|l| l.starts_with("clap ")),
        "the CLI has clap:\n{cli}"
    );
}
