//! Hostile and broken bodies: every one must come back as an error, never a panic.

use super::{envelope, Pb};
use crate::error::ApiError;
use crate::protobuf::decode as decode_body;
use crate::protobuf::decode::{self, MAX_DEPTH};
use crate::protobuf::schema::{Kind, Message, Ty, F};

fn bad_request(raw: &[u8]) -> String {
    match decode_body(raw) {
        Err(ApiError::BadRequest(msg)) => msg,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

/// The envelope with arbitrary bytes as the object.
fn with_raw(kind: &str, raw: &[u8]) -> Vec<u8> {
    envelope(
        if kind == "Deployment" {
            "apps/v1"
        } else {
            "v1"
        },
        kind,
        Pb(raw.to_vec()),
    )
}

#[test]
fn bad_magic() {
    assert!(bad_request(b"").contains("magic"));
    assert!(bad_request(b"k8s").contains("magic"));
    assert!(bad_request(b"{\"kind\":\"Pod\"}").contains("magic"));
}

#[test]
fn truncated_varint() {
    let msg = bad_request(&with_raw("Deployment", &[0x10, 0x80, 0x80]));
    assert!(msg.contains("truncated varint"), "{msg}");
    let mut raw = b"k8s\0".to_vec();
    raw.push(0x8a); // a key whose varint never ends
    assert!(bad_request(&raw).contains("truncated varint"));
}

#[test]
fn length_past_end_and_huge_lengths() {
    let msg = bad_request(&with_raw("Deployment", &[0x0a, 0x40, 0x0a, 0x01]));
    assert!(msg.contains("remain"), "{msg}");
    let huge = [
        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert!(bad_request(&with_raw("Deployment", &huge)).contains("remain"));
    let mut envelope_lie = b"k8s\0".to_vec();
    envelope_lie.extend([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
    assert!(bad_request(&envelope_lie).contains("remain"));
}

#[test]
fn wrong_wire_type_bad_utf8_and_groups() {
    let msg = bad_request(&with_raw("Deployment", &Pb::new().int(2, 5).0));
    assert!(msg.contains("spec") && msg.contains("wire type 0"), "{msg}");
    let msg = bad_request(&with_raw(
        "Namespace",
        &Pb::new().msg(1, Pb::new().bytes(1, b"\xff")).0,
    ));
    assert!(
        msg.contains("metadata.name") && msg.contains("UTF-8"),
        "{msg}"
    );
    assert!(bad_request(&with_raw("Namespace", &[0x0b, 0x0c])).contains("wire type 3"));
    assert!(bad_request(&with_raw("Namespace", &[0x00, 0x01])).contains("field number 0"));
}

#[test]
fn nesting_a_thousand_deep_is_harmless() {
    // A thousand levels through known fields (metadata.ownerReferences...) and unknown ones.
    for field in [1u32, 2, 3, 13, 999] {
        let mut nested = Pb::new().str(1, "x");
        for _ in 0..1000 {
            nested = Pb::new().msg(field, nested);
        }
        let _ = decode_body(&with_raw("Deployment", &nested.0));
    }
}

static LOOP: Message = Message {
    name: "Loop",
    fields: &[F(1, "child", Kind::Keep, Ty::Msg(&LOOP))],
};

#[test]
fn recursive_schemas_stop_at_max_depth() {
    let mut nested = Pb::new();
    for _ in 0..MAX_DEPTH {
        nested = Pb::new().msg(1, nested);
    }
    assert!(decode::message(&nested.0, &LOOP, 0).is_ok());
    let err = decode::message(&Pb::new().msg(1, nested).0, &LOOP, 0).expect_err("too deep");
    assert!(err.to_string().contains("nested deeper"), "{err}");
}

#[test]
fn compressed_or_foreign_envelopes_are_unsupported() {
    let unknown = |enc: &str, ct: &str| {
        let mut out = b"k8s\0".to_vec();
        out.extend(
            Pb::new()
                .msg(1, Pb::new().str(1, "v1").str(2, "Secret"))
                .msg(2, Pb::new())
                .str(3, enc)
                .str(4, ct)
                .0,
        );
        out
    };
    assert!(matches!(
        decode_body(&unknown("gzip", "")),
        Err(ApiError::UnsupportedMediaType(_))
    ));
    assert!(matches!(
        decode_body(&unknown("", "application/json")),
        Err(ApiError::UnsupportedMediaType(_))
    ));
    assert!(decode_body(&unknown("", "application/vnd.kubernetes.protobuf")).is_ok());
    assert!(bad_request(&envelope("v1", "", Pb::new())).contains("no kind"));
}

/// Random byte flips, insertions and deletions on real captures (a fixed-seed xorshift, so any
/// failure reproduces).
#[test]
fn mutated_captures_never_panic() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, raw) in super::captured::all_fixtures() {
        for _ in 0..300 {
            let mut m = raw.clone();
            for _ in 0..1 + next() % 4 {
                let at = 4 + (next() as usize) % (m.len() - 4);
                match next() % 3 {
                    0 => m[at] ^= 1 << (next() % 8),
                    1 => m.insert(at, next() as u8),
                    _ => {
                        m.remove(at);
                    }
                }
                if m.len() <= 4 {
                    break;
                }
            }
            match decode_body(&m) {
                Ok(v) => assert!(v.is_object(), "{name}"),
                Err(ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_)) => {}
                Err(e) => panic!("{name}: unexpected error {e:?}"),
            }
        }
    }
}
