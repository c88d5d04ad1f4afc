//! Layer decompression by magic number: gzip (possibly multi-member), zstd (all frames,
//! skippable frames skipped, as zstd:chunked layers have them) or a plain tar. Streams only;
//! digests are verified by the caller.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Wraps `reader` (positioned at the start of the blob whose first bytes are `magic`) in the
/// decoder the magic calls for.
pub fn layer_reader<R: BufRead + Send + 'static>(magic: &[u8], reader: R) -> Box<dyn Read + Send> {
    if magic.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if magic.starts_with(&ZSTD_MAGIC) {
        Box::new(ZstdReader::new(reader))
    } else {
        Box::new(reader)
    }
}

/// Decodes every zstd frame of the stream in turn.
pub struct ZstdReader<R> {
    src: R,
    dec: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdReader<R> {
    pub fn new(src: R) -> Self {
        ZstdReader {
            src,
            dec: FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                let n = self.dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if self.dec.is_finished() {
                    self.in_frame = false;
                    continue;
                }
                self.dec
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(buf.len()))
                    .map_err(io::Error::other)?;
                continue;
            }
            if self.src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.dec.reset(&mut self.src) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.src).take(length.into()), &mut io::sink())?;
                    if skipped < u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "truncated zstd skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};

    fn decode(data: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let magic: Vec<u8> = data.iter().take(4).copied().collect();
        layer_reader(&magic, io::Cursor::new(data)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn zstd_frames_and_skippable_frames_concatenate() {
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let b = b"second frame".to_vec();
        let mut data = compress_to_vec(&a[..], CompressionLevel::Fastest);
        // A skippable frame (magic 0x184D2A50, little endian length) between the two.
        data.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        data.extend(compress_to_vec(&b[..], CompressionLevel::Fastest));
        let mut want = a.clone();
        want.extend_from_slice(&b);
        assert_eq!(decode(data).expect("decode"), want);
    }

    #[test]
    fn truncated_zstd_is_an_error() {
        let a: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut data = compress_to_vec(&a[..], CompressionLevel::Fastest);
        data.truncate(data.len() / 2);
        assert!(decode(data).is_err());
    }

    #[test]
    fn gzip_and_plain() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").expect("gzip");
        assert_eq!(
            decode(gz.finish().expect("gzip")).expect("decode"),
            b"hello"
        );
        assert_eq!(
            decode(b"plain tar bytes".to_vec()).expect("decode"),
            b"plain tar bytes"
        );
    }
}
