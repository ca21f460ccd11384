//! Just enough HTTP/1.1 for a proxy that must see every byte it forwards: request and
//! response heads, body framing (Content-Length, chunked, until close) and a buffered
//! connection whose unread bytes can be handed on when a connection is upgraded.
//!
//! It is strict where leniency would let the guard and the engine disagree about where one
//! request ends (request smuggling): CRLF line ends only, no folded header lines, one
//! Content-Length, no Content-Length next to Transfer-Encoding, `chunked` the only transfer
//! coding.

use std::io::{self, Read, Write};

/// Largest request or response head (request line and headers) the guard reads.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header lines in one head.
pub const MAX_HEADERS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("malformed HTTP: {0}")]
    Malformed(String),
    #[error("head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
}

fn malformed(what: impl Into<String>) -> HttpError {
    HttpError::Malformed(what.into())
}

/// A stream with a read buffer. The buffer is public through [`BufConn::buffered`] so that
/// bytes read ahead of a head (the first bytes of an upgraded stream) are never lost.
#[derive(Debug)]
pub struct BufConn<S> {
    pub stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<S: Read> BufConn<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// The bytes read from the stream and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes into the buffer (growing it up to `limit` buffered bytes); returns
    /// how many were read, 0 at end of stream.
    fn fill(&mut self, limit: usize) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < limit {
                let len = (self.buf.len() * 2).min(limit);
                self.buf.resize(len, 0);
            } else {
                return Err(io::Error::other("read buffer full"));
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The buffered bytes, reading from the stream first if none are buffered. Empty at
    /// end of stream.
    pub fn read_some(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.fill(self.buf.len())?;
        }
        Ok(self.buffered())
    }

    /// Reads one head up to and including its blank line. `Ok(None)` when the stream ends
    /// before any byte of it (a client closing an idle keep-alive connection).
    pub fn read_head(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        loop {
            // RFC 9112 2.2: a server should ignore empty lines before a request line.
            while self.buffered().starts_with(b"\r\n") {
                self.consume(2);
            }
            let data = self.buffered();
            if let Some(at) = find(data, b"\r\n\r\n") {
                let head = data[..at + 4].to_vec();
                self.consume(at + 4);
                return Ok(Some(head));
            }
            let had = data.len();
            if had >= MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            if self.fill(MAX_HEAD + 4)? == 0 {
                return if had == 0 {
                    Ok(None)
                } else {
                    Err(malformed("connection closed in the middle of a head"))
                };
            }
        }
    }

    /// Reads exactly `n` bytes.
    fn read_exact_into(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
        while n > 0 {
            let data = self.read_some()?;
            if data.is_empty() {
                return Err(malformed("connection closed in the middle of a body"));
            }
            let k = data.len().min(n);
            out.extend_from_slice(&data[..k]);
            self.consume(k);
            n -= k;
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The HTTP version of a message: only 1.0 and 1.1 are spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    fn parse(text: &str) -> Result<Self, HttpError> {
        match text {
            "HTTP/1.1" => Ok(Version::Http11),
            "HTTP/1.0" => Ok(Version::Http10),
            _ => Err(malformed(format!("unsupported version {text:?}"))),
        }
    }
}

/// Header lines in the order received, names as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// All values of a header, case-insensitively by name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (Connection, Transfer-Encoding) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Headers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
}

fn head_lines(head: &[u8]) -> Result<Vec<&str>, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| malformed("head is not UTF-8"))?;
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or_else(|| malformed("head does not end in a blank line"))?;
    let lines: Vec<&str> = text.split("\r\n").collect();
    if lines.len() > MAX_HEADERS + 1 {
        return Err(malformed(format!("more than {MAX_HEADERS} header lines")));
    }
    for line in &lines {
        if line.bytes().any(|b| b == b'\n' || b == b'\r' || b == 0) {
            return Err(malformed("bare CR, LF or NUL in a head"));
        }
    }
    Ok(lines)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_headers(lines: &[&str]) -> Result<Headers, HttpError> {
    let mut headers = Vec::with_capacity(lines.len());
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return Err(malformed("folded header line"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("header line without a colon: {line:?}")))?;
        if !is_token(name) {
            return Err(malformed(format!("bad header name {name:?}")));
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(Headers(headers))
}

pub fn parse_request(head: &[u8]) -> Result<RequestHead, HttpError> {
    let lines = head_lines(head)?;
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(format!("bad request line {:?}", lines[0])));
    };
    if !is_token(method) || target.is_empty() {
        return Err(malformed(format!("bad request line {:?}", lines[0])));
    }
    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version: Version::parse(version)?,
        headers: parse_headers(&lines[1..])?,
    })
}

