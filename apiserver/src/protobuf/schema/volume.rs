//! volume: field tables for `k8s.io.api.core.v1 (volumes)`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static VOLUME: Message = Message { name: "Volume", fields: &[
    F(1, "name", K, Str), F(2, "volumeSource", I, Msg(&VOLUME_SOURCE)),
]};

pub static VOLUME_SOURCE: Message = Message { name: "VolumeSource", fields: &[
    F(1, "hostPath", K, Msg(&HOST_PATH_VOLUME_SOURCE)),
    F(2, "emptyDir", K, Msg(&EMPTY_DIR_VOLUME_SOURCE)),
    F(3, "gcePersistentDisk", K, Msg(&GCE_PERSISTENT_DISK_VOLUME_SOURCE)),
    F(4, "awsElasticBlockStore", K, Msg(&AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE)),
    F(5, "gitRepo", K, Msg(&GIT_REPO_VOLUME_SOURCE)), F(6, "secret", K, Msg(&SECRET_VOLUME_SOURCE)),
    F(7, "nfs", K, Msg(&NFS_VOLUME_SOURCE)), F(8, "iscsi", K, Msg(&ISCSI_VOLUME_SOURCE)),
    F(9, "glusterfs", K, Msg(&GLUSTERFS_VOLUME_SOURCE)),
    F(10, "persistentVolumeClaim", K, Msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE)),
    F(11, "rbd", K, Msg(&RBD_VOLUME_SOURCE)), F(12, "flexVolume", K, Msg(&FLEX_VOLUME_SOURCE)),
    F(13, "cinder", K, Msg(&CINDER_VOLUME_SOURCE)), F(14, "cephfs", K, Msg(&CEPH_FS_VOLUME_SOURCE)),
    F(15, "flocker", K, Msg(&FLOCKER_VOLUME_SOURCE)),
    F(16, "downwardAPI", K, Msg(&DOWNWARD_API_VOLUME_SOURCE)),
    F(17, "fc", K, Msg(&FC_VOLUME_SOURCE)), F(18, "azureFile", K, Msg(&AZURE_FILE_VOLUME_SOURCE)),
    F(19, "configMap", K, Msg(&CONFIG_MAP_VOLUME_SOURCE)),
    F(20, "vsphereVolume", K, Msg(&VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE)),
    F(21, "quobyte", K, Msg(&QUOBYTE_VOLUME_SOURCE)),
    F(22, "azureDisk", K, Msg(&AZURE_DISK_VOLUME_SOURCE)),
    F(23, "photonPersistentDisk", K, Msg(&PHOTON_PERSISTENT_DISK_VOLUME_SOURCE)),
    F(24, "portworxVolume", K, Msg(&PORTWORX_VOLUME_SOURCE)),
    F(25, "scaleIO", K, Msg(&SCALE_IO_VOLUME_SOURCE)),
    F(26, "projected", K, Msg(&PROJECTED_VOLUME_SOURCE)),
    F(27, "storageos", K, Msg(&STORAGE_OS_VOLUME_SOURCE)), F(28, "csi", K, Msg(&CSI_VOLUME_SOURCE)),
    F(29, "ephemeral", K, Msg(&EPHEMERAL_VOLUME_SOURCE)),
    F(30, "image", K, Msg(&IMAGE_VOLUME_SOURCE)),
]};

pub static HOST_PATH_VOLUME_SOURCE: Message = Message { name: "HostPathVolumeSource", fields: &[
    F(1, "path", K, Str), F(2, "type", K, Str),
]};

pub static EMPTY_DIR_VOLUME_SOURCE: Message = Message { name: "EmptyDirVolumeSource", fields: &[
    F(1, "medium", O, Str), F(2, "sizeLimit", K, Quantity),
]};

pub static GCE_PERSISTENT_DISK_VOLUME_SOURCE: Message = Message { name: "GCEPersistentDiskVolumeSource", fields: &[
    F(1, "pdName", K, Str), F(2, "fsType", O, Str), F(3, "partition", O, I32),
    F(4, "readOnly", O, Bool),
]};

pub static AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Message = Message { name: "AWSElasticBlockStoreVolumeSource", fields: &[
    F(1, "volumeID", K, Str), F(2, "fsType", O, Str), F(3, "partition", O, I32),
    F(4, "readOnly", O, Bool),
]};

