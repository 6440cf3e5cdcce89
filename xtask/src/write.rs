//! Stage 5, write: a file is written only when its content changed; in check mode
//! nothing is written and a diff of every stale file is returned instead.

use std::path::{Path, PathBuf};

/// A file the pipeline produces, relative to the project root.
#[derive(Clone, Debug)]
pub struct Output {
    /// Where it goes, relative to the project root.
    pub path: PathBuf,
    /// Its full content.
    pub content: String,
}

/// What writing (or checking) found.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Files that were (or, in check mode, would be) changed.
    pub changed: Vec<PathBuf>,
    /// In check mode, a unified diff of each changed file.
    pub diff: String,
}

/// Writes each output whose content differs from the file on disk (line endings aside:
/// a checkout with CRLF endings is not stale); with `check`, writes nothing and collects a
/// diff instead. A file that exists but cannot be read is an error, never overwritten
/// blindly. Generated files (`.rs` files opening with the do-not-edit header) under each
/// output's directory that regen no longer produces are stale: removed, or in check mode
/// reported.
pub fn ensure_files(root: &Path, outputs: &[Output], check: bool) -> std::io::Result<WriteReport> {
    let mut report = WriteReport::default();
    for out in outputs {
        let full = root.join(&out.path);
        let old = match std::fs::read(&full) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: not UTF-8: {e}", out.path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", out.path.display()))),
        };
        if old.replace("\r\n", "\n") == out.content {
            continue;
        }
        report.changed.push(out.path.clone());
        if check {
            report.diff.push_str(&diff(&out.path, &old, &out.content, 120));
        } else {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&full, &out.content)?;
        }
    }
    for stale in stale_files(root, outputs)? {
        report.changed.push(stale.clone());
        if check {
            report.diff.push_str(&format!("--- a/{}\n+++ /dev/null (no longer generated)\n", stale.display()));
        } else {
            std::fs::remove_file(root.join(&stale))?;
        }
    }
    Ok(report)
}

/// Generated `.rs` files in the outputs' directories that no output produces.
fn stale_files(root: &Path, outputs: &[Output]) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = outputs
        .iter()
        .filter(|o| o.path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|o| o.path.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut stale = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else { continue };
        for entry in entries {
            let path = dir.join(entry?.file_name());
            let is_ours = path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(root.join(&path)).is_ok_and(|t| t.starts_with(crate::generate::HEADER));
            if is_ours && !outputs.iter().any(|o| o.path == path) {
                stale.push(path);
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// A unified diff of `old` → `new`, cut after `max_lines` lines.
pub fn diff(path: &Path, old: &str, new: &str, max_lines: usize) -> String {
    let shown = path.display().to_string();
    let text = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{shown}"), &format!("b/{shown}"))
        .to_string();
    let total = text.lines().count();
    let mut out: String = text.lines().take(max_lines).map(|l| format!("{l}\n")).collect();
    if total > max_lines {
        out.push_str(&format!("... {} more diff lines\n", total - max_lines));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_writes_nothing_and_diffs() {
        let dir = std::env::temp_dir().join(format!("falq-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "one\ntwo\n").unwrap();
        let outs =
            [Output { path: "a.txt".into(), content: "one\nthree\n".into() }, Output { path: "b.txt".into(), content: "new\n".into() }];
        let r = ensure_files(&dir, &outs, true).unwrap();
        assert_eq!(r.changed, vec![PathBuf::from("a.txt"), PathBuf::from("b.txt")]);
        assert!(r.diff.contains("-two") && r.diff.contains("+three") && r.diff.contains("+new"), "{}", r.diff);
        assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "one\ntwo\n");
        assert!(!dir.join("b.txt").exists());
        let r = ensure_files(&dir, &outs, false).unwrap();
        assert_eq!(r.changed.len(), 2);
        let r = ensure_files(&dir, &outs, false).unwrap();
        assert!(r.changed.is_empty(), "unchanged content is not written again");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crlf_is_not_stale_unreadable_is_an_error_and_stale_generated_files_go() {
        let dir = std::env::temp_dir().join(format!("falq-write2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/a.rs"), format!("{}fn a() {{}}\n", crate::generate::HEADER).replace('\n', "\r\n")).unwrap();
        std::fs::write(dir.join("src/old.rs"), format!("{}fn gone() {{}}\n", crate::generate::HEADER)).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "//! hand-written\n").unwrap();
        let outs = [Output { path: "src/a.rs".into(), content: format!("{}fn a() {{}}\n", crate::generate::HEADER) }];
        let r = ensure_files(&dir, &outs, true).unwrap();
        assert_eq!(r.changed, vec![PathBuf::from("src/old.rs")], "only the stale generated file: {r:?}");
        ensure_files(&dir, &outs, false).unwrap();
        assert!(!dir.join("src/old.rs").exists() && dir.join("src/lib.rs").exists(), "hand-written files stay");
        std::fs::write(dir.join("src/a.rs"), [0xffu8, 0xfe]).unwrap();
        let e = ensure_files(&dir, &outs, false).unwrap_err();
        assert!(e.to_string().contains("src/a.rs") && e.to_string().contains("UTF-8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
