//! coordination: field tables for `k8s.io.api.coordination.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static LEASE: Message = Message { name: "Lease", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&LEASE_SPEC)),
]};

pub static LEASE_SPEC: Message = Message { name: "LeaseSpec", fields: &[
    F(1, "holderIdentity", K, Str), F(2, "leaseDurationSeconds", K, I32),
    F(3, "acquireTime", K, MicroTime), F(4, "renewTime", K, MicroTime),
    F(5, "leaseTransitions", K, I32), F(6, "strategy", K, Str), F(7, "preferredHolder", K, Str),
]};
