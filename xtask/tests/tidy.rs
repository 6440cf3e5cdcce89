//! House rules no compiler checks: every Rust file of the project says what lives in it.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let root = xtask::project_root().expect("the checkout");
    let mut files = Vec::new();
    for dir in ["xtask", "crates", "tests", "generated"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 40, "found {} files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Generated files open with the do-not-edit header, then their `//!` lines.
        let text = text.strip_prefix(xtask::generate::HEADER).unwrap_or(&text);
        let generated = text.len() < std::fs::metadata(f).unwrap().len() as usize;
        if !text.starts_with("//!") && (!generated || !f.ends_with("generated.rs")) {
            bad.push(f.strip_prefix(&root).unwrap_or(f).display().to_string());
        }
    }
    assert!(bad.is_empty(), "these files do not open with a `//!` line saying what lives there:\n{}", bad.join("\n"));
}
