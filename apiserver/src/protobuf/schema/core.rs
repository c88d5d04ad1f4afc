//! core: field tables for `k8s.io.api.core.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static POD: Message = Message { name: "Pod", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&super::pod::POD_SPEC)),
]};

pub static SERVICE: Message = Message { name: "Service", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&SERVICE_SPEC)),
]};

pub static SERVICE_SPEC: Message = Message { name: "ServiceSpec", fields: &[
    F(1, "ports", L, Msg(&SERVICE_PORT)), F(2, "selector", M, Str), F(3, "clusterIP", O, Str),
    F(4, "type", O, Str), F(5, "externalIPs", L, Str), F(7, "sessionAffinity", O, Str),
    F(8, "loadBalancerIP", O, Str), F(9, "loadBalancerSourceRanges", L, Str),
    F(10, "externalName", O, Str), F(11, "externalTrafficPolicy", O, Str),
    F(12, "healthCheckNodePort", O, I32), F(13, "publishNotReadyAddresses", O, Bool),
    F(14, "sessionAffinityConfig", K, Msg(&SESSION_AFFINITY_CONFIG)),
    F(17, "ipFamilyPolicy", K, Str), F(18, "clusterIPs", L, Str), F(19, "ipFamilies", L, Str),
    F(20, "allocateLoadBalancerNodePorts", K, Bool), F(21, "loadBalancerClass", K, Str),
    F(22, "internalTrafficPolicy", K, Str), F(23, "trafficDistribution", K, Str),
]};

pub static SERVICE_PORT: Message = Message { name: "ServicePort", fields: &[
    F(1, "name", O, Str), F(2, "protocol", O, Str), F(3, "port", K, I32),
    F(4, "targetPort", O, IntOrStr), F(5, "nodePort", O, I32), F(6, "appProtocol", K, Str),
]};

pub static SESSION_AFFINITY_CONFIG: Message = Message { name: "SessionAffinityConfig", fields: &[
    F(1, "clientIP", K, Msg(&CLIENT_IP_CONFIG)),
]};

pub static CLIENT_IP_CONFIG: Message = Message { name: "ClientIPConfig", fields: &[
    F(1, "timeoutSeconds", K, I32),
]};

pub static CONFIG_MAP: Message = Message { name: "ConfigMap", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "data", M, Str),
    F(3, "binaryData", M, Bytes), F(4, "immutable", K, Bool),
]};

pub static SECRET: Message = Message { name: "Secret", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "data", M, Bytes),
    F(3, "type", O, Str), F(4, "stringData", M, Str), F(5, "immutable", K, Bool),
]};

pub static NAMESPACE: Message = Message { name: "Namespace", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&NAMESPACE_SPEC)),
]};

pub static NAMESPACE_SPEC: Message = Message { name: "NamespaceSpec", fields: &[
    F(1, "finalizers", L, Str),
]};

pub static SERVICE_ACCOUNT: Message = Message { name: "ServiceAccount", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "secrets", L, Msg(&OBJECT_REFERENCE)),
    F(3, "imagePullSecrets", L, Msg(&super::volume::LOCAL_OBJECT_REFERENCE)),
    F(4, "automountServiceAccountToken", K, Bool),
]};

pub static OBJECT_REFERENCE: Message = Message { name: "ObjectReference", fields: &[
    F(1, "kind", O, Str), F(2, "namespace", O, Str), F(3, "name", O, Str), F(4, "uid", O, Str),
    F(5, "apiVersion", O, Str), F(6, "resourceVersion", O, Str), F(7, "fieldPath", O, Str),
]};

pub static RESOURCE_QUOTA: Message = Message { name: "ResourceQuota", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&RESOURCE_QUOTA_SPEC)),
]};

pub static RESOURCE_QUOTA_SPEC: Message = Message { name: "ResourceQuotaSpec", fields: &[
    F(1, "hard", M, Quantity), F(2, "scopes", L, Str),
    F(3, "scopeSelector", K, Msg(&SCOPE_SELECTOR)),
]};