pub static GIT_REPO_VOLUME_SOURCE: Message = Message { name: "GitRepoVolumeSource", fields: &[
    F(1, "repository", K, Str), F(2, "revision", O, Str), F(3, "directory", O, Str),
]};

pub static SECRET_VOLUME_SOURCE: Message = Message { name: "SecretVolumeSource", fields: &[
    F(1, "secretName", O, Str), F(2, "items", L, Msg(&KEY_TO_PATH)), F(3, "defaultMode", K, I32),
    F(4, "optional", K, Bool),
]};

pub static KEY_TO_PATH: Message = Message { name: "KeyToPath", fields: &[
    F(1, "key", K, Str), F(2, "path", K, Str), F(3, "mode", K, I32),
]};

pub static NFS_VOLUME_SOURCE: Message = Message { name: "NFSVolumeSource", fields: &[
    F(1, "server", K, Str), F(2, "path", K, Str), F(3, "readOnly", O, Bool),
]};

pub static ISCSI_VOLUME_SOURCE: Message = Message { name: "ISCSIVolumeSource", fields: &[
    F(1, "targetPortal", K, Str), F(2, "iqn", K, Str), F(3, "lun", K, I32),
    F(4, "iscsiInterface", O, Str), F(5, "fsType", O, Str), F(6, "readOnly", O, Bool),
    F(7, "portals", L, Str), F(8, "chapAuthDiscovery", O, Bool),
    F(10, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)), F(11, "chapAuthSession", O, Bool),
    F(12, "initiatorName", K, Str),
]};

pub static LOCAL_OBJECT_REFERENCE: Message = Message { name: "LocalObjectReference", fields: &[
    F(1, "name", O, Str),
]};

pub static GLUSTERFS_VOLUME_SOURCE: Message = Message { name: "GlusterfsVolumeSource", fields: &[
    F(1, "endpoints", K, Str), F(2, "path", K, Str), F(3, "readOnly", O, Bool),
]};

pub static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message = Message { name: "PersistentVolumeClaimVolumeSource", fields: &[
    F(1, "claimName", K, Str), F(2, "readOnly", O, Bool),
]};

pub static RBD_VOLUME_SOURCE: Message = Message { name: "RBDVolumeSource", fields: &[
    F(1, "monitors", L, Str), F(2, "image", K, Str), F(3, "fsType", O, Str), F(4, "pool", O, Str),
    F(5, "user", O, Str), F(6, "keyring", O, Str),
    F(7, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)), F(8, "readOnly", O, Bool),
]};

pub static FLEX_VOLUME_SOURCE: Message = Message { name: "FlexVolumeSource", fields: &[
    F(1, "driver", K, Str), F(2, "fsType", O, Str),
    F(3, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)), F(4, "readOnly", O, Bool),
    F(5, "options", M, Str),
]};

pub static CINDER_VOLUME_SOURCE: Message = Message { name: "CinderVolumeSource", fields: &[
    F(1, "volumeID", K, Str), F(2, "fsType", O, Str), F(3, "readOnly", O, Bool),
    F(4, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)),
]};

pub static CEPH_FS_VOLUME_SOURCE: Message = Message { name: "CephFSVolumeSource", fields: &[
    F(1, "monitors", L, Str), F(2, "path", O, Str), F(3, "user", O, Str),
    F(4, "secretFile", O, Str), F(5, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)),
    F(6, "readOnly", O, Bool),
]};

pub static FLOCKER_VOLUME_SOURCE: Message = Message { name: "FlockerVolumeSource", fields: &[
    F(1, "datasetName", O, Str), F(2, "datasetUUID", O, Str),
]};

pub static DOWNWARD_API_VOLUME_SOURCE: Message = Message { name: "DownwardAPIVolumeSource", fields: &[
    F(1, "items", L, Msg(&DOWNWARD_API_VOLUME_FILE)), F(2, "defaultMode", K, I32),
]};

pub static DOWNWARD_API_VOLUME_FILE: Message = Message { name: "DownwardAPIVolumeFile", fields: &[
    F(1, "path", K, Str), F(2, "fieldRef", K, Msg(&OBJECT_FIELD_SELECTOR)),
    F(3, "resourceFieldRef", K, Msg(&RESOURCE_FIELD_SELECTOR)), F(4, "mode", K, I32),
]};

