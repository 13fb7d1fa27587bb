//! Finds the caption fonts on the build machine and copies them into `OUT_DIR`, so the crate can
//! `include_bytes!` them and a deployed binary needs no font files.
//!
//! Fonts are not committed to the repository: they come from Debian packages
//! (`fonts-league-spartan`, `fonts-dejavu-core`). `STORYREEL_FONT_DIR` is searched first, so a
//! build machine without those packages can point at a folder holding the same files.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where Debian installs fonts; searched after `STORYREEL_FONT_DIR`.
const SYSTEM_FONT_DIR: &str = "/usr/share/fonts";
/// Font folders are shallow (`/usr/share/fonts/opentype/<package>/`); the bound keeps a symlink
/// loop or an odd `STORYREEL_FONT_DIR` from making the build walk forever.
const MAX_DEPTH: usize = 6;

struct Wanted {
    /// Name of the copy in `OUT_DIR`, which `src/fonts.rs` includes.
    out_name: &'static str,
    /// File names in order of preference.
    candidates: &'static [&'static str],
    package: &'static str,
}

const WANTED: &[Wanted] = &[
    Wanted {
        out_name: "caption-font.otf",
        candidates: &["LeagueSpartan-Black.otf", "LeagueSpartan-ExtraBold.otf"],
        package: "fonts-league-spartan",
    },
    Wanted {
        out_name: "fallback-font.ttf",
        candidates: &["DejaVuSans-Bold.ttf"],
        package: "fonts-dejavu-core",
    },
];

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STORYREEL_FONT_DIR");

    let mut roots = Vec::new();
    if let Some(dir) = env::var_os("STORYREEL_FONT_DIR").filter(|d| !d.is_empty()) {
        // A font added to the override folder later must be picked up (cargo watches the
        // whole tree of a directory).
        println!("cargo:rerun-if-changed={}", PathBuf::from(&dir).display());
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from(SYSTEM_FONT_DIR));

    let out_dir = match env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            eprintln!("error: OUT_DIR is not set (this script must be run by cargo)");
            return ExitCode::FAILURE;
        }
    };

    let mut chosen = Vec::new();
    for wanted in WANTED {
        let Some(path) = find_font(&roots, wanted.candidates) else {
            eprintln!(
                "error: storyreel-captions needs the font {} (one of {}) and found it in none of {}\n\
                 help: install it with `apt-get install {}` (or `apt-get install fonts-league-spartan \
                 fonts-dejavu-core`), or set STORYREEL_FONT_DIR to a folder holding it",
                wanted.candidates[0],
                wanted.candidates.join(", "),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                wanted.package,
            );
            return ExitCode::FAILURE;
        };
        println!("cargo:rerun-if-changed={}", path.display());
        let dest = out_dir.join(wanted.out_name);
        if let Err(e) = fs::copy(&path, &dest) {
            eprintln!(
                "error: cannot copy {} to {}: {e}",
                path.display(),
                dest.display()
            );
            return ExitCode::FAILURE;
        }
        chosen.push((wanted.out_name, path));
    }

    // The names of the chosen files are recorded so the crate can report which fonts it embeds.
    let mut names = String::new();
    for (out_name, path) in &chosen {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let konst = if out_name.starts_with("caption") {
            "CAPTION_FONT_FILE"
        } else {
            "FALLBACK_FONT_FILE"
        };
        names.push_str(&format!("pub const {konst}: &str = {file:?};\n"));
    }
    if let Err(e) = fs::write(out_dir.join("font_names.rs"), names) {
        eprintln!(
            "error: cannot write font_names.rs to {}: {e}",
            out_dir.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The preferred candidate found under the first root that holds any: an override folder wins
/// over the system fonts even with a less preferred weight.
fn find_font(roots: &[PathBuf], candidates: &[&str]) -> Option<PathBuf> {
    for root in roots {
        for name in candidates {
            if let Some(found) = find_file(root, name, 0) {
                return Some(found);
            }
        }
    }
    None
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    if depth > MAX_DEPTH {
        return None;
    }
    let direct = dir.join(name);
    if direct.is_file() {
        return Some(direct);
    }
    let mut subdirs: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    // Sorted so the same machine always picks the same copy.
    subdirs.sort();
    subdirs
        .iter()
        .find_map(|sub| find_file(sub, name, depth + 1))
}
