//! Helpers shared by xtask's test binaries: the checkout, and copying `specs/` into a
//! scratch directory a test may change.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The checkout's root.
pub fn root() -> PathBuf {
    xtask::project_root().expect("the checkout")
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
