//! authentication: field tables for `k8s.io.api.authentication.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static TOKEN_REQUEST: Message = Message { name: "TokenRequest", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&TOKEN_REQUEST_SPEC)),
]};

pub static TOKEN_REQUEST_SPEC: Message = Message { name: "TokenRequestSpec", fields: &[
    F(1, "audiences", L, Str), F(3, "boundObjectRef", K, Msg(&BOUND_OBJECT_REFERENCE)),
    F(4, "expirationSeconds", K, I64),
]};

pub static BOUND_OBJECT_REFERENCE: Message = Message { name: "BoundObjectReference", fields: &[
    F(1, "kind", O, Str), F(2, "apiVersion", O, Str), F(3, "name", O, Str), F(4, "uid", O, Str),
]};

pub static SELF_SUBJECT_REVIEW: Message = Message { name: "SelfSubjectReview", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
]};

pub static TOKEN_REVIEW: Message = Message { name: "TokenReview", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&TOKEN_REVIEW_SPEC)),
]};

pub static TOKEN_REVIEW_SPEC: Message = Message { name: "TokenReviewSpec", fields: &[
    F(1, "token", O, Str), F(2, "audiences", L, Str),
]};
