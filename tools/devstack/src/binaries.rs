//! Building and locating the stack's binaries.
//!
//! FC and Lambda start a binary called `bootstrap`. Two binaries of one name in one workspace
//! collide at `target/<profile>/<name>`, where cargo links whichever it built last. The stack
//! therefore takes each package's binary from `target/<profile>/deps/<name>-<hash>`, identified by
//! the inode cargo hard-linked and checked against that package's fingerprint directory
//! (`.fingerprint/<package>-<hash>/bin-<name>`); if the linked file is another package's, it
//! builds that package on its own and looks again. The copies go to
//! `target/<profile>/devstack-bin/<package>/`, bit for bit the binaries cargo built, named as
//! deployed (`bootstrap` for the functions).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// `dev`: unoptimised, quick to build (the hash crates are optimised anyway).
    Debug,
    /// `release`: LTO, one codegen unit; slow to build, fast to run.
    Release,
}

/// The programs the stack runs, besides moto.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `oss-emulator`.
    pub oss_emulator: PathBuf,
    /// The forwarder's `bootstrap` (an FC custom runtime).
    pub forwarder: PathBuf,
    /// The replicator's `bootstrap` (a Lambda `provided.al2023` function).
    pub replicator: PathBuf,
    /// The `oss2s3` command line, for the demo's backfill and verify (`None`: not built).
    pub cli: Option<PathBuf>,
}

/// The workspace root (where `Cargo.toml` with `[workspace]` is).
pub fn workspace_root() -> &'static Path {
    testkit::repo_root()
}

impl Binaries {
    /// Builds the workspace's binaries with `cargo build --workspace --bins` (progress on
    /// stderr; the same feature resolution as `./scripts/test`, so nothing is built twice) and
    /// returns copies of the three that later builds cannot change under the running stack.
    pub fn build(profile: Profile) -> anyhow::Result<Self> {
        let messages = cargo_build(profile, &["--workspace", "--bins"])?;
        Ok(Self {
            oss_emulator: resolve(profile, &messages, "oss-emulator", "oss-emulator")?,
            forwarder: resolve(profile, &messages, "oss-forwarder", "bootstrap")?,
            replicator: resolve(profile, &messages, "replicator", "bootstrap")?,
            cli: Some(resolve(profile, &messages, "oss2s3-cli", "oss2s3")?),
        })
    }
}

/// Runs `cargo build <args> --message-format json…` in the workspace; returns its messages.
fn cargo_build(profile: Profile, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace_root())
        .arg("build")
        .args(args)
        .args(["--message-format", "json-render-diagnostics"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped());
    if profile == Profile::Release {
        command.arg("--release");
    }
    let output = command
        .output()
        .with_context(|| format!("run cargo build {}", args.join(" ")))?;
    if !output.status.success() {
        bail!("cargo build {} failed", args.join(" "));
    }
    Ok(output.stdout)
}

/// A stable copy (named `copy_as`; functions are deployed as `bootstrap`, whatever cargo calls
/// them) of exactly `package`'s binary from the build that printed `messages`. If the linked
/// file is another package's (same binary name), the package is built on its own.
fn resolve(
    profile: Profile,
    messages: &[u8],
    package: &str,
    copy_as: &str,
) -> anyhow::Result<PathBuf> {
    let mut messages = messages.to_vec();
    // Building the package alone relinks its binary; a concurrent build of a same-named one
    // may relink it again before we look, hence a few tries.
    for _ in 0..3 {
        let (bin, linked) = executable_from_messages(&messages, package)
            .with_context(|| format!("cargo did not report a binary of {package}"))?;
        if let Some(source) = package_binary(&linked, package, &bin)? {
            return stable_copy(&source, &linked, package, copy_as);
        }
        messages = cargo_build(profile, &["-p", package, "--bins"])?;
    }
    bail!("could not identify the binary of {package} (concurrent builds kept relinking it)")
}

/// The binary name and `executable` of the compiler-artifact message for `package`'s binary.
fn executable_from_messages(stdout: &[u8], package: &str) -> Option<(String, PathBuf)> {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["executable"].is_string())
        .filter(|m| {
            m["package_id"].as_str().is_some_and(|id| {
                id.contains(&format!("/{package}#")) || id.contains(&format!("#{package}@"))
            })
        })
        .find_map(|m| {
            let bin = m["target"]["name"].as_str()?.to_owned();
            Some((bin, PathBuf::from(m["executable"].as_str()?)))
        })
}

/// The file in `deps/` that `linked` is a hard link of, if it belongs to `package`.
fn package_binary(linked: &Path, package: &str, bin: &str) -> anyhow::Result<Option<PathBuf>> {
    let profile_dir = linked.parent().context("binary has a parent directory")?;
    let inode = std::fs::metadata(linked)
        .with_context(|| format!("stat {}", linked.display()))?
        .ino();
    // rustc names the file after the crate, with `-` turned into `_`.
    let prefix = format!("{}-", bin.replace('-', "_"));
    for entry in std::fs::read_dir(profile_dir.join("deps"))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(hash) = name.strip_prefix(&prefix) else {
            continue;
        };
        if hash.contains('.') || entry.metadata()?.ino() != inode {
            continue;
        }
        let fingerprint = profile_dir
            .join(".fingerprint")
            .join(format!("{package}-{hash}"))
            .join(format!("bin-{bin}"));
        return Ok(fingerprint.exists().then(|| entry.path()));
    }
    // Not a hard link (some filesystems copy): trust it only for unique names.
    Ok((bin != "bootstrap").then(|| linked.to_owned()))
}

/// Copies `source` to `<profile dir>/devstack-bin/<package>/<bin>` atomically (a running copy is never
/// overwritten in place).
fn stable_copy(source: &Path, linked: &Path, package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let dir = linked
        .parent()
        .context("binary has a parent directory")?
        .join("devstack-bin")
        .join(package);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(bin);
    let temp = dir.join(format!(".{bin}.{}.tmp", std::process::id()));
    std::fs::copy(source, &temp)
        .with_context(|| format!("copy {} to {}", source.display(), temp.display()))?;
    std::fs::rename(&temp, &target)?;
    Ok(target)
}
