//! The one CSV parser of the pipeline's input files: a single pass over the bytes that splits
//! records (RFC 4180: `,` between fields, `"` quoting with `""` inside, LF or CRLF line
//! endings, a UTF-8 byte-order mark ignored) and reads every plain decimal cell as an `f64`
//! on the way, so the caller knows the exact record and field of anything it rejects.
//!
//! The files are all numeric, so a cell is one of: empty (a missing value), a number read by
//! the fast path below, or text the caller looks at more closely (quoted, signed, an exponent,
//! or not a number at all). Memory is one buffer of about [`BUFFER_BYTES`], grown only for a
//! record longer than that.
//!
//! The fast path reads up to 19 digits with at most one `.` into an integer and divides by a
//! power of ten. When both are exact in an `f64` (below 2^53 and 10^22) one IEEE division is
//! correctly rounded, so the value is the one `str::parse::<f64>` gives (Clinger's fast path);
//! anything else goes to `str::parse`.

use std::io::{self, Read};

/// Bytes read from the file at a time.
pub(crate) const BUFFER_BYTES: usize = 1 << 20;

/// Exact powers of ten in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// How a cell that is not a plain number was written; see [`Records::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Unquoted text.
    Plain,
    /// The text between quotes (`""` inside stands for `"`).
    Quoted,
    /// A quoted cell with text after its closing quote: the raw bytes, quotes included.
    Raw,
    /// A quote that is never closed: the raw bytes to the end of the file.
    Unclosed,
}

/// One cell of the current record: where its text is (bytes relative to the record's start,
/// quotes excluded) and what it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cell {
    start: usize,
    end: usize,
    pub(crate) value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Missing,
    Number(f64),
    /// Not a plain number: see [`Form`].
    Text(Form),
}

impl Cell {
    fn new(start: usize, end: usize, value: Value) -> Self {
        Self { start, end, value }
    }

    fn missing(at: usize) -> Self {
        Self::new(at, at, Value::Missing)
    }
}

/// Records of a CSV input, read one at a time; see the module documentation.
pub(crate) struct Records<R> {
    src: R,
    buf: Vec<u8>,
    /// Start of the current record in `buf`.
    pos: usize,
    /// Length of the current record, consumed when the next one is read.
    taken: usize,
    /// End of the valid bytes in `buf`.
    len: usize,
    /// Bytes of the input dropped from the front of `buf` so far.
    dropped: u64,
    eof: bool,
    started: bool,
    cells: Vec<Cell>,
    /// Fields of the current record (cells beyond `max_cells` are counted, not kept).
    fields: usize,
    max_cells: usize,
}

/// How the tokenizer left a record.
enum Scan {
    /// A complete record of this many bytes (line ending included).
    Complete(usize),
    /// The buffer ends inside the record: read more and scan it again.
    NeedMore,
}

impl<R: Read> Records<R> {
    /// Reads from `src`; records with more than `max_cells` fields keep only their count.
    pub(crate) fn new(src: R, max_cells: usize) -> Self {
        Self {
            src,
            buf: vec![0; BUFFER_BYTES],
            pos: 0,
            taken: 0,
            len: 0,
            dropped: 0,
            eof: false,
            started: false,
            cells: Vec::with_capacity(max_cells.min(64)),
            fields: 0,
            max_cells,
        }
    }

    /// Moves to the next record; `false` at the end of the input. Lines of white space at the
    /// end of the input are not records (an editor's trailing newlines); anywhere else a blank
    /// line is a record of one empty or blank field.
    #[inline]
    pub(crate) fn next_record(&mut self) -> io::Result<bool> {
        self.pos += self.taken;
        self.taken = 0;
        if !self.started {
            self.started = true;
            while self.len < 3 && !self.eof {
                self.fill()?;
            }
            if self.buf[..self.len].starts_with(b"\xEF\xBB\xBF") {
                self.pos = 3;
            }
        }
        loop {
            if self.pos == self.len {
                if self.eof {
                    return Ok(false);
                }
                self.fill()?;
                continue;
            }
            match self.scan() {
                Scan::Complete(n) => {
                    self.taken = n;
                    break;
                }
                // Never at the end of input, where every record is complete.
                Scan::NeedMore if self.eof => {
                    return Err(io::Error::other("CSV record incomplete at end of input"))
                }
                Scan::NeedMore => self.fill()?,
            }
        }
        if self.is_blank() && self.rest_is_blank()? {
            return Ok(false);
        }
        Ok(true)
    }

