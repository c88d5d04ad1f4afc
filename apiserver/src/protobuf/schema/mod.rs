//! The protobuf schema subset we decode: for each upstream message, its fields' numbers, JSON
//! names, presence rules and types. The tables themselves (`core.rs`, `apps.rs`, ...) are
//! generated from upstream `generated.proto` + `types.go` by `../gen_schema.py`; this file holds
//! only the vocabulary they are written in and the lookup of a top-level kind.
//!
//! Not here: status messages (the server owns status; a client never needs to send it to us in
//! protobuf) and every kind outside `kinds.rs`.

#[rustfmt::skip] mod apps;
#[rustfmt::skip] mod authentication;
#[rustfmt::skip] mod authorization;
#[rustfmt::skip] mod autoscaling_v1;
#[rustfmt::skip] mod autoscaling_v2;
#[rustfmt::skip] mod batch;
#[rustfmt::skip] mod coordination;
#[rustfmt::skip] mod core;
#[rustfmt::skip] mod kinds;
#[rustfmt::skip] mod meta;
#[rustfmt::skip] mod networking;
#[rustfmt::skip] mod pod;
#[rustfmt::skip] mod policy;
#[rustfmt::skip] mod rbac;
#[rustfmt::skip] mod scheduling;
#[rustfmt::skip] mod volume;

/// One protobuf message: its upstream name (for error messages) and its known fields.
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [F],
}

/// One field: protobuf field number, JSON name, presence rule, element type.
pub struct F(pub u32, pub &'static str, pub Kind, pub Ty);

/// How a field's wire occurrences become JSON.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A Go value field with `omitempty` (or a struct): Go's encoder always writes it, so a
    /// zero/empty value means "unset" and is left out of the JSON.
    Omit,
    /// A Go pointer (or a scalar without `omitempty`): written only when set, so whatever is on
    /// the wire is kept, zero included (`replicas: 0`, `emptyDir: {}`).
    Keep,
    /// `repeated`: each occurrence appends one element (scalars may also come packed).
    List,
    /// `map<string, T>`: each occurrence is an entry message {1: key, 2: value}.
    Map,
    /// An embedded Go struct with `json:",inline"`: its fields are merged into the parent.
    Inline,
}

/// The type of one value.
#[derive(Clone, Copy)]
pub enum Ty {
    Str,
    /// `bytes`: base64 in JSON.
    Bytes,
    I32,
    I64,
    Bool,
    /// meta/v1 Time {1 seconds, 2 nanos}: RFC 3339 with second precision.
    Time,
    /// meta/v1 MicroTime: RFC 3339 with microseconds.
    MicroTime,
    /// resource.Quantity {1 string}.
    Quantity,
    /// intstr.IntOrString {1 type, 2 intVal, 3 strVal}.
    IntOrStr,
    /// runtime.RawExtension / meta/v1 FieldsV1 {1 raw}: the raw bytes are JSON.
    Json,
    Msg(&'static Message),
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&'static F> {
        self.fields.iter().find(|f| f.0 == number)
    }
}

/// The message for a top-level `apiVersion` + `kind`, if we have a table for it.
pub fn top_level(api_version: &str, kind: &str) -> Option<&'static Message> {
    kinds::KINDS
        .iter()
        .find(|(v, k, _)| *k == kind && (v.is_empty() || *v == api_version))
        .map(|(_, _, m)| *m)
}
