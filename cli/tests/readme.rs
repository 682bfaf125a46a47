//! Every code block of every README is run by some test, or says why not.
//!
//! The convention, by a fence's info string:
//! - `rust`: README.md's blocks are doctests (`src/lib.rs` includes README.md), run by
//!   `cargo test --doc`; no other README may hold Rust.
//! - `python`: run with the built package and type-checked with `mypy --strict` by
//!   `bindings/python/tests/test_readme.py`.
//! - `js`: run with node against the built addon and type-checked with `tsc` (checkJs) by
//!   `bindings/node/test/readme.test.mjs`; a block with `import` runs as an ES module, any other
//!   as CommonJS.
//! - `text`: a terminal session (`$ lendkit …` lines, each followed by its output), replayed
//!   here against the real binary in an empty folder (see [`the_cli_session_in_the_readme_is_what_the_cli_prints`]).
//! - `<language> no-run: <reason>`: not run; the reason says why (and usually what runs it
//!   instead). Anything else fails [`every_code_block_is_run_or_says_why_not`].
//!
//! And every `lendkit <subcommand>` a README mentions must exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository (this crate is `cli/` in it).
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The test that runs each language's blocks, and the READMEs it reads.
const RUNNERS: &[(&str, &str)] = &[
    ("python", "bindings/python/tests/test_readme.py"),
    ("js", "bindings/node/test/readme.test.mjs"),
];

/// One fenced block: where it starts, its info string and its text.
#[derive(Debug)]
struct Block {
    line: usize,
    info: String,
    code: String,
}

impl Block {
    fn language(&self) -> &str {
        self.info.split_whitespace().next().unwrap_or("")
    }

    /// The reason after `no-run:`, if the block is marked so.
    fn no_run(&self) -> Option<&str> {
        let rest = self.info.strip_prefix(self.language())?.trim_start();
        rest.strip_prefix("no-run:").map(str::trim)
    }
}

/// Every README.md of the repository, outside build output and installed packages.
fn readmes() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    walk(&path, found);
                }
            } else if name.eq_ignore_ascii_case("README.md") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new(ROOT), &mut found);
    found.sort();
    found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match open.take() {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some(Block {
                        line: i + 1,
                        info: info.trim().to_owned(),
                        code: String::new(),
                    });
                }
            }
            Some(mut block) => {
                if line.trim_end() == "```" {
                    found.push(block);
                } else {
                    block.code.push_str(line);
                    block.code.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn every_code_block_is_run_or_says_why_not() {
    let files = readmes();
    let names: Vec<String> = files.iter().map(|f| relative(f)).collect();
    for expected in [
        "README.md",
        "bindings/python/README.md",
        "bindings/node/README.md",
        "tests/scenarios/README.md",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let doctests = read(&Path::new(ROOT).join("src/lib.rs"));
    let mut counted = 0;
    for file in &files {
        let name = relative(file);
        for block in blocks(&read(file)) {
            counted += 1;
            let at = format!("{name}:{}: ```{}", block.line, block.info);
            if let Some(reason) = block.no_run() {
                assert!(reason.len() >= 10, "{at}: say why the block is not run");
                continue;
            }
            match block.language() {
                "rust" => assert!(
                    name == "README.md"
                        && doctests.contains("#[doc = include_str!(\"../README.md\")]"),
                    "{at}: Rust blocks are run only as doctests of README.md (src/lib.rs)"
                ),
                "text" => assert!(
                    block.code.lines().any(|l| l.starts_with("$ lendkit ")),
                    "{at}: a text block must be a `$ lendkit …` session (checked here) or be \
                     marked `text no-run: <reason>`"
                ),
                language => {
                    let runner = RUNNERS
                        .iter()
                        .find(|(l, _)| *l == language)
                        .map(|(_, runner)| *runner)
                        .unwrap_or_else(|| {
                            panic!(
                                "{at}: no test runs ```{language} blocks; use rust, python, js \
                                 or text, or mark it `{language} no-run: <reason>`"
                            )
                        });
                    let source = read(&Path::new(ROOT).join(runner));
                    assert!(
                        source.contains(&format!("'{name}'"))
                            || source.contains(&format!("\"{name}\"")),
                        "{at}: {runner} must list {name} among the READMEs it runs"
                    );
                }
            }
        }
    }
    assert!(counted >= 12, "found {counted} blocks");
}

/// The subcommands `lendkit --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .filter(|c| c != "help")
        .collect()
}

/// The command lines of a README: each line of its shell and text blocks (without comments),
/// and its inline code spans.
fn command_lines(text: &str) -> Vec<String> {
    let mut code: Vec<String> = blocks(text)
        .into_iter()
        .filter(|b| matches!(b.language(), "sh" | "text"))
        .flat_map(|b| {
            b.code
                .lines()
                .map(|l| l.split(" #").next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            code.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    code
}

#[test]
fn every_subcommand_a_readme_names_exists() {
    let subcommands = subcommands();
    assert!(subcommands.len() >= 17, "{subcommands:?}");
    let mut named = 0;
    for file in readmes() {
        let name = relative(&file);
        for code in command_lines(&read(&file)) {
            let words: Vec<&str> = code.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                // `lendkit books`, `$ lendkit join …`, `cargo run --release -- demo`.
                let next = match *w {
                    "lendkit" => words.get(i + 1),
                    "--" if i >= 2 && words[..i].contains(&"run") => words.get(i + 1),
                    _ => None,
                };
                // Placeholders (`…`, `<command>`) and flags are not subcommands.
                let word = |s: &&&str| s.starts_with(|c: char| c.is_ascii_lowercase());
                if let Some(sub) = next.filter(word) {
                    named += 1;
                    assert!(
                        subcommands.iter().any(|c| c == sub),
                        "{name} names `lendkit {sub}`, which does not exist (in: {code})"
                    );
                }
            }
        }
    }
    assert!(named >= 8, "found {named} subcommands named");

    // The list in README.md names only subcommands, and the README shows every subcommand.
    let readme = read(&Path::new(ROOT).join("README.md"));
    let list = readme
        .split("\nSubcommands: ")
        .nth(1)
        .expect("README.md lists the subcommands")
        .split("\n\n")
        .next()
        .unwrap();
    let listed: Vec<&str> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|item| item.split_whitespace().next())
        .filter(|item| !item.starts_with('-'))
        .collect();
    for item in &listed {
        assert!(
            subcommands.iter().any(|c| c == item),
            "README.md lists `{item}`"
        );
    }
    for sub in &subcommands {
        assert!(
            listed.contains(&sub.as_str()) || readme.contains(&format!("-- {sub}")),
            "README.md never shows `lendkit {sub}`"
        );
    }
}

/// Splits a command line as a shell would for the simple cases a README shows: words, and
/// text in double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "an unclosed quote in {line}");
    if started {
        words.push(word);
    }
    words
}

/// `…` in an expected line stands for any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split('…').collect();
    let (first, rest) = parts.split_first().unwrap();
    let Some(mut left) = actual.strip_prefix(first) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        if i + 1 == rest.len() {
            return left.ends_with(part);
        }
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.is_empty()
}

/// A line that is only `…` stands for any number of lines.
fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "…" => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => match actual.split_first() {
            Some((line, more)) => line_matches(first, line) && lines_match(rest, more),
            None => false,
        },
    }
}

