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

/// Writes each output whose content differs from the file on disk; with `check`,
/// writes nothing and collects a diff instead.
pub fn ensure_files(root: &Path, outputs: &[Output], check: bool) -> std::io::Result<WriteReport> {
    let mut report = WriteReport::default();
    for out in outputs {
        let full = root.join(&out.path);
        let old = std::fs::read_to_string(&full).unwrap_or_default();
        if old == out.content {
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
    Ok(report)
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
}
