//! Where things are: the repository root and its scripts.

use std::path::PathBuf;

/// The repository root (the workspace directory holding `scripts/`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The path of a script in `scripts/`.
pub fn script(name: &str) -> PathBuf {
    root().join("scripts").join(name)
}