    /// From the next record on, keeps the first `max_cells` cells of each (the rest are
    /// counted only).
    pub(crate) fn keep(&mut self, max_cells: usize) {
        self.max_cells = max_cells;
    }

    /// The source, once reading is over.
    pub(crate) fn into_inner(self) -> R {
        self.src
    }

    /// Bytes of the input up to the end of the current record.
    pub(crate) fn offset(&self) -> u64 {
        self.dropped + (self.pos + self.taken) as u64
    }

    /// Fields of the current record.
    pub(crate) fn fields(&self) -> usize {
        self.fields
    }

    /// Cell `i` of the current record; missing past the cells kept.
    pub(crate) fn cell(&self, i: usize) -> Cell {
        self.cells.get(i).copied().unwrap_or(Cell::missing(0))
    }

    /// The text of a cell as written, for names and messages (quoted text unescaped).
    pub(crate) fn text(&self, cell: Cell) -> String {
        let bytes = &self.buf[self.pos + cell.start..self.pos + cell.end];
        let text = String::from_utf8_lossy(bytes);
        if cell.value == Value::Text(Form::Quoted) {
            text.replace("\"\"", "\"")
        } else {
            text.into_owned()
        }
    }

    /// Compacts the buffer to the current record and reads more after it.
    fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.dropped += self.pos as u64;
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn push(&mut self, cell: Cell) {
        if self.fields < self.max_cells {
            self.cells.push(cell);
        }
        self.fields += 1;
    }

    /// Splits the record at `pos` into cells.
    #[inline]
    fn scan(&mut self) -> Scan {
        self.cells.clear();
        self.fields = 0;
        let eof = self.eof;
        let mut i = 0;
        loop {
            let b = &self.buf[self.pos..self.len];
            let (mut cell, mut end) = if b.get(i) == Some(&b'"') {
                match quoted(b, i, eof) {
                    Some(found) => found,
                    None => return Scan::NeedMore,
                }
            } else {
                let (len, number) = plain(&b[i..]);
                let value = match number {
                    _ if len == 0 => Value::Missing,
                    Some(v) => Value::Number(v),
                    None => Value::Text(Form::Plain),
                };
                (Cell::new(i, i + len, value), i + len)
            };
            // A carriage return that does not end the line belongs to the (unquoted) cell,
            // which is then not a number: the cell runs on to the next delimiter. (A quoted
            // cell followed by one is already raw text.)
            if b.get(end) == Some(&b'\r') && matches!(b.get(end + 1), Some(c) if *c != b'\n') {
                end = delimiter(b, end + 1);
                if end == b.len() && !eof {
                    return Scan::NeedMore;
                }
                cell = Cell::new(i, end, Value::Text(Form::Plain));
            }
            let done = match (b.get(end), b.get(end + 1)) {
                (None, _) if eof => Some(Scan::Complete(end)),
                (None, _) => Some(Scan::NeedMore),
                (Some(b','), _) => None,
                (Some(b'\n'), _) => Some(Scan::Complete(end + 1)),
                // `\r\n`, or a `\r` that is the last byte read so far.
                (Some(_), Some(_)) => Some(Scan::Complete(end + 2)),
                (Some(_), None) if eof => Some(Scan::Complete(end + 1)),
                (Some(_), None) => Some(Scan::NeedMore),
            };
            self.push(cell);
            match done {
                Some(scan) => return scan,
                None => i = end + 1,
            }
        }
    }

