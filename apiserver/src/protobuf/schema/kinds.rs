//! The top-level kinds we decode, with their messages (kubernetes/api v0.35.7).
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

use super::Message;

/// (apiVersion, kind, message); an empty apiVersion matches any (meta/v1 option kinds).
pub static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Pod", &super::core::POD),
    ("v1", "Service", &super::core::SERVICE),
    ("v1", "ConfigMap", &super::core::CONFIG_MAP),
    ("v1", "Secret", &super::core::SECRET),
    ("v1", "Namespace", &super::core::NAMESPACE),
    ("v1", "ServiceAccount", &super::core::SERVICE_ACCOUNT),
    ("v1", "ResourceQuota", &super::core::RESOURCE_QUOTA),
    ("v1", "Event", &super::core::EVENT),
    ("v1", "PersistentVolumeClaim", &super::core::PERSISTENT_VOLUME_CLAIM),
    ("v1", "Binding", &super::core::BINDING),
    ("v1", "Endpoints", &super::core::ENDPOINTS),
    ("v1", "LimitRange", &super::core::LIMIT_RANGE),
    ("apps/v1", "Deployment", &super::apps::DEPLOYMENT),
    ("apps/v1", "StatefulSet", &super::apps::STATEFUL_SET),
    ("apps/v1", "DaemonSet", &super::apps::DAEMON_SET),
    ("apps/v1", "ReplicaSet", &super::apps::REPLICA_SET),
    ("apps/v1", "ControllerRevision", &super::apps::CONTROLLER_REVISION),
    ("batch/v1", "Job", &super::batch::JOB),
    ("batch/v1", "CronJob", &super::batch::CRON_JOB),
    ("rbac.authorization.k8s.io/v1", "Role", &super::rbac::ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &super::rbac::CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", &super::rbac::ROLE_BINDING),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &super::rbac::CLUSTER_ROLE_BINDING),
    ("autoscaling/v1", "HorizontalPodAutoscaler", &super::autoscaling_v1::HORIZONTAL_POD_AUTOSCALER),
    ("autoscaling/v1", "Scale", &super::autoscaling_v1::SCALE),
    ("autoscaling/v2", "HorizontalPodAutoscaler", &super::autoscaling_v2::HORIZONTAL_POD_AUTOSCALER),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", &super::authorization::SELF_SUBJECT_ACCESS_REVIEW),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", &super::authorization::SELF_SUBJECT_RULES_REVIEW),
    ("authentication.k8s.io/v1", "TokenRequest", &super::authentication::TOKEN_REQUEST),
    ("authentication.k8s.io/v1", "SelfSubjectReview", &super::authentication::SELF_SUBJECT_REVIEW),
    ("authentication.k8s.io/v1", "TokenReview", &super::authentication::TOKEN_REVIEW),
    ("scheduling.k8s.io/v1", "PriorityClass", &super::scheduling::PRIORITY_CLASS),
    ("policy/v1", "PodDisruptionBudget", &super::policy::POD_DISRUPTION_BUDGET),
    ("policy/v1", "Eviction", &super::policy::EVICTION),
    ("networking.k8s.io/v1", "Ingress", &super::networking::INGRESS),
    ("coordination.k8s.io/v1", "Lease", &super::coordination::LEASE),
    ("", "DeleteOptions", &super::meta::DELETE_OPTIONS),
];
