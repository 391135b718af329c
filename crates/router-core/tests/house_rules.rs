//! The house rules of the source tree, checked on every file of the workspace's crates and
//! examples: no source file over 500 lines (tests and fixtures aside) and no function over 120
//! lines, so each file holds one idea and each function can be read at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 120;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("examples"), &mut files);
    assert!(files.len() > 50, "the source tree was not found");
    files
}

/// Integration tests (a `tests` folder) and unit-test modules (`tests.rs`).
fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tests")
        || path.file_name().is_some_and(|n| n == "tests.rs")
}

/// Each function's name, first line and length, from `fn` to the closing brace at its own
/// indentation (the tree is rustfmt-formatted). Declarations without a body are skipped.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ]
        .iter()
        .fold(trimmed, |t, prefix| t.strip_prefix(prefix).unwrap_or(t));
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let body_opens = lines[i..]
            .iter()
            .position(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'));
        let Some(open) = body_opens.filter(|&o| lines[i + o].trim_end().ends_with('{')) else {
            continue;
        };
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + open..].iter().position(|l| l.starts_with(&close)) {
            out.push((name, i + 1, open + end + 1));
        }
    }
    out
}

#[test]
fn no_source_file_is_over_500_lines() {
    let long: Vec<String> = workspace_files()
        .into_iter()
        .filter(|p| !is_test_file(p))
        .filter_map(|p| {
            let n = std::fs::read_to_string(&p).unwrap().lines().count();
            (n > MAX_FILE_LINES).then(|| format!("{}: {n} lines", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_function_is_over_120_lines() {
    let mut long = Vec::new();
    for path in workspace_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, line, n) in functions(&text) {
            if n > MAX_FN_LINES {
                long.push(format!("{}:{line} {name}: {n} lines", path.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_are_measured_from_fn_to_its_closing_brace() {
    let text = "fn a() {\n    x();\n}\n\ntrait T {\n    fn declared(\n        &self,\n    ) -> u8;\n    fn b(&self) -> u8 {\n        1\n    }\n}\n";
    assert_eq!(
        functions(text),
        [("a".to_string(), 1, 3), ("b".to_string(), 9, 3)]
    );
}

/// Unsafe code is denied everywhere but in one audited place: the binary's calls into glibc's
/// allocator (`allocator.rs`).
#[test]
fn unsafe_code_is_allowed_in_one_place_only() {
    let allowed: Vec<PathBuf> = workspace_files()
        .into_iter()
        .filter(|p| !is_test_file(p))
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains(concat!("allow(", "unsafe_code)"))
        })
        .collect();
    let names: Vec<String> = allowed
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    assert!(
        names.len() == 1 && names[0].ends_with("crates/router-bin/src/allocator.rs"),
        "{names:?}"
    );
    let audited = std::fs::read_to_string(&allowed[0]).unwrap();
    assert_eq!(audited.matches("unsafe {").count(), 1, "one unsafe block");
}