    /// Whether the current record is one empty or white-space field.
    fn is_blank(&self) -> bool {
        self.fields == 1
            && self.cells.first().is_some_and(|c| {
                matches!(c.value, Value::Missing | Value::Text(Form::Plain))
                    && self.buf[self.pos + c.start..self.pos + c.end]
                        .iter()
                        .all(u8::is_ascii_whitespace)
            })
    }

    /// Whether nothing but white space follows the current record.
    fn rest_is_blank(&mut self) -> io::Result<bool> {
        let mut at = self.pos + self.taken;
        loop {
            if !self.buf[at..self.len].iter().all(u8::is_ascii_whitespace) {
                return Ok(false);
            }
            if self.eof {
                return Ok(true);
            }
            // What was read so far is white space: look only at what comes next.
            let offset = self.len - self.pos;
            self.fill()?;
            at = self.pos + offset;
        }
    }
}

/// A quoted cell starting at `b[i] == '"'`: the cell and the index of the byte after it, or
/// `None` when the buffer ends inside it before the end of input.
fn quoted(b: &[u8], i: usize, eof: bool) -> Option<(Cell, usize)> {
    let mut j = i + 1;
    loop {
        match b[j..].iter().position(|&c| c == b'"') {
            None if eof => {
                let cell = Cell::new(i, b.len(), Value::Text(Form::Unclosed));
                return Some((cell, b.len()));
            }
            None => return None,
            Some(k) => {
                j += k;
                match b.get(j + 1) {
                    Some(b'"') => j += 2,
                    None if !eof => return None,
                    _ => break,
                }
            }
        }
    }
    let (start, end, after) = (i + 1, j, j + 1);
    let ends_cell = match b.get(after) {
        None | Some(b',' | b'\n') => true,
        Some(b'\r') => !matches!(b.get(after + 1), Some(c) if *c != b'\n'),
        Some(_) => false,
    };
    if !ends_cell {
        let end = delimiter(b, after);
        if end == b.len() && !eof {
            return None;
        }
        return Some((Cell::new(i, end, Value::Text(Form::Raw)), end));
    }
    let content = &b[start..end];
    let value = match plain(content) {
        _ if content.is_empty() => Value::Missing,
        (len, Some(v)) if len == content.len() => Value::Number(v),
        _ => Value::Text(Form::Quoted),
    };
    Some((Cell::new(start, end, value), after))
}

/// Index of the next `,` or `\n` at or after `from` (or the end), less a `\r` before a `\n`.
fn delimiter(b: &[u8], from: usize) -> usize {
    let end = b[from..]
        .iter()
        .position(|&c| c == b',' || c == b'\n')
        .map_or(b.len(), |k| from + k);
    if end > from && b[end - 1] == b'\r' && b.get(end) == Some(&b'\n') {
        end - 1
    } else {
        end
    }
}