pub fn parse_response(head: &[u8]) -> Result<ResponseHead, HttpError> {
    let lines = head_lines(head)?;
    let mut parts = lines[0].splitn(3, ' ');
    let version = Version::parse(parts.next().unwrap_or_default())?;
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| malformed(format!("bad status line {:?}", lines[0])))?;
    Ok(ResponseHead {
        version,
        status,
        reason: parts.next().unwrap_or_default().to_string(),
        headers: parse_headers(&lines[1..])?,
    })
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    Length(u64),
    Chunked,
    /// Until the sender closes the connection (responses only).
    UntilClose,
}

fn content_length(headers: &Headers) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for value in headers.all("Content-Length") {
        for item in value.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) || item.len() > 18 {
                return Err(malformed(format!("bad Content-Length {value:?}")));
            }
            let n: u64 = item
                .parse()
                .map_err(|_| malformed(format!("bad Content-Length {value:?}")))?;
            if found.is_some_and(|f| f != n) {
                return Err(malformed("conflicting Content-Length headers"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Whether Transfer-Encoding is present, and `chunked` alone if so.
fn chunked(headers: &Headers) -> Result<Option<bool>, HttpError> {
    let codings: Vec<String> = headers
        .all("Transfer-Encoding")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if headers.get("Transfer-Encoding").is_none() {
        return Ok(None);
    }
    Ok(Some(codings == ["chunked"]))
}

pub fn request_framing(head: &RequestHead) -> Result<Framing, HttpError> {
    let length = content_length(&head.headers)?;
    match chunked(&head.headers)? {
        Some(_) if length.is_some() => Err(malformed("both Content-Length and Transfer-Encoding")),
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Err(malformed("a transfer coding other than chunked")),
        None => Ok(match length {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        }),
    }
}

/// RFC 9112 6.3, for a response to a request with `method`.
pub fn response_framing(method: &str, head: &ResponseHead) -> Result<Framing, HttpError> {
    if method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    match chunked(&head.headers)? {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::UntilClose),
        None => Ok(match content_length(&head.headers)? {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }),
    }
}

/// Whether the client keeps its connection open after this exchange.
pub fn keep_alive(version: Version, headers: &Headers) -> bool {
    match version {
        Version::Http11 => !headers.has_token("Connection", "close"),
        Version::Http10 => headers.has_token("Connection", "keep-alive"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size { digits: u8 },
    Extension { len: usize },
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    Trailer { len: usize },
    TrailerLf,
    LastLf,
    Done,
}

/// Follows the chunked transfer coding byte by byte, so that a relay can forward whatever
/// has arrived at once and still know where the message ends.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: Chunk,
    size: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self {
            state: Chunk::Size { digits: 0 },
            size: 0,
        }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Consumes bytes of `input` up to the end of the message; returns how many. The chunk
    /// data among them is appended to `data` if given.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut data: Option<&mut Vec<u8>>,
    ) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() && self.state != Chunk::Done {
            if let Chunk::Data(left) = self.state {
                let k = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                if let Some(out) = data.as_deref_mut() {
                    out.extend_from_slice(&input[i..i + k]);
                }
                i += k;
                let left = left - k as u64;
                self.state = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Chunk::Size { digits }, _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(malformed("chunk size too large"));
                    }
                    let d = (b as char).to_digit(16).unwrap_or_default();
                    self.size = self.size * 16 + u64::from(d);
                    Chunk::Size { digits: digits + 1 }
                }
                (Chunk::Size { digits }, b';' | b' ' | b'\t') if digits > 0 => {
                    Chunk::Extension { len: 0 }
                }
                (Chunk::Size { digits }, b'\r') if digits > 0 => Chunk::SizeLf,
                (Chunk::Extension { .. }, b'\r') => Chunk::SizeLf,
                (Chunk::Extension { len }, _) if b != b'\n' && len < 4096 => {
                    Chunk::Extension { len: len + 1 }
                }
                (Chunk::SizeLf, b'\n') => {
                    let size = std::mem::take(&mut self.size);
                    if size == 0 {
                        Chunk::TrailerStart
                    } else {
                        Chunk::Data(size)
                    }
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => Chunk::Size { digits: 0 },
                (Chunk::TrailerStart, b'\r') => Chunk::LastLf,
                (Chunk::TrailerStart, _) if b != b'\n' => Chunk::Trailer { len: 1 },
                (Chunk::Trailer { .. }, b'\r') => Chunk::TrailerLf,
                (Chunk::Trailer { len }, _) if b != b'\n' && len < MAX_HEAD => {
                    Chunk::Trailer { len: len + 1 }
                }
                (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                (Chunk::LastLf, b'\n') => Chunk::Done,
                _ => return Err(malformed("bad chunked encoding")),
            };
        }
        Ok(i)
    }
}

/// Reads a whole body of at most `limit` bytes (decoded).
pub fn read_body<S: Read>(
    conn: &mut BufConn<S>,
    framing: Framing,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= limit)
                .ok_or(HttpError::BodyTooLarge(limit))?;
            conn.read_exact_into(n, &mut body)?;
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            while !decoder.is_done() {
                let data = conn.read_some()?;
                if data.is_empty() {
                    return Err(malformed("connection closed in the middle of a body"));
                }
                let used = decoder.feed(data, Some(&mut body))?;
                conn.consume(used);
                if body.len() > limit {
                    return Err(HttpError::BodyTooLarge(limit));
                }
            }
        }
        // Only a response is read to its end like this (the guard's own inspect calls).
        Framing::UntilClose => loop {
            let data = conn.read_some()?;
            if data.is_empty() {
                break;
            }
            if body.len() + data.len() > limit {
                return Err(HttpError::BodyTooLarge(limit));
            }
            body.extend_from_slice(data);
            let n = data.len();
            conn.consume(n);
        },
    }
    Ok(body)
}

