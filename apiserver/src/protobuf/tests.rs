//! Tests: bodies captured from real kubectl 1.32/1.33 (testdata/*.bin, recorded against
//! docs/kubectl-stub.py), bodies built with a tiny encoder the way Go's marshaller lays them out,
//! and malformed input.

mod captured;
mod encoded;
mod malformed;

/// A minimal protobuf writer, enough to build request bodies by hand.
#[derive(Default, Clone)]
pub struct Pb(pub Vec<u8>);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Pb {
    pub fn new() -> Self {
        Pb::default()
    }

    /// A varint field (negative numbers as Go writes them: ten bytes, two's complement).
    pub fn int(mut self, n: u32, v: i64) -> Self {
        put_varint(&mut self.0, u64::from(n) << 3);
        put_varint(&mut self.0, v as u64);
        self
    }

    pub fn bytes(mut self, n: u32, b: &[u8]) -> Self {
        put_varint(&mut self.0, (u64::from(n) << 3) | 2);
        put_varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn fixed32(mut self, n: u32, v: u32) -> Self {
        put_varint(&mut self.0, (u64::from(n) << 3) | 5);
        self.0.extend(v.to_le_bytes());
        self
    }

    pub fn fixed64(mut self, n: u32, v: u64) -> Self {
        put_varint(&mut self.0, (u64::from(n) << 3) | 1);
        self.0.extend(v.to_le_bytes());
        self
    }

    pub fn str(self, n: u32, s: &str) -> Self {
        self.bytes(n, s.as_bytes())
    }

    pub fn msg(self, n: u32, m: Pb) -> Self {
        self.bytes(n, &m.0)
    }

    /// One `map<string, string>` entry.
    pub fn entry(self, n: u32, k: &str, v: &str) -> Self {
        self.msg(n, Pb::new().str(1, k).str(2, v))
    }
}

/// The `k8s\0` + runtime.Unknown envelope around `raw`, with the empty encoding/type fields
/// client-go writes.
pub fn envelope(api_version: &str, kind: &str, raw: Pb) -> Vec<u8> {
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.0);
    out
}
