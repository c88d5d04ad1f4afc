//! CRI log format writer: `<RFC3339Nano> <stream> <P|F> <content>\n`, one record per line,
//! `P` for chunks of a line longer than the buffer. The shim owns the file; nothing flows
//! through the daemon, so a restarted daemon loses no lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use chrono::{SecondsFormat, Utc};

/// Longest chunk written as one record before it is split with `P`.
pub const MAX_LINE: usize = 16 * 1024;

pub struct LogStream {
    pub name: &'static str,
    buf: Vec<u8>,
}

impl LogStream {
    pub fn new(name: &'static str) -> LogStream {
        LogStream {
            name,
            buf: Vec::new(),
        }
    }

    /// Appends `data`, writing every completed line (and over-long chunks as partial).
    pub fn feed(&mut self, data: &[u8], out: &mut Option<File>) {
        self.buf.extend_from_slice(data);
        let mut records = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl;
            let mut line = start;
            while end - line > MAX_LINE {
                records.extend(record(self.name, 'P', &self.buf[line..line + MAX_LINE]));
                line += MAX_LINE;
            }
            records.extend(record(self.name, 'F', &self.buf[line..end]));
            start = end + 1;
        }
        self.buf.drain(..start);
        while self.buf.len() > MAX_LINE {
            records.extend(record(self.name, 'P', &self.buf[..MAX_LINE]));
            self.buf.drain(..MAX_LINE);
        }
        write(out, &records);
    }

    /// At EOF: the unterminated tail becomes a full line.
    pub fn finish(&mut self, out: &mut Option<File>) {
        if !self.buf.is_empty() {
            let r = record(self.name, 'F', &self.buf);
            write(out, &r);
            self.buf.clear();
        }
    }
}

fn record(stream: &str, tag: char, content: &[u8]) -> Vec<u8> {
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut r = Vec::with_capacity(content.len() + 48);
    r.extend_from_slice(ts.as_bytes());
    r.push(b' ');
    r.extend_from_slice(stream.as_bytes());
    r.push(b' ');
    r.push(tag as u8);
    r.push(b' ');
    r.extend_from_slice(content);
    r.push(b'\n');
    r
}

fn write(out: &mut Option<File>, bytes: &[u8]) {
    if let Some(f) = out {
        if !bytes.is_empty() {
            let _ = f.write_all(bytes);
        }
    }
}

pub fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_partials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.log");
        let mut f = Some(open(&p).expect("open"));
        let mut s = LogStream::new("stdout");
        s.feed(b"hello\nwor", &mut f);
        s.feed(b"ld\n", &mut f);
        s.feed(&vec![b'x'; MAX_LINE + 10], &mut f);
        s.feed(b"\ntail", &mut f);
        s.finish(&mut f);
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].ends_with(" stdout F hello"));
        assert!(lines[1].ends_with(" stdout F world"));
        assert!(lines[2].contains(" stdout P xxx"));
        assert!(lines[3].ends_with(&format!(" stdout F {}", "x".repeat(10))));
        assert!(lines[4].ends_with(" stdout F tail"));
        let ts = lines[0].split(' ').next().expect("ts");
        assert_eq!(ts.len(), "2026-11-22T12:00:00.123456789Z".len());
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok());
    }
}