/// Copies one message body from `from` to `to` as it arrives, keeping its framing (the
/// chunk lines of a chunked body are forwarded as they are). Never waits for more than the
/// bytes at hand before writing, so a streaming body (logs that follow a running container,
/// a `wait` that ends with it) reaches the client as the engine sends it.
pub fn relay_body<R: Read, W: Write>(
    from: &mut BufConn<R>,
    framing: Framing,
    to: &mut W,
) -> Result<(), HttpError> {
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(mut left) => {
            while left > 0 {
                let data = from.read_some()?;
                if data.is_empty() {
                    return Err(malformed("engine closed in the middle of a body"));
                }
                let k = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                to.write_all(&data[..k])?;
                from.consume(k);
                left -= k as u64;
            }
            Ok(())
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            while !decoder.is_done() {
                let data = from.read_some()?;
                if data.is_empty() {
                    return Err(malformed("engine closed in the middle of a body"));
                }
                let used = decoder.feed(data, None)?;
                to.write_all(&data[..used])?;
                from.consume(used);
            }
            Ok(())
        }
        Framing::UntilClose => loop {
            let data = from.read_some()?;
            if data.is_empty() {
                return Ok(());
            }
            to.write_all(data)?;
            let n = data.len();
            from.consume(n);
        },
    }
}

