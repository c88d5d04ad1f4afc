//! scheduling: field tables for `k8s.io.api.scheduling.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static PRIORITY_CLASS: Message = Message { name: "PriorityClass", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "value", K, I32),
    F(3, "globalDefault", O, Bool), F(4, "description", O, Str), F(5, "preemptionPolicy", K, Str),
]};
