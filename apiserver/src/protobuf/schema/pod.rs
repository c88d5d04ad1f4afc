//! pod: field tables for `k8s.io.api.core.v1 (pods)`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static POD_SPEC: Message = Message { name: "PodSpec", fields: &[
    F(1, "volumes", L, Msg(&super::volume::VOLUME)), F(2, "containers", L, Msg(&CONTAINER)),
    F(3, "restartPolicy", O, Str), F(4, "terminationGracePeriodSeconds", K, I64),
    F(5, "activeDeadlineSeconds", K, I64), F(6, "dnsPolicy", O, Str), F(7, "nodeSelector", M, Str),
    F(8, "serviceAccountName", O, Str), F(9, "serviceAccount", O, Str), F(10, "nodeName", O, Str),
    F(11, "hostNetwork", O, Bool), F(12, "hostPID", O, Bool), F(13, "hostIPC", O, Bool),
    F(14, "securityContext", K, Msg(&POD_SECURITY_CONTEXT)),
    F(15, "imagePullSecrets", L, Msg(&super::volume::LOCAL_OBJECT_REFERENCE)),
    F(16, "hostname", O, Str), F(17, "subdomain", O, Str), F(18, "affinity", K, Msg(&AFFINITY)),
    F(19, "schedulerName", O, Str), F(20, "initContainers", L, Msg(&CONTAINER)),
    F(21, "automountServiceAccountToken", K, Bool), F(22, "tolerations", L, Msg(&TOLERATION)),
    F(23, "hostAliases", L, Msg(&HOST_ALIAS)), F(24, "priorityClassName", O, Str),
    F(25, "priority", K, I32), F(26, "dnsConfig", K, Msg(&POD_DNS_CONFIG)),
    F(27, "shareProcessNamespace", K, Bool), F(28, "readinessGates", L, Msg(&POD_READINESS_GATE)),
    F(29, "runtimeClassName", K, Str), F(30, "enableServiceLinks", K, Bool),
    F(31, "preemptionPolicy", K, Str), F(32, "overhead", M, Quantity),
    F(33, "topologySpreadConstraints", L, Msg(&TOPOLOGY_SPREAD_CONSTRAINT)),
    F(34, "ephemeralContainers", L, Msg(&EPHEMERAL_CONTAINER)), F(35, "setHostnameAsFQDN", K, Bool),
    F(36, "os", K, Msg(&POD_OS)), F(37, "hostUsers", K, Bool),
    F(38, "schedulingGates", L, Msg(&POD_SCHEDULING_GATE)),
    F(39, "resourceClaims", L, Msg(&POD_RESOURCE_CLAIM)),
    F(40, "resources", K, Msg(&RESOURCE_REQUIREMENTS)), F(41, "hostnameOverride", K, Str),
    F(42, "workloadRef", K, Msg(&WORKLOAD_REFERENCE)),
]};

pub static CONTAINER: Message = Message { name: "Container", fields: &[
    F(1, "name", K, Str), F(2, "image", O, Str), F(3, "command", L, Str), F(4, "args", L, Str),
    F(5, "workingDir", O, Str), F(6, "ports", L, Msg(&CONTAINER_PORT)),
    F(7, "env", L, Msg(&ENV_VAR)), F(8, "resources", O, Msg(&RESOURCE_REQUIREMENTS)),
    F(9, "volumeMounts", L, Msg(&VOLUME_MOUNT)), F(10, "livenessProbe", K, Msg(&PROBE)),
    F(11, "readinessProbe", K, Msg(&PROBE)), F(12, "lifecycle", K, Msg(&LIFECYCLE)),
    F(13, "terminationMessagePath", O, Str), F(14, "imagePullPolicy", O, Str),
    F(15, "securityContext", K, Msg(&SECURITY_CONTEXT)), F(16, "stdin", O, Bool),
    F(17, "stdinOnce", O, Bool), F(18, "tty", O, Bool), F(19, "envFrom", L, Msg(&ENV_FROM_SOURCE)),
    F(20, "terminationMessagePolicy", O, Str), F(21, "volumeDevices", L, Msg(&VOLUME_DEVICE)),
    F(22, "startupProbe", K, Msg(&PROBE)), F(23, "resizePolicy", L, Msg(&CONTAINER_RESIZE_POLICY)),
    F(24, "restartPolicy", K, Str), F(25, "restartPolicyRules", L, Msg(&CONTAINER_RESTART_RULE)),
]};

