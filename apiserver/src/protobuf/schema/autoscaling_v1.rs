//! autoscaling_v1: field tables for `k8s.io.api.autoscaling.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static HORIZONTAL_POD_AUTOSCALER: Message = Message { name: "HorizontalPodAutoscaler", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&HORIZONTAL_POD_AUTOSCALER_SPEC)),
]};

pub static HORIZONTAL_POD_AUTOSCALER_SPEC: Message = Message { name: "HorizontalPodAutoscalerSpec", fields: &[
    F(1, "scaleTargetRef", O, Msg(&CROSS_VERSION_OBJECT_REFERENCE)), F(2, "minReplicas", K, I32),
    F(3, "maxReplicas", K, I32), F(4, "targetCPUUtilizationPercentage", K, I32),
]};

pub static CROSS_VERSION_OBJECT_REFERENCE: Message = Message { name: "CrossVersionObjectReference", fields: &[
    F(1, "kind", K, Str), F(2, "name", K, Str), F(3, "apiVersion", O, Str),
]};

pub static SCALE: Message = Message { name: "Scale", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&SCALE_SPEC)),
]};

pub static SCALE_SPEC: Message = Message { name: "ScaleSpec", fields: &[
    F(1, "replicas", O, I32),
]};
