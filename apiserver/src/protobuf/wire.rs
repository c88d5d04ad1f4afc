//! The protobuf wire format, read without a schema: varints, field keys, and the payloads of the
//! four wire types Kubernetes uses (varint, 64-bit, length-delimited, 32-bit). Every read is
//! bounds-checked; nothing here allocates or recurses, so hostile input costs at most one pass.
//!
//! What a field *means* is decided by `decode.rs` from the schema tables.

use std::fmt;

/// Why a buffer could not be read as protobuf.
#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    TruncatedVarint,
    VarintTooLong,
    /// A length prefix or fixed-width value runs past the end of its enclosing message.
    PastEnd {
        need: u64,
        have: usize,
    },
    /// Field numbers must be 1..=2^29-1.
    BadFieldNumber(u64),
    /// Wire types 3 and 4 (groups) and 6, 7 (undefined).
    BadWireType(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TruncatedVarint => write!(f, "truncated varint"),
            WireError::VarintTooLong => write!(f, "varint longer than 10 bytes"),
            WireError::PastEnd { need, have } => {
                write!(f, "field needs {need} bytes but only {have} remain")
            }
            WireError::BadFieldNumber(n) => write!(f, "invalid field number {n}"),
            WireError::BadWireType(t) => write!(f, "unsupported wire type {t}"),
        }
    }
}

/// The payload of one field occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    pub fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        }
    }
}

/// Reads one varint from the front of `buf`, returning it and the rest.
pub fn read_varint(buf: &[u8]) -> Result<(u64, &[u8]), WireError> {
    let mut value: u64 = 0;
    for (i, byte) in buf.iter().enumerate() {
        if i == 10 {
            return Err(WireError::VarintTooLong);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, &buf[i + 1..]));
        }
    }
    if buf.len() >= 10 {
        Err(WireError::VarintTooLong)
    } else {
        Err(WireError::TruncatedVarint)
    }
}

fn split(buf: &[u8], len: u64) -> Result<(&[u8], &[u8]), WireError> {
    match usize::try_from(len) {
        Ok(n) if n <= buf.len() => Ok(buf.split_at(n)),
        _ => Err(WireError::PastEnd {
            need: len,
            have: buf.len(),
        }),
    }
}

/// Iterates over the (field number, payload) pairs of one message.
pub struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        rest: buf,
        failed: false,
    }
}

impl<'a> Fields<'a> {
    fn next_field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let (key, rest) = read_varint(self.rest)?;
        let number = match u32::try_from(key >> 3) {
            Ok(n) if (1..1 << 29).contains(&n) => n,
            _ => return Err(WireError::BadFieldNumber(key >> 3)),
        };
        let (value, rest) = match (key & 7) as u8 {
            0 => {
                let (v, rest) = read_varint(rest)?;
                (Value::Varint(v), rest)
            }
            1 => {
                let (b, rest) = split(rest, 8)?;
                let arr: [u8; 8] = b.try_into().expect("split returned exactly 8 bytes");
                (Value::Fixed64(u64::from_le_bytes(arr)), rest)
            }
            2 => {
                let (len, rest) = read_varint(rest)?;
                let (b, rest) = split(rest, len)?;
                (Value::Bytes(b), rest)
            }
            5 => {
                let (b, rest) = split(rest, 4)?;
                let arr: [u8; 4] = b.try_into().expect("split returned exactly 4 bytes");
                (Value::Fixed32(u32::from_le_bytes(arr)), rest)
            }
            t => return Err(WireError::BadWireType(t)),
        };
        self.rest = rest;
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.next_field();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_edges() {
        assert_eq!(read_varint(&[0x96, 0x01, 7]), Ok((150, &[7u8][..])));
        assert_eq!(read_varint(&[0x80, 0x80]), Err(WireError::TruncatedVarint));
        assert_eq!(read_varint(&[0xff; 11]), Err(WireError::VarintTooLong));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&max), Ok((u64::MAX, &[][..])));
    }

    #[test]
    fn huge_length_prefix_is_past_end() {
        // field 1, wire type 2, length 2^63.
        let buf = [
            0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ];
        let got: Vec<_> = fields(&buf).collect();
        assert!(matches!(got[..], [Err(WireError::PastEnd { .. })]));
    }

    #[test]
    fn groups_are_rejected_and_iteration_stops() {
        let got: Vec<_> = fields(&[0x0b, 0x0c]).collect();
        assert_eq!(got, vec![Err(WireError::BadWireType(3))]);
    }
}
