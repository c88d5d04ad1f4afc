//! meta: field tables for `k8s.io.apimachinery.pkg.apis.meta.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static OBJECT_META: Message = Message { name: "ObjectMeta", fields: &[
    F(1, "name", O, Str), F(2, "generateName", O, Str), F(3, "namespace", O, Str),
    F(4, "selfLink", O, Str), F(5, "uid", O, Str), F(6, "resourceVersion", O, Str),
    F(7, "generation", O, I64), F(8, "creationTimestamp", O, Time),
    F(9, "deletionTimestamp", K, Time), F(10, "deletionGracePeriodSeconds", K, I64),
    F(11, "labels", M, Str), F(12, "annotations", M, Str),
    F(13, "ownerReferences", L, Msg(&OWNER_REFERENCE)), F(14, "finalizers", L, Str),
    F(17, "managedFields", L, Msg(&MANAGED_FIELDS_ENTRY)),
]};

pub static OWNER_REFERENCE: Message = Message { name: "OwnerReference", fields: &[
    F(1, "kind", K, Str), F(3, "name", K, Str), F(4, "uid", K, Str), F(5, "apiVersion", K, Str),
    F(6, "controller", K, Bool), F(7, "blockOwnerDeletion", K, Bool),
]};

pub static MANAGED_FIELDS_ENTRY: Message = Message { name: "ManagedFieldsEntry", fields: &[
    F(1, "manager", O, Str), F(2, "operation", O, Str), F(3, "apiVersion", O, Str),
    F(4, "time", K, Time), F(6, "fieldsType", O, Str), F(7, "fieldsV1", K, Json),
    F(8, "subresource", O, Str),
]};

pub static LABEL_SELECTOR: Message = Message { name: "LabelSelector", fields: &[
    F(1, "matchLabels", M, Str), F(2, "matchExpressions", L, Msg(&LABEL_SELECTOR_REQUIREMENT)),
]};

pub static LABEL_SELECTOR_REQUIREMENT: Message = Message { name: "LabelSelectorRequirement", fields: &[
    F(1, "key", K, Str), F(2, "operator", K, Str), F(3, "values", L, Str),
]};

pub static FIELD_SELECTOR_REQUIREMENT: Message = Message { name: "FieldSelectorRequirement", fields: &[
    F(1, "key", K, Str), F(2, "operator", K, Str), F(3, "values", L, Str),
]};

pub static DELETE_OPTIONS: Message = Message { name: "DeleteOptions", fields: &[
    F(1, "gracePeriodSeconds", K, I64), F(2, "preconditions", K, Msg(&PRECONDITIONS)),
    F(3, "orphanDependents", K, Bool), F(4, "propagationPolicy", K, Str), F(5, "dryRun", L, Str),
    F(6, "ignoreStoreReadErrorWithClusterBreakingPotential", K, Bool),
]};

pub static PRECONDITIONS: Message = Message { name: "Preconditions", fields: &[
    F(1, "uid", K, Str), F(2, "resourceVersion", K, Str),
]};
