//! A check of a crate's module layering: its `lib.rs` documents its top-level modules in a
//! `# Modules` section (a text block, top first), and no module may refer (`crate::NAME`) to one
//! listed above it, so the crate has no module cycles. Crates call [`violations`] from a test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The modules in the crate doc's list, top first.
fn documented_order(lib: &str) -> Vec<String> {
    let section = lib
        .split("//! # Modules")
        .nth(1)
        .expect("lib.rs has a # Modules section");
    let block = section
        .split("//! ```text")
        .nth(1)
        .and_then(|b| b.split("//! ```").next())
        .expect("the section has a text block");
    block
        .lines()
        .filter_map(|line| line.strip_prefix("//! "))
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names as `crate::NAME`, outside comments.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// What breaks the layering of the crate whose sources are in `src`: upward references, and
/// modules missing from (or listed in vain in) the documented order. Empty when it holds.
///
/// # Panics
/// When `src/lib.rs` cannot be read or has no `# Modules` section with a text block.
pub fn violations(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let order = documented_order(&lib);
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut seen = Vec::new();
    let mut violations = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("below src");
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = rank.get(module.as_str()) else {
            violations.push(format!(
                "module {module} is missing from the list in lib.rs"
            ));
            continue;
        };
        seen.push(module.clone());
        let text = std::fs::read_to_string(&file).expect("source");
        for used in references(&text) {
            if used == module {
                continue;
            }
            match rank.get(used.as_str()) {
                Some(&r) if r > own => {}
                _ => violations.push(format!("{} uses crate::{used}", relative.display())),
            }
        }
    }
    for module in &order {
        if !seen.contains(module) {
            violations.push(format!("lib.rs lists {module}, which has no source"));
        }
    }
    violations
}
