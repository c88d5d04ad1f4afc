//! The apimachinery types whose JSON form is not an object of their protobuf fields:
//! `meta/v1.Time` and `MicroTime`, `resource.Quantity`, `intstr.IntOrString`, and the raw-JSON
//! carriers `runtime.RawExtension` and `meta/v1.FieldsV1`. Each takes the message body.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::decode::{bytes, error, string, varint, DecodeError};
use super::wire;

/// Time/MicroTime {1 seconds, 2 nanos}. An empty body is Go's zero time, which is JSON `null`.
/// Time keeps whole seconds (upstream drops the nanos when decoding); MicroTime keeps microseconds.
pub fn time(buf: &[u8], micro: bool) -> Result<Value, DecodeError> {
    if buf.is_empty() {
        return Ok(Value::Null);
    }
    let (mut secs, mut nanos) = (0i64, 0u32);
    for item in wire::fields(buf) {
        match item? {
            (1, v) => secs = varint(v)? as i64,
            (2, v) => nanos = u32::try_from(varint(v)? as i32).unwrap_or(0),
            _ => {}
        }
    }
    let nanos = if micro { nanos / 1000 * 1000 } else { 0 };
    let t: DateTime<Utc> = DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| error(format!("time {secs}s is out of range")))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(t.format(format).to_string()))
}

/// Quantity {1 string}; a missing string is the zero quantity, "0".
pub fn quantity(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut s = String::from("0");
    for item in wire::fields(buf) {
        if let (1, v) = item? {
            s = string(bytes(v)?)?;
        }
    }
    Ok(Value::String(s))
}

/// IntOrString {1 type (0 int, 1 string), 2 intVal, 3 strVal}.
pub fn int_or_string(buf: &[u8]) -> Result<Value, DecodeError> {
    let (mut is_string, mut int, mut s) = (false, 0i32, String::new());
    for item in wire::fields(buf) {
        match item? {
            (1, v) => is_string = varint(v)? == 1,
            (2, v) => int = varint(v)? as i32,
            (3, v) => s = string(bytes(v)?)?,
            _ => {}
        }
    }
    Ok(if is_string {
        Value::String(s)
    } else {
        Value::from(int)
    })
}

/// RawExtension / FieldsV1 {1 raw}: the bytes are a JSON document; empty is `null`.
pub fn raw_json(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut raw: &[u8] = &[];
    for item in wire::fields(buf) {
        if let (1, v) = item? {
            raw = bytes(v)?;
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| error(format!("raw bytes are not JSON: {e}")))
}
