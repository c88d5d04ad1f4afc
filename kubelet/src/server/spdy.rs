//! The part of SPDY/3.1 that port-forward uses: frame encoding and decoding, and the zlib
//! header-block compression with SPDY/3's fixed dictionary (one compressor and one
//! decompressor per connection; their state carries across frames).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;
pub const FLAG_FIN: u8 = 0x01;
const VERSION: u16 = 3;
/// Larger frames are refused (port-forward frames are at most a few tens of KiB).
const MAX_FRAME: usize = 1 << 20;
/// A decompressed header block larger than this is refused.
const MAX_HEADERS: usize = 256 * 1024;

/// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1):
/// length-prefixed header names and values followed by common status and value text.
pub fn dictionary() -> Vec<u8> {
    const WORDS: &str = "options head post put delete trace accept accept-charset \
        accept-encoding accept-language accept-ranges age allow authorization cache-control \
        connection content-base content-encoding content-language content-length \
        content-location content-md5 content-range content-type date etag expect expires from \
        host if-match if-modified-since if-none-match if-range if-unmodified-since \
        last-modified location max-forwards pragma proxy-authenticate proxy-authorization range \
        referer retry-after server te trailer transfer-encoding upgrade user-agent vary via \
        warning www-authenticate method get status";
    const AFTER_STATUS: &str = "version HTTP/1.1 url public set-cookie keep-alive origin";
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502",
        "504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8",
        "charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut d = Vec::with_capacity(1423);
    let words = WORDS
        .split_whitespace()
        .chain(std::iter::once("200 OK"))
        .chain(AFTER_STATUS.split_whitespace());
    for w in words {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Control {
        kind: u16,
        flags: u8,
        payload: Vec<u8>,
    },
    Data {
        stream: u32,
        flags: u8,
        data: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(SpdyError::Protocol(format!("frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if head[0] & 0x80 != 0 {
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Protocol(format!("SPDY version {version}")));
        }
        Ok(Some(Frame::Control {
            kind: u16::from_be_bytes([head[2], head[3]]),
            flags,
            payload,
        }))
    } else {
        Ok(Some(Frame::Data {
            stream: u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff,
            flags,
            data: payload,
        }))
    }
}

pub fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

pub fn data(stream: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(data);
    f
}

/// The stream ID at the start of SYN_STREAM, SYN_REPLY, RST_STREAM and HEADERS payloads.
pub fn stream_id(payload: &[u8]) -> Option<u32> {
    let b: [u8; 4] = payload.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b) & 0x7fff_ffff)
}

/// Header-block compression state of one connection.
pub struct HeaderCodec {
    dict: Vec<u8>,
    comp: Compress,
    decomp: Decompress,
    comp_started: bool,
}

impl Default for HeaderCodec {
    fn default() -> Self {
        HeaderCodec::new()
    }
}

impl HeaderCodec {
    pub fn new() -> HeaderCodec {
        HeaderCodec {
            dict: dictionary(),
            comp: Compress::new(Compression::default(), true),
            decomp: Decompress::new(true),
            comp_started: false,
        }
    }

    /// Decodes a header block: name/value pairs (names lower-case; multiple values of one
    /// name stay NUL-separated).
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let bad = |m: &str| SpdyError::Protocol(format!("header block: {m}"));
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(4096);
            }
            let (before_in, before_out) = (self.decomp.total_in(), self.decomp.total_out());
            let mut dict_set = false;
            match self
                .decomp
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => return Err(bad("the stream ended")),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.decomp
                        .set_dictionary(&self.dict)
                        .map_err(|_| bad("cannot set the dictionary"))?;
                    dict_set = true;
                }
                Err(e) => return Err(bad(&e.to_string())),
            }
            let used = (self.decomp.total_in() - before_in) as usize;
            let produced = self.decomp.total_out() - before_out;
            input = &input[used..];
            if out.len() > MAX_HEADERS {
                return Err(bad("too large"));
            }
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && produced == 0 && !dict_set {
                return Err(bad("truncated"));
            }
        }
        parse_pairs(&out).ok_or_else(|| bad("malformed name/value block"))
    }

    pub fn encode(&mut self, pairs: &[(&str, &str)]) -> Result<Vec<u8>, SpdyError> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
        for (k, v) in pairs {
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        if !self.comp_started {
            self.comp
                .set_dictionary(&self.dict)
                .map_err(|e| SpdyError::Protocol(e.to_string()))?;
            self.comp_started = true;
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.comp.total_in();
            self.comp
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Protocol(e.to_string()))?;
            input = &input[(self.comp.total_in() - before) as usize..];
            // A sync flush is complete when the output did not fill the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn parse_pairs(b: &[u8]) -> Option<Vec<(String, String)>> {
    let mut pos = 0usize;
    let u32_at = |pos: &mut usize| -> Option<usize> {
        let v: [u8; 4] = b.get(*pos..*pos + 4)?.try_into().ok()?;
        *pos += 4;
        Some(u32::from_be_bytes(v) as usize)
    };
    let n = u32_at(&mut pos)?;
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let kl = u32_at(&mut pos)?;
        let k = std::str::from_utf8(b.get(pos..pos.checked_add(kl)?)?).ok()?;
        pos += kl;
        let vl = u32_at(&mut pos)?;
        let v = std::str::from_utf8(b.get(pos..pos.checked_add(vl)?)?).ok()?;
        pos += vl;
        out.push((k.to_ascii_lowercase(), v.to_string()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_has_the_published_length() {
        assert_eq!(dictionary().len(), 1423);
    }

    #[test]
    fn header_blocks_round_trip_across_frames() {
        let mut a = HeaderCodec::new();
        let mut b = HeaderCodec::new();
        for i in 0..3 {
            let port = format!("{}", 8080 + i);
            let block = a
                .encode(&[("streamtype", "data"), ("port", &port), ("requestid", "0")])
                .unwrap_or_default();
            let pairs = b.decode(&block).unwrap_or_default();
            assert_eq!(pairs.len(), 3);
            assert_eq!(pairs[1], ("port".to_string(), port));
        }
    }

    #[test]
    fn frames_encode_and_decode() {
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let Ok(rt) = rt else { return };
        rt.block_on(async {
            let mut bytes = control(PING, 0, &7u32.to_be_bytes());
            bytes.extend(data(3, FLAG_FIN, b"hello"));
            let mut r = &bytes[..];
            let f = read_frame(&mut r).await.ok().flatten();
            assert_eq!(
                f,
                Some(Frame::Control {
                    kind: PING,
                    flags: 0,
                    payload: 7u32.to_be_bytes().to_vec()
                })
            );
            let f = read_frame(&mut r).await.ok().flatten();
            assert_eq!(
                f,
                Some(Frame::Data {
                    stream: 3,
                    flags: FLAG_FIN,
                    data: b"hello".to_vec()
                })
            );
            assert!(matches!(read_frame(&mut r).await, Ok(None)));
        });
    }

    #[test]
    fn garbage_header_blocks_are_errors() {
        let mut c = HeaderCodec::new();
        assert!(c.decode(b"\x00\x01garbage").is_err());
    }
}
