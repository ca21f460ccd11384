//! SHA-256 checksums of the bytes a stage reads and writes, for the provenance a stage
//! records next to its output (`ml-predict`'s `provenance.json`).
//!
//! A checksum is taken of the bytes as they pass, not by reading a file a second time: a
//! file replaced between the read and a second read would otherwise be described by a
//! checksum of bytes that were never used.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes`, 64 lower-case hex digits (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(Sha256::digest(bytes).as_slice())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that keeps the SHA-256 of everything read through it.
#[derive(Debug)]
pub struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Sha256Reader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The checksum of the bytes read so far, in hex: the whole input's once the reader
    /// has reported its end.
    pub fn finish(self) -> String {
        hex(self.hasher.finalize().as_slice())
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that keeps the SHA-256 of everything written through it.
#[derive(Debug)]
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer and the checksum, in hex, of every byte written.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex(self.hasher.finalize().as_slice()))
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Only what the inner writer took counts: a short write is retried by the caller.
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'abc' | sha256sum`
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn reader_writer_and_one_shot_agree_with_sha256sum() {
        assert_eq!(sha256_hex(b"abc"), ABC);
        let mut reader = Sha256Reader::new(&b"abc"[..]);
        let mut read = Vec::new();
        // One byte at a time, to cross several reads.
        let mut byte = [0u8; 1];
        while reader.read(&mut byte).expect("read") == 1 {
            read.push(byte[0]);
        }
        assert_eq!(
            (read.as_slice(), reader.finish().as_str()),
            (&b"abc"[..], ABC)
        );
        let mut writer = Sha256Writer::new(Vec::new());
        writer.write_all(b"a").expect("write");
        writer.write_all(b"bc").expect("write");
        let (bytes, sum) = writer.finish();
        assert_eq!((bytes.as_slice(), sum.as_str()), (&b"abc"[..], ABC));
    }
}