/// Headers that describe one hop, not the message: never forwarded as received.
pub fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(bytes: &[u8]) -> BufConn<&[u8]> {
        BufConn::new(bytes)
    }

    #[test]
    fn reads_heads_one_after_the_other() {
        let mut c = conn(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        let a = parse_request(&c.read_head().expect("read").expect("a head")).expect("ok");
        assert_eq!(a.target, "/a");
        assert_eq!(a.headers.get("host"), Some("x"));
        let b = parse_request(&c.read_head().expect("read").expect("a head")).expect("ok");
        assert_eq!(b.target, "/b");
        assert!(c.read_head().expect("read").is_none());
    }

    #[test]
    fn a_head_cut_short_is_an_error() {
        let mut c = conn(b"GET /a HTTP/1.1\r\nHost");
        assert!(matches!(c.read_head(), Err(HttpError::Malformed(_))));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let big = vec![b'a'; MAX_HEAD + 10];
        let mut c = conn(&big);
        assert!(matches!(c.read_head(), Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn smuggling_shapes_are_malformed() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
        ] {
            let req = parse_request(head.as_bytes()).expect("request");
            assert!(request_framing(&req).is_err(), "{head:?}");
        }
        for head in [
            "POST / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "POST / HTTP/1.1\r\nBad Name: a\r\n\r\n",
            "POST / HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
            "POST /  HTTP/1.1\r\n\r\n",
            "POST / HTTP/2\r\n\r\n",
        ] {
            assert!(parse_request(head.as_bytes()).is_err(), "{head:?}");
        }
    }

    #[test]
    fn chunked_bodies_decode_across_reads() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let end = body.len() - b"NEXT".len();
        for split in 0..=end {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let a = decoder.feed(&body[..split], Some(&mut out)).expect("ok");
            assert_eq!(a, split);
            let b = decoder.feed(&body[split..], Some(&mut out)).expect("ok");
            assert!(decoder.is_done());
            assert_eq!(out, b"Wikipedia");
            assert_eq!(&body[a + b..], b"NEXT");
        }
    }

    #[test]
    fn bad_chunks_are_refused() {
        for body in [&b"x\r\n"[..], b"4\r\nWikiXX", b"\r\n", b"4\nWiki\r\n"] {
            let mut decoder = ChunkedDecoder::default();
            assert!(decoder.feed(body, None).is_err(), "{body:?}");
        }
    }

    #[test]
    fn bodies_over_the_limit_are_refused() {
        let mut c = conn(b"");
        assert!(matches!(
            read_body(&mut c, Framing::Length(11), 10),
            Err(HttpError::BodyTooLarge(10))
        ));
        let mut c = conn(b"b\r\nhello world\r\n0\r\n\r\n");
        assert!(matches!(
            read_body(&mut c, Framing::Chunked, 10),
            Err(HttpError::BodyTooLarge(10))
        ));
    }

    #[test]
    fn relay_keeps_chunk_framing_and_stops_at_the_end() {
        let mut c = conn(b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n");
        let mut out = Vec::new();
        relay_body(&mut c, Framing::Chunked, &mut out).expect("ok");
        assert_eq!(out, b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(c.buffered(), b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let head = |s: &str| parse_response(s.as_bytes()).expect("response");
        let ok = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(
            response_framing("GET", &ok).expect("ok"),
            Framing::Length(5)
        );
        assert_eq!(response_framing("HEAD", &ok).expect("ok"), Framing::Empty);
        let stream = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(
            response_framing("GET", &stream).expect("ok"),
            Framing::Chunked
        );
        let raw =
            head("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n");
        assert_eq!(
            response_framing("POST", &raw).expect("ok"),
            Framing::UntilClose
        );
        let none = head("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(response_framing("POST", &none).expect("ok"), Framing::Empty);
    }
}
