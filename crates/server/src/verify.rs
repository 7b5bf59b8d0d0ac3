//! `sundial verify`: checks every block checksum and block statistics of every data
//! file under a data directory, offline (like `influx_inspect verify`). Works on
//! the all-in-one server's directory and on a `sundial-store`'s alike.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sundial_engine::tsfile::TsFile;

/// Data files (`*.tsf`) under `dir`, sorted.
fn data_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let path = e.path();
        if e.file_type()?.is_dir() {
            data_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "tsf") {
            out.push(path);
        }
    }
    Ok(())
}

/// Prints one line per file and a summary; returns the number of damaged files.
pub fn verify(dir: &Path, out: &mut impl Write) -> Result<usize> {
    let mut files = Vec::new();
    data_files(dir, &mut files)?;
    files.sort();
    let (mut damaged, mut blocks) = (0, 0);
    for path in &files {
        let check = TsFile::open(path).and_then(|f| f.check());
        match check {
            Ok(c) if c.broken.is_empty() => {
                blocks += c.blocks;
                writeln!(
                    out,
                    "{}: healthy ({} series, {} blocks)",
                    path.display(),
                    c.series,
                    c.blocks
                )?;
            }
            Ok(c) => {
                damaged += 1;
                blocks += c.blocks;
                writeln!(
                    out,
                    "{}: {} of {} blocks damaged",
                    path.display(),
                    c.broken.len(),
                    c.blocks
                )?;
                for b in &c.broken {
                    writeln!(out, "  {b}")?;
                }
            }
            Err(e) => {
                damaged += 1;
                writeln!(out, "{}: unreadable: {e}", path.display())?;
            }
        }
    }
    writeln!(
        out,
        "verified {} files, {blocks} blocks: {damaged} damaged",
        files.len()
    )?;
    Ok(damaged)
}