pub static CONTAINER_PORT: Message = Message { name: "ContainerPort", fields: &[
    F(1, "name", O, Str), F(2, "hostPort", O, I32), F(3, "containerPort", K, I32),
    F(4, "protocol", O, Str), F(5, "hostIP", O, Str),
]};

pub static ENV_FROM_SOURCE: Message = Message { name: "EnvFromSource", fields: &[
    F(1, "prefix", O, Str), F(2, "configMapRef", K, Msg(&CONFIG_MAP_ENV_SOURCE)),
    F(3, "secretRef", K, Msg(&SECRET_ENV_SOURCE)),
]};

pub static CONFIG_MAP_ENV_SOURCE: Message = Message { name: "ConfigMapEnvSource", fields: &[
    F(1, "localObjectReference", I, Msg(&super::volume::LOCAL_OBJECT_REFERENCE)),
    F(2, "optional", K, Bool),
]};

pub static SECRET_ENV_SOURCE: Message = Message { name: "SecretEnvSource", fields: &[
    F(1, "localObjectReference", I, Msg(&super::volume::LOCAL_OBJECT_REFERENCE)),
    F(2, "optional", K, Bool),
]};

pub static ENV_VAR: Message = Message { name: "EnvVar", fields: &[
    F(1, "name", K, Str), F(2, "value", O, Str), F(3, "valueFrom", K, Msg(&ENV_VAR_SOURCE)),
]};

pub static ENV_VAR_SOURCE: Message = Message { name: "EnvVarSource", fields: &[
    F(1, "fieldRef", K, Msg(&super::volume::OBJECT_FIELD_SELECTOR)),
    F(2, "resourceFieldRef", K, Msg(&super::volume::RESOURCE_FIELD_SELECTOR)),
    F(3, "configMapKeyRef", K, Msg(&CONFIG_MAP_KEY_SELECTOR)),
    F(4, "secretKeyRef", K, Msg(&SECRET_KEY_SELECTOR)),
    F(5, "fileKeyRef", K, Msg(&FILE_KEY_SELECTOR)),
]};

pub static CONFIG_MAP_KEY_SELECTOR: Message = Message { name: "ConfigMapKeySelector", fields: &[
    F(1, "localObjectReference", I, Msg(&super::volume::LOCAL_OBJECT_REFERENCE)),
    F(2, "key", K, Str), F(3, "optional", K, Bool),
]};

pub static SECRET_KEY_SELECTOR: Message = Message { name: "SecretKeySelector", fields: &[
    F(1, "localObjectReference", I, Msg(&super::volume::LOCAL_OBJECT_REFERENCE)),
    F(2, "key", K, Str), F(3, "optional", K, Bool),
]};

pub static FILE_KEY_SELECTOR: Message = Message { name: "FileKeySelector", fields: &[
    F(1, "volumeName", K, Str), F(2, "path", K, Str), F(3, "key", K, Str),
    F(4, "optional", K, Bool),
]};

pub static RESOURCE_REQUIREMENTS: Message = Message { name: "ResourceRequirements", fields: &[
    F(1, "limits", M, Quantity), F(2, "requests", M, Quantity),
    F(3, "claims", L, Msg(&RESOURCE_CLAIM)),
]};

pub static RESOURCE_CLAIM: Message = Message { name: "ResourceClaim", fields: &[
    F(1, "name", K, Str), F(2, "request", O, Str),
]};

pub static CONTAINER_RESIZE_POLICY: Message = Message { name: "ContainerResizePolicy", fields: &[
    F(1, "resourceName", K, Str), F(2, "restartPolicy", K, Str),
]};

pub static CONTAINER_RESTART_RULE: Message = Message { name: "ContainerRestartRule", fields: &[
    F(1, "action", O, Str), F(2, "exitCodes", K, Msg(&CONTAINER_RESTART_RULE_ON_EXIT_CODES)),
]};

pub static CONTAINER_RESTART_RULE_ON_EXIT_CODES: Message = Message { name: "ContainerRestartRuleOnExitCodes", fields: &[
    F(1, "operator", O, Str), F(2, "values", L, I32),
]};

pub static VOLUME_MOUNT: Message = Message { name: "VolumeMount", fields: &[
    F(1, "name", K, Str), F(2, "readOnly", O, Bool), F(3, "mountPath", K, Str),
    F(4, "subPath", O, Str), F(5, "mountPropagation", K, Str), F(6, "subPathExpr", O, Str),
    F(7, "recursiveReadOnly", K, Str),
]};

