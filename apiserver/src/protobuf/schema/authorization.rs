//! authorization: field tables for `k8s.io.api.authorization.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static SELF_SUBJECT_ACCESS_REVIEW: Message = Message { name: "SelfSubjectAccessReview", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
]};

pub static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message { name: "SelfSubjectAccessReviewSpec", fields: &[
    F(1, "resourceAttributes", K, Msg(&RESOURCE_ATTRIBUTES)),
    F(2, "nonResourceAttributes", K, Msg(&NON_RESOURCE_ATTRIBUTES)),
]};

pub static RESOURCE_ATTRIBUTES: Message = Message { name: "ResourceAttributes", fields: &[
    F(1, "namespace", O, Str), F(2, "verb", O, Str), F(3, "group", O, Str), F(4, "version", O, Str),
    F(5, "resource", O, Str), F(6, "subresource", O, Str), F(7, "name", O, Str),
    F(8, "fieldSelector", K, Msg(&FIELD_SELECTOR_ATTRIBUTES)),
    F(9, "labelSelector", K, Msg(&LABEL_SELECTOR_ATTRIBUTES)),
]};

pub static FIELD_SELECTOR_ATTRIBUTES: Message = Message { name: "FieldSelectorAttributes", fields: &[
    F(1, "rawSelector", O, Str),
    F(2, "requirements", L, Msg(&super::meta::FIELD_SELECTOR_REQUIREMENT)),
]};

pub static LABEL_SELECTOR_ATTRIBUTES: Message = Message { name: "LabelSelectorAttributes", fields: &[
    F(1, "rawSelector", O, Str),
    F(2, "requirements", L, Msg(&super::meta::LABEL_SELECTOR_REQUIREMENT)),
]};

pub static NON_RESOURCE_ATTRIBUTES: Message = Message { name: "NonResourceAttributes", fields: &[
    F(1, "path", O, Str), F(2, "verb", O, Str),
]};

pub static SELF_SUBJECT_RULES_REVIEW: Message = Message { name: "SelfSubjectRulesReview", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)),
]};

pub static SELF_SUBJECT_RULES_REVIEW_SPEC: Message = Message { name: "SelfSubjectRulesReviewSpec", fields: &[
    F(1, "namespace", O, Str),
]};
