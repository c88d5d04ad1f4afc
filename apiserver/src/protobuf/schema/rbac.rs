//! rbac: field tables for `k8s.io.api.rbac.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static ROLE: Message = Message { name: "Role", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "rules", L, Msg(&POLICY_RULE)),
]};

pub static POLICY_RULE: Message = Message { name: "PolicyRule", fields: &[
    F(1, "verbs", L, Str), F(2, "apiGroups", L, Str), F(3, "resources", L, Str),
    F(4, "resourceNames", L, Str), F(5, "nonResourceURLs", L, Str),
]};

pub static CLUSTER_ROLE: Message = Message { name: "ClusterRole", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "rules", L, Msg(&POLICY_RULE)),
    F(3, "aggregationRule", K, Msg(&AGGREGATION_RULE)),
]};

pub static AGGREGATION_RULE: Message = Message { name: "AggregationRule", fields: &[
    F(1, "clusterRoleSelectors", L, Msg(&super::meta::LABEL_SELECTOR)),
]};

pub static ROLE_BINDING: Message = Message { name: "RoleBinding", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "subjects", L, Msg(&SUBJECT)),
    F(3, "roleRef", O, Msg(&ROLE_REF)),
]};

pub static SUBJECT: Message = Message { name: "Subject", fields: &[
    F(1, "kind", K, Str), F(2, "apiGroup", O, Str), F(3, "name", K, Str), F(4, "namespace", O, Str),
]};

pub static ROLE_REF: Message = Message { name: "RoleRef", fields: &[
    F(1, "apiGroup", K, Str), F(2, "kind", K, Str), F(3, "name", K, Str),
]};

pub static CLUSTER_ROLE_BINDING: Message = Message { name: "ClusterRoleBinding", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "subjects", L, Msg(&SUBJECT)),
    F(3, "roleRef", O, Msg(&ROLE_REF)),
]};