pub static VOLUME_DEVICE: Message = Message { name: "VolumeDevice", fields: &[
    F(1, "name", K, Str), F(2, "devicePath", K, Str),
]};

pub static PROBE: Message = Message { name: "Probe", fields: &[
    F(1, "handler", I, Msg(&PROBE_HANDLER)), F(2, "initialDelaySeconds", O, I32),
    F(3, "timeoutSeconds", O, I32), F(4, "periodSeconds", O, I32), F(5, "successThreshold", O, I32),
    F(6, "failureThreshold", O, I32), F(7, "terminationGracePeriodSeconds", K, I64),
]};

pub static PROBE_HANDLER: Message = Message { name: "ProbeHandler", fields: &[
    F(1, "exec", K, Msg(&EXEC_ACTION)), F(2, "httpGet", K, Msg(&HTTP_GET_ACTION)),
    F(3, "tcpSocket", K, Msg(&TCP_SOCKET_ACTION)), F(4, "grpc", K, Msg(&GRPC_ACTION)),
]};

pub static EXEC_ACTION: Message = Message { name: "ExecAction", fields: &[
    F(1, "command", L, Str),
]};

pub static HTTP_GET_ACTION: Message = Message { name: "HTTPGetAction", fields: &[
    F(1, "path", O, Str), F(2, "port", O, IntOrStr), F(3, "host", O, Str), F(4, "scheme", O, Str),
    F(5, "httpHeaders", L, Msg(&HTTP_HEADER)),
]};

pub static HTTP_HEADER: Message = Message { name: "HTTPHeader", fields: &[
    F(1, "name", K, Str), F(2, "value", K, Str),
]};

pub static TCP_SOCKET_ACTION: Message = Message { name: "TCPSocketAction", fields: &[
    F(1, "port", O, IntOrStr), F(2, "host", O, Str),
]};

pub static GRPC_ACTION: Message = Message { name: "GRPCAction", fields: &[
    F(1, "port", K, I32), F(2, "service", K, Str),
]};

pub static LIFECYCLE: Message = Message { name: "Lifecycle", fields: &[
    F(1, "postStart", K, Msg(&LIFECYCLE_HANDLER)), F(2, "preStop", K, Msg(&LIFECYCLE_HANDLER)),
    F(3, "stopSignal", K, Str),
]};

pub static LIFECYCLE_HANDLER: Message = Message { name: "LifecycleHandler", fields: &[
    F(1, "exec", K, Msg(&EXEC_ACTION)), F(2, "httpGet", K, Msg(&HTTP_GET_ACTION)),
    F(3, "tcpSocket", K, Msg(&TCP_SOCKET_ACTION)), F(4, "sleep", K, Msg(&SLEEP_ACTION)),
]};

pub static SLEEP_ACTION: Message = Message { name: "SleepAction", fields: &[
    F(1, "seconds", K, I64),
]};

