//! networking: field tables for `k8s.io.api.networking.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static INGRESS: Message = Message { name: "Ingress", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&INGRESS_SPEC)),
]};

pub static INGRESS_SPEC: Message = Message { name: "IngressSpec", fields: &[
    F(1, "defaultBackend", K, Msg(&INGRESS_BACKEND)), F(2, "tls", L, Msg(&INGRESS_TLS)),
    F(3, "rules", L, Msg(&INGRESS_RULE)), F(4, "ingressClassName", K, Str),
]};

pub static INGRESS_BACKEND: Message = Message { name: "IngressBackend", fields: &[
    F(3, "resource", K, Msg(&super::volume::TYPED_LOCAL_OBJECT_REFERENCE)),
    F(4, "service", K, Msg(&INGRESS_SERVICE_BACKEND)),
]};

pub static INGRESS_SERVICE_BACKEND: Message = Message { name: "IngressServiceBackend", fields: &[
    F(1, "name", K, Str), F(2, "port", O, Msg(&SERVICE_BACKEND_PORT)),
]};

pub static SERVICE_BACKEND_PORT: Message = Message { name: "ServiceBackendPort", fields: &[
    F(1, "name", O, Str), F(2, "number", O, I32),
]};

pub static INGRESS_TLS: Message = Message { name: "IngressTLS", fields: &[
    F(1, "hosts", L, Str), F(2, "secretName", O, Str),
]};

pub static INGRESS_RULE: Message = Message { name: "IngressRule", fields: &[
    F(1, "host", O, Str), F(2, "ingressRuleValue", I, Msg(&INGRESS_RULE_VALUE)),
]};

pub static INGRESS_RULE_VALUE: Message = Message { name: "IngressRuleValue", fields: &[
    F(1, "http", K, Msg(&HTTP_INGRESS_RULE_VALUE)),
]};

pub static HTTP_INGRESS_RULE_VALUE: Message = Message { name: "HTTPIngressRuleValue", fields: &[
    F(1, "paths", L, Msg(&HTTP_INGRESS_PATH)),
]};

pub static HTTP_INGRESS_PATH: Message = Message { name: "HTTPIngressPath", fields: &[
    F(1, "path", O, Str), F(2, "backend", O, Msg(&INGRESS_BACKEND)), F(3, "pathType", K, Str),
]};
