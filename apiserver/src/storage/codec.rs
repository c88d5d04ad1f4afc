//! How values are laid out in sled: small values inline, large ones split into chunks.
//!
//! sled 0.34 writes values above about 128 KiB to separate blob files that it never fsyncs,
//! so every value we store is kept below `CHUNK` bytes per sled entry. A stored value starts
//! with a tag byte: `0` = inline bytes follow, `1` = a big-endian u32 chunk count follows and
//! the chunks live in the `chunks` tree under `<chunk-prefix> 0x00 <u32 index>`.

pub const CHUNK: usize = 64 * 1024;

const INLINE: u8 = 0;
const CHUNKED: u8 = 1;

/// A value prepared for storage: the head entry plus the chunk entries to write.
pub struct Encoded {
    pub head: Vec<u8>,
    pub chunks: Vec<(Vec<u8>, Vec<u8>)>,
}

pub fn chunk_key(prefix: &[u8], index: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub fn encode(chunk_prefix: &[u8], data: &[u8]) -> Encoded {
    if data.len() <= CHUNK {
        let mut head = Vec::with_capacity(data.len() + 1);
        head.push(INLINE);
        head.extend_from_slice(data);
        return Encoded {
            head,
            chunks: vec![],
        };
    }
    let parts: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let mut head = vec![CHUNKED];
    head.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    let chunks = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (chunk_key(chunk_prefix, i as u32), p.to_vec()))
        .collect();
    Encoded { head, chunks }
}

/// How many chunks a stored head refers to (0 for inline values).
pub fn chunk_count(head: &[u8]) -> u32 {
    if head.first() == Some(&CHUNKED) && head.len() >= 5 {
        u32::from_be_bytes([head[1], head[2], head[3], head[4]])
    } else {
        0
    }
}

/// Rebuild a value from its head, reading chunks with `get_chunk`.
pub fn decode(
    chunk_prefix: &[u8],
    head: &[u8],
    mut get_chunk: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, sled::Error>,
) -> Result<Vec<u8>, DecodeError> {
    match head.first() {
        Some(&INLINE) => Ok(head[1..].to_vec()),
        Some(&CHUNKED) => {
            let n = chunk_count(head);
            let mut out = Vec::with_capacity(n as usize * CHUNK);
            for i in 0..n {
                let k = chunk_key(chunk_prefix, i);
                match get_chunk(&k)? {
                    Some(c) => out.extend_from_slice(&c),
                    None => return Err(DecodeError::MissingChunk(i)),
                }
            }
            Ok(out)
        }
        _ => Err(DecodeError::BadTag),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stored value has an unknown tag")]
    BadTag,
    #[error("stored value is missing chunk {0}")]
    MissingChunk(u32),
    #[error(transparent)]
    Sled(#[from] sled::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn roundtrip_inline_and_chunked() {
        for size in [0usize, 10, CHUNK, CHUNK + 1, 3 * CHUNK + 7, 1_600_000] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let enc = encode(b"p", &data);
            let store: HashMap<Vec<u8>, Vec<u8>> = enc.chunks.into_iter().collect();
            assert!(store.values().all(|c| c.len() <= CHUNK));
            let back = decode(b"p", &enc.head, |k| Ok(store.get(k).cloned())).expect("decode");
            assert_eq!(back, data);
        }
    }

    #[test]
    fn missing_chunk_is_an_error() {
        let data = vec![1u8; CHUNK * 2];
        let enc = encode(b"p", &data);
        assert!(decode(b"p", &enc.head, |_| Ok(None)).is_err());
        assert!(decode(b"p", &[9, 9], |_| Ok(None)).is_err());
    }
}