pub static SECURITY_CONTEXT: Message = Message { name: "SecurityContext", fields: &[
    F(1, "capabilities", K, Msg(&CAPABILITIES)), F(2, "privileged", K, Bool),
    F(3, "seLinuxOptions", K, Msg(&SE_LINUX_OPTIONS)), F(4, "runAsUser", K, I64),
    F(5, "runAsNonRoot", K, Bool), F(6, "readOnlyRootFilesystem", K, Bool),
    F(7, "allowPrivilegeEscalation", K, Bool), F(8, "runAsGroup", K, I64),
    F(9, "procMount", K, Str), F(10, "windowsOptions", K, Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
    F(11, "seccompProfile", K, Msg(&SECCOMP_PROFILE)),
    F(12, "appArmorProfile", K, Msg(&APP_ARMOR_PROFILE)),
]};

pub static CAPABILITIES: Message = Message { name: "Capabilities", fields: &[
    F(1, "add", L, Str), F(2, "drop", L, Str),
]};

pub static SE_LINUX_OPTIONS: Message = Message { name: "SELinuxOptions", fields: &[
    F(1, "user", O, Str), F(2, "role", O, Str), F(3, "type", O, Str), F(4, "level", O, Str),
]};

pub static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = Message { name: "WindowsSecurityContextOptions", fields: &[
    F(1, "gmsaCredentialSpecName", K, Str), F(2, "gmsaCredentialSpec", K, Str),
    F(3, "runAsUserName", K, Str), F(4, "hostProcess", K, Bool),
]};

pub static SECCOMP_PROFILE: Message = Message { name: "SeccompProfile", fields: &[
    F(1, "type", K, Str), F(2, "localhostProfile", K, Str),
]};

pub static APP_ARMOR_PROFILE: Message = Message { name: "AppArmorProfile", fields: &[
    F(1, "type", K, Str), F(2, "localhostProfile", K, Str),
]};

pub static EPHEMERAL_CONTAINER: Message = Message { name: "EphemeralContainer", fields: &[
    F(1, "ephemeralContainerCommon", I, Msg(&EPHEMERAL_CONTAINER_COMMON)),
    F(2, "targetContainerName", O, Str),
]};

pub static EPHEMERAL_CONTAINER_COMMON: Message = Message { name: "EphemeralContainerCommon", fields: &[
    F(1, "name", K, Str), F(2, "image", O, Str), F(3, "command", L, Str), F(4, "args", L, Str),
    F(5, "workingDir", O, Str), F(6, "ports", L, Msg(&CONTAINER_PORT)),
    F(7, "env", L, Msg(&ENV_VAR)), F(8, "resources", O, Msg(&RESOURCE_REQUIREMENTS)),
    F(9, "volumeMounts", L, Msg(&VOLUME_MOUNT)), F(10, "livenessProbe", K, Msg(&PROBE)),
    F(11, "readinessProbe", K, Msg(&PROBE)), F(12, "lifecycle", K, Msg(&LIFECYCLE)),
    F(13, "terminationMessagePath", O, Str), F(14, "imagePullPolicy", O, Str),
    F(15, "securityContext", K, Msg(&SECURITY_CONTEXT)), F(16, "stdin", O, Bool),
    F(17, "stdinOnce", O, Bool), F(18, "tty", O, Bool), F(19, "envFrom", L, Msg(&ENV_FROM_SOURCE)),
    F(20, "terminationMessagePolicy", O, Str), F(21, "volumeDevices", L, Msg(&VOLUME_DEVICE)),
    F(22, "startupProbe", K, Msg(&PROBE)), F(23, "resizePolicy", L, Msg(&CONTAINER_RESIZE_POLICY)),
    F(24, "restartPolicy", K, Str), F(25, "restartPolicyRules", L, Msg(&CONTAINER_RESTART_RULE)),
]};

pub static POD_SECURITY_CONTEXT: Message = Message { name: "PodSecurityContext", fields: &[
    F(1, "seLinuxOptions", K, Msg(&SE_LINUX_OPTIONS)), F(2, "runAsUser", K, I64),
    F(3, "runAsNonRoot", K, Bool), F(4, "supplementalGroups", L, I64), F(5, "fsGroup", K, I64),
    F(6, "runAsGroup", K, I64), F(7, "sysctls", L, Msg(&SYSCTL)),
    F(8, "windowsOptions", K, Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
    F(9, "fsGroupChangePolicy", K, Str), F(10, "seccompProfile", K, Msg(&SECCOMP_PROFILE)),
    F(11, "appArmorProfile", K, Msg(&APP_ARMOR_PROFILE)), F(12, "supplementalGroupsPolicy", K, Str),
    F(13, "seLinuxChangePolicy", K, Str),
]};

pub static SYSCTL: Message = Message { name: "Sysctl", fields: &[
    F(1, "name", K, Str), F(2, "value", K, Str),
]};

pub static AFFINITY: Message = Message { name: "Affinity", fields: &[
    F(1, "nodeAffinity", K, Msg(&NODE_AFFINITY)), F(2, "podAffinity", K, Msg(&POD_AFFINITY)),
    F(3, "podAntiAffinity", K, Msg(&POD_ANTI_AFFINITY)),
]};

pub static NODE_AFFINITY: Message = Message { name: "NodeAffinity", fields: &[
    F(1, "requiredDuringSchedulingIgnoredDuringExecution", K, Msg(&NODE_SELECTOR)),
    F(2, "preferredDuringSchedulingIgnoredDuringExecution", L, Msg(&PREFERRED_SCHEDULING_TERM)),
]};

pub static NODE_SELECTOR: Message = Message { name: "NodeSelector", fields: &[
    F(1, "nodeSelectorTerms", L, Msg(&NODE_SELECTOR_TERM)),
]};

pub static NODE_SELECTOR_TERM: Message = Message { name: "NodeSelectorTerm", fields: &[
    F(1, "matchExpressions", L, Msg(&NODE_SELECTOR_REQUIREMENT)),
    F(2, "matchFields", L, Msg(&NODE_SELECTOR_REQUIREMENT)),
]};

pub static NODE_SELECTOR_REQUIREMENT: Message = Message { name: "NodeSelectorRequirement", fields: &[
    F(1, "key", K, Str), F(2, "operator", K, Str), F(3, "values", L, Str),
]};

pub static PREFERRED_SCHEDULING_TERM: Message = Message { name: "PreferredSchedulingTerm", fields: &[
    F(1, "weight", K, I32), F(2, "preference", O, Msg(&NODE_SELECTOR_TERM)),
]};

pub static POD_AFFINITY: Message = Message { name: "PodAffinity", fields: &[
    F(1, "requiredDuringSchedulingIgnoredDuringExecution", L, Msg(&POD_AFFINITY_TERM)),
    F(2, "preferredDuringSchedulingIgnoredDuringExecution", L, Msg(&WEIGHTED_POD_AFFINITY_TERM)),
]};

pub static POD_AFFINITY_TERM: Message = Message { name: "PodAffinityTerm", fields: &[
    F(1, "labelSelector", K, Msg(&super::meta::LABEL_SELECTOR)), F(2, "namespaces", L, Str),
    F(3, "topologyKey", K, Str), F(4, "namespaceSelector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(5, "matchLabelKeys", L, Str), F(6, "mismatchLabelKeys", L, Str),
]};

pub static WEIGHTED_POD_AFFINITY_TERM: Message = Message { name: "WeightedPodAffinityTerm", fields: &[
    F(1, "weight", K, I32), F(2, "podAffinityTerm", O, Msg(&POD_AFFINITY_TERM)),
]};

pub static POD_ANTI_AFFINITY: Message = Message { name: "PodAntiAffinity", fields: &[
    F(1, "requiredDuringSchedulingIgnoredDuringExecution", L, Msg(&POD_AFFINITY_TERM)),
    F(2, "preferredDuringSchedulingIgnoredDuringExecution", L, Msg(&WEIGHTED_POD_AFFINITY_TERM)),
]};

pub static TOLERATION: Message = Message { name: "Toleration", fields: &[
    F(1, "key", O, Str), F(2, "operator", O, Str), F(3, "value", O, Str), F(4, "effect", O, Str),
    F(5, "tolerationSeconds", K, I64),
]};

pub static HOST_ALIAS: Message = Message { name: "HostAlias", fields: &[
    F(1, "ip", K, Str), F(2, "hostnames", L, Str),
]};

pub static POD_DNS_CONFIG: Message = Message { name: "PodDNSConfig", fields: &[
    F(1, "nameservers", L, Str), F(2, "searches", L, Str),
    F(3, "options", L, Msg(&POD_DNS_CONFIG_OPTION)),
]};

pub static POD_DNS_CONFIG_OPTION: Message = Message { name: "PodDNSConfigOption", fields: &[
    F(1, "name", O, Str), F(2, "value", K, Str),
]};

pub static POD_READINESS_GATE: Message = Message { name: "PodReadinessGate", fields: &[
    F(1, "conditionType", K, Str),
]};

pub static TOPOLOGY_SPREAD_CONSTRAINT: Message = Message { name: "TopologySpreadConstraint", fields: &[
    F(1, "maxSkew", K, I32), F(2, "topologyKey", K, Str), F(3, "whenUnsatisfiable", K, Str),
    F(4, "labelSelector", K, Msg(&super::meta::LABEL_SELECTOR)), F(5, "minDomains", K, I32),
    F(6, "nodeAffinityPolicy", K, Str), F(7, "nodeTaintsPolicy", K, Str),
    F(8, "matchLabelKeys", L, Str),
]};

pub static POD_OS: Message = Message { name: "PodOS", fields: &[
    F(1, "name", K, Str),
]};

pub static POD_SCHEDULING_GATE: Message = Message { name: "PodSchedulingGate", fields: &[
    F(1, "name", K, Str),
]};

pub static POD_RESOURCE_CLAIM: Message = Message { name: "PodResourceClaim", fields: &[
    F(1, "name", K, Str), F(3, "resourceClaimName", K, Str),
    F(4, "resourceClaimTemplateName", K, Str),
]};

pub static WORKLOAD_REFERENCE: Message = Message { name: "WorkloadReference", fields: &[
    F(1, "name", K, Str), F(2, "podGroup", K, Str), F(3, "podGroupReplicaKey", O, Str),
]};
