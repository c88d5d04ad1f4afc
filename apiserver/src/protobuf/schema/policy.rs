//! policy: field tables for `k8s.io.api.policy.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static POD_DISRUPTION_BUDGET: Message = Message { name: "PodDisruptionBudget", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&POD_DISRUPTION_BUDGET_SPEC)),
]};

pub static POD_DISRUPTION_BUDGET_SPEC: Message = Message { name: "PodDisruptionBudgetSpec", fields: &[
    F(1, "minAvailable", K, IntOrStr), F(2, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(3, "maxUnavailable", K, IntOrStr), F(4, "unhealthyPodEvictionPolicy", K, Str),
]};

pub static EVICTION: Message = Message { name: "Eviction", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "deleteOptions", K, Msg(&super::meta::DELETE_OPTIONS)),
]};
