//! apps: field tables for `k8s.io.api.apps.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static DEPLOYMENT: Message = Message { name: "Deployment", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&DEPLOYMENT_SPEC)),
]};

pub static DEPLOYMENT_SPEC: Message = Message { name: "DeploymentSpec", fields: &[
    F(1, "replicas", K, I32), F(2, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(3, "template", O, Msg(&super::core::POD_TEMPLATE_SPEC)),
    F(4, "strategy", O, Msg(&DEPLOYMENT_STRATEGY)), F(5, "minReadySeconds", O, I32),
    F(6, "revisionHistoryLimit", K, I32), F(7, "paused", O, Bool),
    F(9, "progressDeadlineSeconds", K, I32),
]};

pub static DEPLOYMENT_STRATEGY: Message = Message { name: "DeploymentStrategy", fields: &[
    F(1, "type", O, Str), F(2, "rollingUpdate", K, Msg(&ROLLING_UPDATE_DEPLOYMENT)),
]};

pub static ROLLING_UPDATE_DEPLOYMENT: Message = Message { name: "RollingUpdateDeployment", fields: &[
    F(1, "maxUnavailable", K, IntOrStr), F(2, "maxSurge", K, IntOrStr),
]};

pub static STATEFUL_SET: Message = Message { name: "StatefulSet", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&STATEFUL_SET_SPEC)),
]};

pub static STATEFUL_SET_SPEC: Message = Message { name: "StatefulSetSpec", fields: &[
    F(1, "replicas", K, I32), F(2, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(3, "template", O, Msg(&super::core::POD_TEMPLATE_SPEC)),
    F(4, "volumeClaimTemplates", L, Msg(&super::core::PERSISTENT_VOLUME_CLAIM)),
    F(5, "serviceName", K, Str), F(6, "podManagementPolicy", O, Str),
    F(7, "updateStrategy", O, Msg(&STATEFUL_SET_UPDATE_STRATEGY)),
    F(8, "revisionHistoryLimit", K, I32), F(9, "minReadySeconds", O, I32),
    F(10, "persistentVolumeClaimRetentionPolicy", K, Msg(&STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY)),
    F(11, "ordinals", K, Msg(&STATEFUL_SET_ORDINALS)),
]};

pub static STATEFUL_SET_UPDATE_STRATEGY: Message = Message { name: "StatefulSetUpdateStrategy", fields: &[
    F(1, "type", O, Str), F(2, "rollingUpdate", K, Msg(&ROLLING_UPDATE_STATEFUL_SET_STRATEGY)),
]};

pub static ROLLING_UPDATE_STATEFUL_SET_STRATEGY: Message = Message { name: "RollingUpdateStatefulSetStrategy", fields: &[
    F(1, "partition", K, I32), F(2, "maxUnavailable", K, IntOrStr),
]};

pub static STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY: Message = Message { name: "StatefulSetPersistentVolumeClaimRetentionPolicy", fields: &[
    F(1, "whenDeleted", O, Str), F(2, "whenScaled", O, Str),
]};

pub static STATEFUL_SET_ORDINALS: Message = Message { name: "StatefulSetOrdinals", fields: &[
    F(1, "start", K, I32),
]};

pub static DAEMON_SET: Message = Message { name: "DaemonSet", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&DAEMON_SET_SPEC)),
]};

pub static DAEMON_SET_SPEC: Message = Message { name: "DaemonSetSpec", fields: &[
    F(1, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(2, "template", O, Msg(&super::core::POD_TEMPLATE_SPEC)),
    F(3, "updateStrategy", O, Msg(&DAEMON_SET_UPDATE_STRATEGY)), F(4, "minReadySeconds", O, I32),
    F(6, "revisionHistoryLimit", K, I32),
]};

pub static DAEMON_SET_UPDATE_STRATEGY: Message = Message { name: "DaemonSetUpdateStrategy", fields: &[
    F(1, "type", O, Str), F(2, "rollingUpdate", K, Msg(&ROLLING_UPDATE_DAEMON_SET)),
]};

pub static ROLLING_UPDATE_DAEMON_SET: Message = Message { name: "RollingUpdateDaemonSet", fields: &[
    F(1, "maxUnavailable", K, IntOrStr), F(2, "maxSurge", K, IntOrStr),
]};

pub static REPLICA_SET: Message = Message { name: "ReplicaSet", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&REPLICA_SET_SPEC)),
]};

pub static REPLICA_SET_SPEC: Message = Message { name: "ReplicaSetSpec", fields: &[
    F(1, "replicas", K, I32), F(2, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(3, "template", O, Msg(&super::core::POD_TEMPLATE_SPEC)), F(4, "minReadySeconds", O, I32),
]};

pub static CONTROLLER_REVISION: Message = Message { name: "ControllerRevision", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "data", O, Json),
    F(3, "revision", K, I64),
]};
