//! `clawster-docgen OUT_DIR`: writes the man pages (`OUT_DIR/man/*.1`, one per command and
//! subcommand) and the bash, zsh and fish completions (`OUT_DIR/completions/<shell>/…`) of the
//! three binaries, from the same clap definitions the binaries parse with, so they never drift.
//! `packaging/build-release` runs it and lists every file it writes in `dist/manifest.json`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// The binaries and their command definitions.
fn commands() -> Vec<clap::Command> {
    vec![
        clawster_agent::cli::Cli::command(),
        clawster_nat_agent::cli::Cli::command(),
        clawsterctl::cli::Cli::command(),
    ]
}

/// Where a shell looks for a completion file, relative to `completions/<shell>/`.
fn completion_file(shell: Shell, bin: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{bin}"),
        Shell::Fish => format!("{bin}.fish"),
        _ => bin.to_string(),
    }
}

fn generate(out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for cmd in commands() {
        let bin = cmd.get_name().to_string();
        let man = out.join("man");
        std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
        let before: Vec<_> = list(&man)?;
        clap_mangen::generate_to(cmd.clone(), &man)
            .with_context(|| format!("writing the man pages of {bin}"))?;
        written.extend(list(&man)?.into_iter().filter(|p| !before.contains(p)));
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let dir = out.join("completions").join(shell.to_string());
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(completion_file(shell, &bin));
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &bin, &mut buf);
            if buf.is_empty() {
                bail!("{shell} completion of {bin} came out empty");
            }
            std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        v.push(e?.path());
    }
    Ok(v)
}

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!("usage: clawster-docgen OUT_DIR");
    };
    let out = PathBuf::from(out);
    let mut written = generate(&out)?;
    written.sort();
    for p in written {
        // One path per line, relative to OUT_DIR: build-release lists them in the manifest.
        println!("{}", p.strip_prefix(&out).unwrap_or(&p).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_gets_man_pages_and_three_completions() {
        let dir = tempfile_dir();
        let files = generate(&dir).expect("generate");
        for cmd in commands() {
            let bin = cmd.get_name().to_string();
            assert!(
                files.contains(&dir.join("man").join(format!("{bin}.1"))),
                "{files:?}"
            );
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let page = dir.join("man").join(format!("{bin}-{}.1", sub.get_name()));
                assert!(files.contains(&page), "no man page {}", page.display());
            }
            let bash = std::fs::read_to_string(dir.join("completions/bash").join(&bin))
                .expect("bash completion");
            assert!(bash.contains(&bin), "{bash}");
            assert!(dir.join(format!("completions/zsh/_{bin}")).is_file());
            assert!(dir.join(format!("completions/fish/{bin}.fish")).is_file());
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn every_subcommand_help_ends_with_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let here = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &here, missing);
                } else if sub.is_hide_set() {
                    continue;
                } else {
                    let after = sub
                        .get_after_help()
                        .or(sub.get_after_long_help())
                        .map(|h| h.to_string())
                        .unwrap_or_default();
                    if !after.starts_with("Example") {
                        missing.push(here);
                    }
                }
            }
        }
        let mut missing = Vec::new();
        for cmd in commands() {
            walk(&cmd, cmd.get_name(), &mut missing);
        }
        assert!(
            missing.is_empty(),
            "--help of these does not end with examples: {missing:?}"
        );
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("clawster-docgen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }
}
