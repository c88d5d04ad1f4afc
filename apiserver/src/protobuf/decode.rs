//! Schema-driven conversion of one protobuf message into the JSON object the same Go struct
//! would have marshalled to: JSON names from the tables, zero values of Go value fields left out,
//! and the few apimachinery types with their own JSON form (Time, Quantity, IntOrString, ...).
//!
//! Fields the tables do not know are skipped, as Go skips unknown fields. Depth is bounded by
//! [`MAX_DEPTH`] even though today's tables cannot recurse.

use base64::Engine;
use serde_json::{Map, Value};

use super::schema::{Kind, Message, Ty, F};
use super::wire::{self, WireError};

/// Deepest message nesting accepted (a Deployment's deepest path is about 12).
pub const MAX_DEPTH: usize = 64;

/// Why a message could not be converted: a reason and the JSON path to where it happened.
#[derive(Debug)]
pub struct DecodeError {
    /// Innermost name first; reversed for display.
    path: Vec<&'static str>,
    reason: String,
}

impl DecodeError {
    fn new(reason: impl Into<String>) -> Self {
        DecodeError {
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    fn within(mut self, name: &'static str) -> Self {
        self.path.push(name);
        self
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.reason);
        }
        let path: Vec<&str> = self.path.iter().rev().copied().collect();
        write!(f, "{}: {}", path.join("."), self.reason)
    }
}

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        DecodeError::new(e.to_string())
    }
}

/// Converts the message in `buf`, described by `msg`, into a JSON object.
pub fn message(buf: &[u8], msg: &Message, depth: usize) -> Result<Map<String, Value>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::new(format!(
            "messages nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let mut obj = Map::new();
    for item in wire::fields(buf) {
        let (number, value) = item.map_err(|e| DecodeError::new(format!("{} ({e})", msg.name)))?;
        if let Some(field) = msg.field(number) {
            put(&mut obj, field, value, depth).map_err(|e| e.within(field.1))?;
        }
    }
    Ok(obj)
}

/// Applies one wire occurrence of `field` to `obj`.
fn put(
    obj: &mut Map<String, Value>,
    field: &F,
    wv: wire::Value,
    depth: usize,
) -> Result<(), DecodeError> {
    let F(_, name, kind, ty) = *field;
    match kind {
        Kind::List => {
            let items = list_items(wv, ty, depth)?;
            match obj.get_mut(name) {
                Some(Value::Array(list)) => list.extend(items),
                _ => {
                    obj.insert(name.to_owned(), Value::Array(items));
                }
            }
        }
        Kind::Map => {
            let (key, value) = map_entry(wv, ty, depth)?;
            match obj.get_mut(name) {
                Some(Value::Object(map)) => {
                    map.insert(key, value);
                }
                _ => {
                    obj.insert(
                        name.to_owned(),
                        Value::Object(Map::from_iter([(key, value)])),
                    );
                }
            }
        }
        Kind::Inline => {
            if let Value::Object(inner) = value(wv, ty, depth)? {
                for (k, v) in inner {
                    set(obj, k, v);
                }
            }
        }
        Kind::Omit => {
            let v = value(wv, ty, depth)?;
            if is_zero(&v) {
                // An empty message merges into an earlier one as a no-op; a zero scalar wins.
                if !v.is_object() {
                    obj.remove(name);
                }
            } else {
                set(obj, name.to_owned(), v);
            }
        }
        Kind::Keep => set(obj, name.to_owned(), value(wv, ty, depth)?),
    }
    Ok(())
}

/// A later occurrence of a singular field replaces an earlier one; messages merge (protobuf rules).
fn set(obj: &mut Map<String, Value>, name: String, v: Value) {
    match (obj.get_mut(&name), v) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, v) => {
            obj.insert(name, v);
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The elements carried by one occurrence of a repeated field (several if packed).
fn list_items(wv: wire::Value, ty: Ty, depth: usize) -> Result<Vec<Value>, DecodeError> {
    match (wv, ty) {
        (wire::Value::Bytes(mut packed), Ty::I32 | Ty::I64 | Ty::Bool) => {
            let mut out = Vec::new();
            while !packed.is_empty() {
                let (n, rest) = wire::read_varint(packed)?;
                out.push(value(wire::Value::Varint(n), ty, depth)?);
                packed = rest;
            }
            Ok(out)
        }
        _ => Ok(vec![value(wv, ty, depth)?]),
    }
}

/// A map entry message {1: key, 2: value}; a missing part is its type's zero value.
fn map_entry(wv: wire::Value, ty: Ty, depth: usize) -> Result<(String, Value), DecodeError> {
    let buf = bytes(wv)?;
    let (mut key, mut val) = (String::new(), None);
    for item in wire::fields(buf) {
        match item? {
            (1, wv) => key = string(bytes(wv)?)?,
            (2, wv) => val = Some(value(wv, ty, depth)?),
            _ => {}
        }
    }
    let val = match (val, ty) {
        (Some(v), _) => v,
        (None, Ty::I32 | Ty::I64) => Value::from(0),
        (None, Ty::Bool) => Value::Bool(false),
        (None, _) => value(wire::Value::Bytes(&[]), ty, depth)?,
    };
    Ok((key, val))
}

/// Converts one scalar or message value of type `ty`.
fn value(wv: wire::Value, ty: Ty, depth: usize) -> Result<Value, DecodeError> {
    Ok(match ty {
        Ty::Str => Value::String(string(bytes(wv)?)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes(wv)?)),
        // Go truncates varints to the field's width the same way.
        Ty::I32 => Value::from(varint(wv)? as i32),
        Ty::I64 => Value::from(varint(wv)? as i64),
        Ty::Bool => Value::Bool(varint(wv)? != 0),
        Ty::Time => super::types::time(bytes(wv)?, false)?,
        Ty::MicroTime => super::types::time(bytes(wv)?, true)?,
        Ty::Quantity => super::types::quantity(bytes(wv)?)?,
        Ty::IntOrStr => super::types::int_or_string(bytes(wv)?)?,
        Ty::Json => super::types::raw_json(bytes(wv)?)?,
        Ty::Msg(m) => Value::Object(message(bytes(wv)?, m, depth + 1)?),
    })
}

pub(super) fn bytes(wv: wire::Value<'_>) -> Result<&[u8], DecodeError> {
    match wv {
        wire::Value::Bytes(b) => Ok(b),
        other => Err(wrong_wire_type(other, 2)),
    }
}

pub(super) fn varint(wv: wire::Value) -> Result<u64, DecodeError> {
    match wv {
        wire::Value::Varint(v) => Ok(v),
        other => Err(wrong_wire_type(other, 0)),
    }
}

pub(super) fn string(b: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::new("string is not valid UTF-8"))
}

fn wrong_wire_type(got: wire::Value, want: u8) -> DecodeError {
    DecodeError::new(format!(
        "wire type {} where {want} was expected",
        got.wire_type()
    ))
}

pub(super) fn error(reason: impl Into<String>) -> DecodeError {
    DecodeError::new(reason)
}