pub static SCOPE_SELECTOR: Message = Message { name: "ScopeSelector", fields: &[
    F(1, "matchExpressions", L, Msg(&SCOPED_RESOURCE_SELECTOR_REQUIREMENT)),
]};

pub static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Message = Message { name: "ScopedResourceSelectorRequirement", fields: &[
    F(1, "scopeName", K, Str), F(2, "operator", K, Str), F(3, "values", L, Str),
]};

pub static EVENT: Message = Message { name: "Event", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "involvedObject", O, Msg(&OBJECT_REFERENCE)), F(3, "reason", O, Str),
    F(4, "message", O, Str), F(5, "source", O, Msg(&EVENT_SOURCE)), F(6, "firstTimestamp", O, Time),
    F(7, "lastTimestamp", O, Time), F(8, "count", O, I32), F(9, "type", O, Str),
    F(10, "eventTime", O, MicroTime), F(11, "series", K, Msg(&EVENT_SERIES)),
    F(12, "action", O, Str), F(13, "related", K, Msg(&OBJECT_REFERENCE)),
    F(14, "reportingComponent", K, Str), F(15, "reportingInstance", K, Str),
]};

pub static EVENT_SOURCE: Message = Message { name: "EventSource", fields: &[
    F(1, "component", O, Str), F(2, "host", O, Str),
]};

pub static EVENT_SERIES: Message = Message { name: "EventSeries", fields: &[
    F(1, "count", O, I32), F(2, "lastObservedTime", O, MicroTime),
]};

pub static PERSISTENT_VOLUME_CLAIM: Message = Message { name: "PersistentVolumeClaim", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&super::volume::PERSISTENT_VOLUME_CLAIM_SPEC)),
]};

pub static BINDING: Message = Message { name: "Binding", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "target", O, Msg(&OBJECT_REFERENCE)),
]};

pub static ENDPOINTS: Message = Message { name: "Endpoints", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "subsets", L, Msg(&ENDPOINT_SUBSET)),
]};

pub static ENDPOINT_SUBSET: Message = Message { name: "EndpointSubset", fields: &[
    F(1, "addresses", L, Msg(&ENDPOINT_ADDRESS)),
    F(2, "notReadyAddresses", L, Msg(&ENDPOINT_ADDRESS)), F(3, "ports", L, Msg(&ENDPOINT_PORT)),
]};

pub static ENDPOINT_ADDRESS: Message = Message { name: "EndpointAddress", fields: &[
    F(1, "ip", K, Str), F(2, "targetRef", K, Msg(&OBJECT_REFERENCE)), F(3, "hostname", O, Str),
    F(4, "nodeName", K, Str),
]};

pub static ENDPOINT_PORT: Message = Message { name: "EndpointPort", fields: &[
    F(1, "name", O, Str), F(2, "port", K, I32), F(3, "protocol", O, Str),
    F(4, "appProtocol", K, Str),
]};

pub static LIMIT_RANGE: Message = Message { name: "LimitRange", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&LIMIT_RANGE_SPEC)),
]};

pub static LIMIT_RANGE_SPEC: Message = Message { name: "LimitRangeSpec", fields: &[
    F(1, "limits", L, Msg(&LIMIT_RANGE_ITEM)),
]};

pub static LIMIT_RANGE_ITEM: Message = Message { name: "LimitRangeItem", fields: &[
    F(1, "type", K, Str), F(2, "max", M, Quantity), F(3, "min", M, Quantity),
    F(4, "default", M, Quantity), F(5, "defaultRequest", M, Quantity),
    F(6, "maxLimitRequestRatio", M, Quantity),
]};

pub static POD_TEMPLATE_SPEC: Message = Message { name: "PodTemplateSpec", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&super::pod::POD_SPEC)),
]};
