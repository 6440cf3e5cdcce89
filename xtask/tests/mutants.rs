//! Every page, edited the ways a relay's export or a hand goes wrong (cut short, a line
//! lost or doubled, a value or an indent changed): regen either takes it or refuses it
//! with an error that names the page. It never panics. The pages are the vendored ones
//! under `specs/` and the test pages of other families and of rendered relays (beside them
//! under `specs/apifox/`, as `families.rs` and `rendered.rs` put them); the edits are drawn
//! from the pages themselves, so a page added to any of them is swept too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

mod common;
use common::*;

/// The pages under `specs/apifox/` (markdown and rendered text), relative to `specs/`.
fn pages(specs: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, base, out);
            } else if p.extension().is_some_and(|e| e == "md" || e == "txt") {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(&specs.join("apifox"), specs, &mut out);
    out
}

/// A small deterministic generator (xorshift), so a failure names an edit that can be
/// made again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Values a YAML scalar may be turned into: YAML syntax out of place, other types,
/// numbers out of range, text that is no ASCII.
const VALUES: &[&str] =
    &["[", "{", "'", "\"", "&a", "*a", "!!binary x", "~", "-1e999", "1e400", "0x1f", "[]", "{}", "null", "-", "|", "é 图像", "true", "? x"];

/// One edit of `text`, described.
fn mutate(text: &str, rng: &mut Rng) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let at = rng.below(lines.len());
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let what = match rng.below(6) {
        0 => {
            out.truncate(at);
            format!("cut before line {}", at + 1)
        }
        1 => {
            out.remove(at);
            format!("line {} lost", at + 1)
        }
        2 => {
            out.insert(at, lines[at].to_string());
            format!("line {} doubled", at + 1)
        }
        3 => {
            let v = VALUES[rng.below(VALUES.len())];
            match lines[at].split_once(": ") {
                Some((k, _)) => out[at] = format!("{k}: {v}"),
                None => out[at] = format!("{}{v}", lines[at]),
            }
            format!("line {} valued {v:?}", at + 1)
        }
        4 => {
            out[at] = format!(" {}", lines[at]);
            format!("line {} indented one more", at + 1)
        }
        _ => {
            out[at] = lines[at].trim_start().to_string();
            format!("line {} unindented", at + 1)
        }
    };
    (out.join("\n") + "\n", what)
}

/// A scratch project with every page to sweep under `specs/apifox/`.
fn scratch(worker: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("falq-mutants-{}-{worker}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("specs"), &dir.join("specs"));
    copy_dir(&root().join("xtask/tests/families"), &dir.join("specs/apifox/families"));
    copy_dir(&root().join("xtask/tests/rendered"), &dir.join("specs/apifox/rendered"));
    dir
}

/// Makes `per_page` edits of each page in turn in the scratch project `dir`, regenerating
/// after each: answers what went wrong.
fn sweep(dir: &Path, pages: &[(usize, PathBuf)], seed: u64, per_page: usize) -> Vec<String> {
    let specs = dir.join("specs");
    let show = std::env::var_os("FALQ_MUTANTS_SHOW").is_some();
    let mut failures = Vec::new();
    for (index, page) in pages {
        // Each page's edits depend on the seed and the page, not on which worker makes them.
        let mut rng = Rng(seed ^ (*index as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let original = std::fs::read_to_string(specs.join(page)).unwrap();
        for _ in 0..per_page {
            let (edited, what) = mutate(&original, &mut rng);
            std::fs::write(specs.join(page), &edited).unwrap();
            match catch_unwind(AssertUnwindSafe(|| xtask::regen(&specs, dir))) {
                Err(panic) => {
                    let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                    failures.push(format!("{} ({what}): regen panicked: {}", page.display(), why.unwrap_or_default()));
                }
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    if show {
                        eprintln!("--- {} ({what})\n{msg}", page.display());
                    }
                    if !msg.contains(&*page.to_string_lossy().replace('\\', "/")) {
                        failures.push(format!("{} ({what}): the error does not name the page:\n{msg}", page.display()));
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
        std::fs::write(specs.join(page), &original).unwrap();
    }
    failures
}

#[test]
fn an_edited_page_is_taken_or_refused_by_name_never_a_panic() {
    // FALQ_MUTANTS (edits per page) and FALQ_MUTANTS_SEED sweep wider by hand; FALQ_MUTANTS_SHOW
    // prints every refusal, to read what a user would.
    let per_page: usize = std::env::var("FALQ_MUTANTS").ok().and_then(|n| n.parse().ok()).unwrap_or(6);
    let seed = std::env::var("FALQ_MUTANTS_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
    let first = scratch(0);
    if let Err(e) = xtask::regen(&first.join("specs"), &first) {
        panic!("regen refused the pages before any edit:\n{e}");
    }
    let pages: Vec<(usize, PathBuf)> = pages(&first.join("specs")).into_iter().enumerate().collect();
    assert!(!pages.is_empty(), "no page under specs/apifox");
    // One worker per core, each in a project of its own, the pages dealt out in turn.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pages.len());
    let dirs: Vec<PathBuf> = std::iter::once(first).chain((1..workers).map(scratch)).collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(w, dir)| {
                let mine: Vec<(usize, PathBuf)> = pages.iter().filter(|(i, _)| i % workers == w).cloned().collect();
                s.spawn(move || sweep(dir, &mine, seed, per_page))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a sweep worker")).collect()
    });
    for dir in &dirs {
        std::fs::remove_dir_all(dir).ok();
    }
    assert!(failures.is_empty(), "{} of {} edits:\n{}", failures.len(), pages.len() * per_page, failures.join("\n\n"));
}
