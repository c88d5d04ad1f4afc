//! autoscaling_v2: field tables for `k8s.io.api.autoscaling.v2`, from generated.proto and types.go of kubernetes/api and
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
    F(3, "maxReplicas", K, I32), F(4, "metrics", L, Msg(&METRIC_SPEC)),
    F(5, "behavior", K, Msg(&HORIZONTAL_POD_AUTOSCALER_BEHAVIOR)),
]};

pub static CROSS_VERSION_OBJECT_REFERENCE: Message = Message { name: "CrossVersionObjectReference", fields: &[
    F(1, "kind", K, Str), F(2, "name", K, Str), F(3, "apiVersion", O, Str),
]};

pub static METRIC_SPEC: Message = Message { name: "MetricSpec", fields: &[
    F(1, "type", K, Str), F(2, "object", K, Msg(&OBJECT_METRIC_SOURCE)),
    F(3, "pods", K, Msg(&PODS_METRIC_SOURCE)), F(4, "resource", K, Msg(&RESOURCE_METRIC_SOURCE)),
    F(5, "external", K, Msg(&EXTERNAL_METRIC_SOURCE)),
    F(7, "containerResource", K, Msg(&CONTAINER_RESOURCE_METRIC_SOURCE)),
]};

pub static OBJECT_METRIC_SOURCE: Message = Message { name: "ObjectMetricSource", fields: &[
    F(1, "describedObject", O, Msg(&CROSS_VERSION_OBJECT_REFERENCE)),
    F(2, "target", O, Msg(&METRIC_TARGET)), F(3, "metric", O, Msg(&METRIC_IDENTIFIER)),
]};

pub static METRIC_TARGET: Message = Message { name: "MetricTarget", fields: &[
    F(1, "type", K, Str), F(2, "value", K, Quantity), F(3, "averageValue", K, Quantity),
    F(4, "averageUtilization", K, I32),
]};

pub static METRIC_IDENTIFIER: Message = Message { name: "MetricIdentifier", fields: &[
    F(1, "name", K, Str), F(2, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
]};

pub static PODS_METRIC_SOURCE: Message = Message { name: "PodsMetricSource", fields: &[
    F(1, "metric", O, Msg(&METRIC_IDENTIFIER)), F(2, "target", O, Msg(&METRIC_TARGET)),
]};

pub static RESOURCE_METRIC_SOURCE: Message = Message { name: "ResourceMetricSource", fields: &[
    F(1, "name", K, Str), F(2, "target", O, Msg(&METRIC_TARGET)),
]};

pub static CONTAINER_RESOURCE_METRIC_SOURCE: Message = Message { name: "ContainerResourceMetricSource", fields: &[
    F(1, "name", K, Str), F(2, "target", O, Msg(&METRIC_TARGET)), F(3, "container", K, Str),
]};

pub static EXTERNAL_METRIC_SOURCE: Message = Message { name: "ExternalMetricSource", fields: &[
    F(1, "metric", O, Msg(&METRIC_IDENTIFIER)), F(2, "target", O, Msg(&METRIC_TARGET)),
]};

pub static HORIZONTAL_POD_AUTOSCALER_BEHAVIOR: Message = Message { name: "HorizontalPodAutoscalerBehavior", fields: &[
    F(1, "scaleUp", K, Msg(&HPA_SCALING_RULES)), F(2, "scaleDown", K, Msg(&HPA_SCALING_RULES)),
]};

pub static HPA_SCALING_RULES: Message = Message { name: "HPAScalingRules", fields: &[
    F(1, "selectPolicy", K, Str), F(2, "policies", L, Msg(&HPA_SCALING_POLICY)),
    F(3, "stabilizationWindowSeconds", K, I32), F(4, "tolerance", K, Quantity),
]};

pub static HPA_SCALING_POLICY: Message = Message { name: "HPAScalingPolicy", fields: &[
    F(1, "type", K, Str), F(2, "value", K, I32), F(3, "periodSeconds", K, I32),
]};