pub static OBJECT_FIELD_SELECTOR: Message = Message { name: "ObjectFieldSelector", fields: &[
    F(1, "apiVersion", O, Str), F(2, "fieldPath", K, Str),
]};

pub static RESOURCE_FIELD_SELECTOR: Message = Message { name: "ResourceFieldSelector", fields: &[
    F(1, "containerName", O, Str), F(2, "resource", K, Str), F(3, "divisor", O, Quantity),
]};

pub static FC_VOLUME_SOURCE: Message = Message { name: "FCVolumeSource", fields: &[
    F(1, "targetWWNs", L, Str), F(2, "lun", K, I32), F(3, "fsType", O, Str),
    F(4, "readOnly", O, Bool), F(5, "wwids", L, Str),
]};

pub static AZURE_FILE_VOLUME_SOURCE: Message = Message { name: "AzureFileVolumeSource", fields: &[
    F(1, "secretName", K, Str), F(2, "shareName", K, Str), F(3, "readOnly", O, Bool),
]};

pub static CONFIG_MAP_VOLUME_SOURCE: Message = Message { name: "ConfigMapVolumeSource", fields: &[
    F(1, "localObjectReference", I, Msg(&LOCAL_OBJECT_REFERENCE)),
    F(2, "items", L, Msg(&KEY_TO_PATH)), F(3, "defaultMode", K, I32), F(4, "optional", K, Bool),
]};

pub static VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Message = Message { name: "VsphereVirtualDiskVolumeSource", fields: &[
    F(1, "volumePath", K, Str), F(2, "fsType", O, Str), F(3, "storagePolicyName", O, Str),
    F(4, "storagePolicyID", O, Str),
]};

pub static QUOBYTE_VOLUME_SOURCE: Message = Message { name: "QuobyteVolumeSource", fields: &[
    F(1, "registry", K, Str), F(2, "volume", K, Str), F(3, "readOnly", O, Bool),
    F(4, "user", O, Str), F(5, "group", O, Str), F(6, "tenant", O, Str),
]};

pub static AZURE_DISK_VOLUME_SOURCE: Message = Message { name: "AzureDiskVolumeSource", fields: &[
    F(1, "diskName", K, Str), F(2, "diskURI", K, Str), F(3, "cachingMode", K, Str),
    F(4, "fsType", K, Str), F(5, "readOnly", K, Bool), F(6, "kind", K, Str),
]};

pub static PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Message = Message { name: "PhotonPersistentDiskVolumeSource", fields: &[
    F(1, "pdID", K, Str), F(2, "fsType", O, Str),
]};

pub static PROJECTED_VOLUME_SOURCE: Message = Message { name: "ProjectedVolumeSource", fields: &[
    F(1, "sources", L, Msg(&VOLUME_PROJECTION)), F(2, "defaultMode", K, I32),
]};

pub static VOLUME_PROJECTION: Message = Message { name: "VolumeProjection", fields: &[
    F(1, "secret", K, Msg(&SECRET_PROJECTION)),
    F(2, "downwardAPI", K, Msg(&DOWNWARD_API_PROJECTION)),
    F(3, "configMap", K, Msg(&CONFIG_MAP_PROJECTION)),
    F(4, "serviceAccountToken", K, Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION)),
    F(5, "clusterTrustBundle", K, Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION)),
    F(6, "podCertificate", K, Msg(&POD_CERTIFICATE_PROJECTION)),
]};

pub static SECRET_PROJECTION: Message = Message { name: "SecretProjection", fields: &[
    F(1, "localObjectReference", I, Msg(&LOCAL_OBJECT_REFERENCE)),
    F(2, "items", L, Msg(&KEY_TO_PATH)), F(4, "optional", K, Bool),
]};

pub static DOWNWARD_API_PROJECTION: Message = Message { name: "DownwardAPIProjection", fields: &[
    F(1, "items", L, Msg(&DOWNWARD_API_VOLUME_FILE)),
]};

pub static CONFIG_MAP_PROJECTION: Message = Message { name: "ConfigMapProjection", fields: &[
    F(1, "localObjectReference", I, Msg(&LOCAL_OBJECT_REFERENCE)),
    F(2, "items", L, Msg(&KEY_TO_PATH)), F(4, "optional", K, Bool),
]};

pub static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = Message { name: "ServiceAccountTokenProjection", fields: &[
    F(1, "audience", O, Str), F(2, "expirationSeconds", K, I64), F(3, "path", K, Str),
]};