/// Scans an unquoted cell: its length (up to `,`, `\n`, `\r` or the end) and its value when
/// it is a plain decimal the fast path reads exactly.
#[inline(always)]
fn plain(b: &[u8]) -> (usize, Option<f64>) {
    let mut mantissa: u64 = 0;
    let mut digits = 0u32;
    // Digits after the point; `None` before a point is seen.
    let mut fraction: Option<u32> = None;
    let mut fast = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'0'..=b'9' => {
                if digits < 19 {
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                } else {
                    fast = false;
                }
                digits += 1;
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            b',' | b'\n' | b'\r' => break,
            _ => fast = false,
        }
        i += 1;
    }
    let scale = fraction.unwrap_or(0) as usize;
    if !(fast && digits > 0 && mantissa < (1 << 53) && scale < POW10.len()) {
        return (i, None);
    }
    // Below 2^53 the signed conversion is exact (and cheaper than the unsigned one); whole
    // numbers, most cells, need no division.
    let whole = mantissa as i64 as f64;
    (
        i,
        Some(if scale == 0 {
            whole
        } else {
            whole / POW10[scale]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `text` as the texts of its cells (numbers as `#value`).
    fn records(text: &[u8], chunk: usize) -> Vec<Vec<String>> {
        // A reader that returns at most `chunk` bytes at a time, to cross buffer ends.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = Records::new(Trickle(text, chunk), 8);
        let mut out = Vec::new();
        while r.next_record().expect("read") {
            let cells = (0..r.fields().min(8))
                .map(|i| {
                    let c = r.cell(i);
                    match c.value {
                        Value::Number(v) => format!("#{v}={}", r.text(c)),
                        Value::Missing => "<>".to_string(),
                        Value::Text(form) => format!("{form:?}:{}", r.text(c)),
                    }
                })
                .collect();
            out.push(cells);
        }
        out
    }

    fn all_chunkings(text: &str) -> Vec<Vec<String>> {
        let whole = records(text.as_bytes(), usize::MAX);
        for chunk in 1..=text.len().max(1) {
            assert_eq!(records(text.as_bytes(), chunk), whole, "chunk {chunk}");
        }
        whole
    }

    #[test]
    fn plain_quoted_crlf_and_missing_cells() {
        let got = all_chunkings("a,b\r\n61,\"2.5\"\r\n,\"\"\n\"x\"\"y\",1e3\n7,8");
        assert_eq!(
            got,
            vec![
                vec!["Plain:a", "Plain:b"],
                vec!["#61=61", "#2.5=2.5"],
                vec!["<>", "<>"],
                vec!["Quoted:x\"y", "Plain:1e3"],
                vec!["#7=7", "#8=8"],
            ]
        );
    }

    #[test]
    fn bom_blank_tail_and_blank_middle() {
        assert_eq!(
            all_chunkings("\u{feff}a\n1\n\n \r\n\t\n"),
            vec![vec!["Plain:a"], vec!["#1=1"]]
        );
        assert_eq!(
            all_chunkings("a\n1\n\n2.50\n"),
            vec![vec!["Plain:a"], vec!["#1=1"], vec!["<>"], vec!["#2.5=2.50"]]
        );
        assert!(all_chunkings("").is_empty());
        assert!(all_chunkings(" \n\n").is_empty());
    }

    #[test]
    fn malformed_cells_keep_their_raw_text() {
        assert_eq!(
            all_chunkings("61 , 61,\"61\"x,6\r1\r\n\"open"),
            vec![
                vec!["Plain:61 ", "Plain: 61", "Raw:\"61\"x", "Plain:6\r1"],
                vec!["Unclosed:\"open"],
            ]
        );
        // A quoted line break is part of the cell, not the end of the record.
        assert_eq!(
            all_chunkings("\"6\n1\",2\n3,4\n"),
            vec![vec!["Quoted:6\n1", "#2=2"], vec!["#3=3", "#4=4"]]
        );
    }

    #[test]
    fn a_record_longer_than_the_buffer_grows_it() {
        let long = format!("{}7\n8\n", "1,".repeat(BUFFER_BYTES));
        let mut r = Records::new(long.as_bytes(), 4);
        assert!(r.next_record().expect("read"));
        assert_eq!(r.fields(), BUFFER_BYTES + 1);
        assert!(r.next_record().expect("read"));
        assert_eq!((r.fields(), r.cell(0).value), (1, Value::Number(8.0)));
        assert!(!r.next_record().expect("read"));
    }

    #[test]
    fn fast_path_agrees_with_the_standard_parser() {
        let cases = [
            "0",
            "7",
            "61",
            "2.3",
            "0.1",
            "1.",
            ".5",
            "007",
            "123456789012345678",
            "3.14159",
            "9007199254740991",
            "9007199254740993",
            "1234567890.123456789",
            "0.000001",
        ];
        for text in cases {
            let (len, fast) = plain(text.as_bytes());
            assert_eq!(len, text.len());
            let want: f64 = text.parse().expect("number");
            assert_eq!(fast.unwrap_or(want).to_bits(), want.to_bits(), "{text}");
        }
        for text in ["", ".", "1.2.3", "-1", "+1", "1e3", "inf", "NaN", "1 "] {
            assert_eq!(plain(text.as_bytes()).1, None, "{text}");
        }
    }
}
