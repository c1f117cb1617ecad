//! Content-defined chunks, cut where rustic_core's (and restic's) Rabin chunker cuts
//! them, so that data backed up by either deduplicates against the other.
//!
//! rustic_core builds the rolling hash's two 256-entry tables for every file (a
//! fifth of a first backup's CPU on many small files); here they are built once per
//! backup and copied. Bytes are scanned in place instead of pushed one at a time.

use std::io::{self, Read};

use rustic_cdc::{Rabin64, RollingHash64};

/// Bytes asked of the reader at a time once a chunk has its minimum size.
const BLOCK: usize = 256 * 1024;
/// restic's window: 64 bytes.
const WINDOW_BITS: u32 = 6;
const WINDOW: usize = 1 << WINDOW_BITS;

#[derive(Clone)]
pub struct Chunker {
    template: Rabin64,
    mask: u64,
    min: usize,
    max: usize,
}

impl Chunker {
    /// `size` (a power of two) is the average chunk size; `min` at least the window.
    pub fn new(poly: u64, size: usize, min: usize, max: usize) -> Result<Self, String> {
        if !size.is_power_of_two() || min > size || max < size || min < WINDOW {
            return Err(format!(
                "unsupported chunker sizes (average {size}, min {min}, max {max})"
            ));
        }
        Ok(Self {
            template: Rabin64::new_with_polynom(WINDOW_BITS, &poly),
            mask: size as u64 - 1,
            min,
            max,
        })
    }

    pub fn chunks<R: Read>(&self, reader: R) -> Chunks<'_, R> {
        Chunks {
            chunker: self,
            reader,
            carry: Vec::new(),
            eof: false,
        }
    }
}

pub struct Chunks<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    /// Bytes read past the last cut: the start of the next chunk.
    carry: Vec<u8>,
    eof: bool,
}

impl<R: Read> Chunks<'_, R> {
    /// Reads until `buf` holds `want` bytes or the reader ends.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
        if buf.len() >= want || self.eof {
            return Ok(());
        }
        let missing = want - buf.len();
        let got = (&mut self.reader).take(missing as u64).read_to_end(buf)?;
        if got < missing {
            self.eof = true;
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Chunker {
            template,
            mask,
            min,
            max,
        } = self.chunker;
        let (mask, min, max) = (*mask, *min, *max);
        let mut chunk = std::mem::take(&mut self.carry);
        chunk.reserve(min + BLOCK);
        self.fill(&mut chunk, min)?;
        if chunk.len() < min {
            return Ok((!chunk.is_empty()).then_some(chunk));
        }
        // As rustic_core: the window starts with 63 of the last 64 bytes of the
        // minimum, and a cut may come right at the minimum.
        let mut rabin = template.clone();
        rabin.reset_and_prefill_window(&mut chunk[min - WINDOW..min].iter().copied());
        let mut pos = min;
        loop {
            let end = chunk.len().min(max);
            while pos < end && rabin.hash & mask != 0 {
                rabin.slide(chunk[pos]);
                pos += 1;
            }
            if pos >= max || rabin.hash & mask == 0 || self.eof {
                break;
            }
            let len = chunk.len();
            self.fill(&mut chunk, len + BLOCK)?;
            if chunk.len() == len {
                break;
            }
        }
        self.carry = chunk.split_off(pos);
        Ok(Some(chunk))
    }
}

impl<R: Read> Iterator for Chunks<'_, R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.eof && self.carry.is_empty() {
            return None;
        }
        self.next_chunk().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// restic's default polynomial of its test suite.
    const POLY: u64 = 0x3DA3358B4DC173;

    use crate::engine::tests::noise as data;

    /// The cuts the byte-at-a-time algorithm (rustic_core's) makes.
    fn reference_cuts(c: &Chunker, data: &[u8]) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut start = 0;
        while data.len() - start >= c.min {
            let mut rabin = c.template.clone();
            rabin.reset_and_prefill_window(
                &mut data[start + c.min - WINDOW..start + c.min].iter().copied(),
            );
            let mut len = c.min;
            while len < c.max && rabin.hash & c.mask != 0 && start + len < data.len() {
                rabin.slide(data[start + len]);
                len += 1;
            }
            start += len;
            cuts.push(len);
        }
        if start < data.len() {
            cuts.push(data.len() - start);
        }
        cuts
    }

    /// A reader that returns at most a few bytes per call.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 9000 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn cuts_where_the_byte_at_a_time_algorithm_cuts() {
        // Small sizes, so that many cuts happen, by the hash and by the maximum.
        let c = Chunker::new(POLY, 512, 128, 1024).unwrap();
        let data = data(400_000);
        let expected = reference_cuts(&c, &data);
        assert!(expected.len() > 300, "{} chunks", expected.len());
        assert!(expected.contains(&1024), "some chunks end at the maximum");
        assert!(expected.iter().any(|&l| l < 1024 && l > 128));
        for reader in [
            Box::new(&data[..]) as Box<dyn Read>,
            Box::new(Trickle(&data, 0)),
        ] {
            let chunks: Vec<Vec<u8>> = c.chunks(reader).map(Result::unwrap).collect();
            let lens: Vec<usize> = chunks.iter().map(Vec::len).collect();
            assert_eq!(lens, expected);
            assert_eq!(chunks.concat(), data);
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        let c = Chunker::new(POLY, 512, 128, 1024).unwrap();
        assert_eq!(c.chunks(&[][..]).count(), 0);
        let d = data(100);
        let chunks: Vec<_> = c.chunks(&d[..]).map(Result::unwrap).collect();
        assert_eq!(chunks, vec![d.clone()]);
        let d = data(128);
        let chunks: Vec<_> = c.chunks(&d[..]).map(Result::unwrap).collect();
        assert_eq!(chunks, vec![d]);
        assert!(Chunker::new(POLY, 500, 128, 1024).is_err());
    }
}