/// Columns are aligned differently on a narrow page: compare lines with runs of spaces as one.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_cli_session_in_the_readme_is_what_the_cli_prints() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let sessions: Vec<Block> = blocks(&readme)
        .into_iter()
        .filter(|b| b.language() == "text" && b.no_run().is_none())
        .collect();
    assert!(!sessions.is_empty(), "README.md shows a CLI session");
    for session in sessions {
        let dir = tempfile::tempdir().unwrap();
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        for line in session.code.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => commands.push((command.to_owned(), Vec::new())),
                None => commands
                    .last_mut()
                    .expect("a session starts with a `$ lendkit` line")
                    .1
                    .push(squeeze(line)),
            }
        }
        for (command, expected) in commands {
            let words = shell_words(&command);
            assert_eq!(words[0], "lendkit", "{command}");
            let out = Command::new(env!("CARGO_BIN_EXE_lendkit"))
                .args(&words[1..])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let fails = expected.iter().any(|l| l.starts_with("error "));
            assert_eq!(
                !out.status.success(),
                fails,
                "`{command}`: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if expected.is_empty() {
                continue; // the README does not show this command's output
            }
            let actual: Vec<String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .chain(String::from_utf8(out.stderr).unwrap().lines())
                .map(squeeze)
                .collect();
            assert!(
                lines_match(&expected, &actual),
                "README.md line {}: `$ {command}` shows\n{}\nbut the CLI prints\n{}",
                session.line,
                expected.join("\n"),
                actual.join("\n")
            );
        }
    }
}

#[test]
fn the_session_matcher_is_strict() {
    let lines = |s: &str| s.lines().map(squeeze).collect::<Vec<_>>();
    assert!(lines_match(&lines("a\n…\nd …"), &lines("a\nb\nc\nd e f")));
    assert!(lines_match(
        &lines("{\"a\":1,…}"),
        &lines("{\"a\":1,\"b\":2}")
    ));
    assert!(!lines_match(
        &lines("{\"a\":1,…}"),
        &lines("{\"b\":2,\"a\":1}")
    ));
    assert!(!lines_match(&lines("a\nb"), &lines("a\nb\nc")));
    assert!(!lines_match(&lines("a  b"), &lines("a c")));
    assert_eq!(
        shell_words(r#"lendkit register-book isbn-1 "Domain-Driven Design" --copies 1"#),
        [
            "lendkit",
            "register-book",
            "isbn-1",
            "Domain-Driven Design",
            "--copies",
            "1"
        ]
    );
}