pub static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = Message { name: "ClusterTrustBundleProjection", fields: &[
    F(1, "name", K, Str), F(2, "signerName", K, Str),
    F(3, "labelSelector", K, Msg(&super::meta::LABEL_SELECTOR)), F(4, "path", K, Str),
    F(5, "optional", K, Bool),
]};

pub static POD_CERTIFICATE_PROJECTION: Message = Message { name: "PodCertificateProjection", fields: &[
    F(1, "signerName", O, Str), F(2, "keyType", O, Str), F(3, "maxExpirationSeconds", K, I32),
    F(4, "credentialBundlePath", O, Str), F(5, "keyPath", O, Str),
    F(6, "certificateChainPath", O, Str), F(7, "userAnnotations", M, Str),
]};

pub static PORTWORX_VOLUME_SOURCE: Message = Message { name: "PortworxVolumeSource", fields: &[
    F(1, "volumeID", K, Str), F(2, "fsType", O, Str), F(3, "readOnly", O, Bool),
]};

pub static SCALE_IO_VOLUME_SOURCE: Message = Message { name: "ScaleIOVolumeSource", fields: &[
    F(1, "gateway", K, Str), F(2, "system", K, Str),
    F(3, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)), F(4, "sslEnabled", O, Bool),
    F(5, "protectionDomain", O, Str), F(6, "storagePool", O, Str), F(7, "storageMode", O, Str),
    F(8, "volumeName", O, Str), F(9, "fsType", O, Str), F(10, "readOnly", O, Bool),
]};

pub static STORAGE_OS_VOLUME_SOURCE: Message = Message { name: "StorageOSVolumeSource", fields: &[
    F(1, "volumeName", O, Str), F(2, "volumeNamespace", O, Str), F(3, "fsType", O, Str),
    F(4, "readOnly", O, Bool), F(5, "secretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)),
]};

pub static CSI_VOLUME_SOURCE: Message = Message { name: "CSIVolumeSource", fields: &[
    F(1, "driver", K, Str), F(2, "readOnly", K, Bool), F(3, "fsType", K, Str),
    F(4, "volumeAttributes", M, Str), F(5, "nodePublishSecretRef", K, Msg(&LOCAL_OBJECT_REFERENCE)),
]};

pub static EPHEMERAL_VOLUME_SOURCE: Message = Message { name: "EphemeralVolumeSource", fields: &[
    F(1, "volumeClaimTemplate", K, Msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE)),
]};

pub static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Message = Message { name: "PersistentVolumeClaimTemplate", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)),
    F(2, "spec", O, Msg(&PERSISTENT_VOLUME_CLAIM_SPEC)),
]};

pub static PERSISTENT_VOLUME_CLAIM_SPEC: Message = Message { name: "PersistentVolumeClaimSpec", fields: &[
    F(1, "accessModes", L, Str), F(2, "resources", O, Msg(&VOLUME_RESOURCE_REQUIREMENTS)),
    F(3, "volumeName", O, Str), F(4, "selector", K, Msg(&super::meta::LABEL_SELECTOR)),
    F(5, "storageClassName", K, Str), F(6, "volumeMode", K, Str),
    F(7, "dataSource", K, Msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
    F(8, "dataSourceRef", K, Msg(&TYPED_OBJECT_REFERENCE)),
    F(9, "volumeAttributesClassName", K, Str),
]};

pub static VOLUME_RESOURCE_REQUIREMENTS: Message = Message { name: "VolumeResourceRequirements", fields: &[
    F(1, "limits", M, Quantity), F(2, "requests", M, Quantity),
]};

pub static TYPED_LOCAL_OBJECT_REFERENCE: Message = Message { name: "TypedLocalObjectReference", fields: &[
    F(1, "apiGroup", K, Str), F(2, "kind", K, Str), F(3, "name", K, Str),
]};

pub static TYPED_OBJECT_REFERENCE: Message = Message { name: "TypedObjectReference", fields: &[
    F(1, "apiGroup", K, Str), F(2, "kind", K, Str), F(3, "name", K, Str), F(4, "namespace", K, Str),
]};

pub static IMAGE_VOLUME_SOURCE: Message = Message { name: "ImageVolumeSource", fields: &[
    F(1, "reference", O, Str), F(2, "pullPolicy", O, Str),
]};
