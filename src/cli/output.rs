//! Small printing helpers shared by subcommands.

use iocmatch::time::Timestamp;

/// Whether an error chain ends in a closed pipe (`iocmatch ... | head`): that ends quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Parses a `--now`-style timestamp argument.
pub fn parse_time_arg(s: &str) -> Result<Timestamp, String> {
    if s == "now" {
        return Ok(Timestamp::now());
    }
    Timestamp::parse(s).ok_or_else(|| {
        format!("invalid timestamp {s:?}: use ISO 8601 such as 2026-11-28T16:00:00Z, or M/D/YYYY")
    })
}

/// A confidence as KQL prints a real: no fraction when integral.
pub fn confidence(c: Option<f64>) -> String {
    c.map(iocmatch::hunt::format_real).unwrap_or_default()
}

/// A nullable timestamp (empty when null).
pub fn time(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// Opens an index, naming the file in any error.
pub fn open_index(path: &std::path::Path) -> anyhow::Result<iocmatch::Index> {
    use anyhow::Context;
    iocmatch::Index::open(path).with_context(|| format!("cannot open index {}", path.display()))
}

/// Standard output, or a file written atomically (a temporary file renamed into place by
/// [`Out::finish`]; dropped unfinished, the temporary file is removed).
pub struct Out {
    w: std::io::BufWriter<Box<dyn std::io::Write>>,
    tmp: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Out {
    /// Opens the destination.
    pub fn open(path: Option<&std::path::Path>) -> anyhow::Result<Out> {
        use anyhow::Context;
        match path {
            None => Ok(Out {
                w: std::io::BufWriter::with_capacity(1 << 16, Box::new(std::io::stdout())),
                tmp: None,
            }),
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => std::path::PathBuf::from("."),
                };
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot write {}", p.display()))?;
                Ok(Out {
                    w: std::io::BufWriter::with_capacity(1 << 16, Box::new(f)),
                    tmp: Some((tmp, p.to_path_buf())),
                })
            }
        }
    }

    /// Flushes and, for a file, renames it into place.
    pub fn finish(mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        use std::io::Write;
        self.w.flush()?;
        if let Some((tmp, dest)) = self.tmp.take() {
            std::fs::rename(&tmp, &dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        Ok(())
    }
}

impl std::io::Write for Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.w.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
