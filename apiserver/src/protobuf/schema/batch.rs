//! batch: field tables for `k8s.io.api.batch.v1`, from generated.proto and types.go of kubernetes/api and
//! kubernetes/apimachinery v0.35.7.
//!
//! Written by `../gen_schema.py`; change its roots and rerun it rather than editing by hand.

#[allow(unused_imports)]
use super::Kind::{Inline as I, Keep as K, List as L, Map as M, Omit as O};
#[allow(unused_imports)]
use super::Ty::*;
use super::{Message, F};

pub static JOB: Message = Message { name: "Job", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&JOB_SPEC)),
]};

pub static JOB_SPEC: Message = Message { name: "JobSpec", fields: &[
    F(1, "parallelism", K, I32), F(2, "completions", K, I32), F(3, "activeDeadlineSeconds", K, I64),
    F(4, "selector", K, Msg(&super::meta::LABEL_SELECTOR)), F(5, "manualSelector", K, Bool),
    F(6, "template", O, Msg(&super::core::POD_TEMPLATE_SPEC)), F(7, "backoffLimit", K, I32),
    F(8, "ttlSecondsAfterFinished", K, I32), F(9, "completionMode", K, Str),
    F(10, "suspend", K, Bool), F(11, "podFailurePolicy", K, Msg(&POD_FAILURE_POLICY)),
    F(12, "backoffLimitPerIndex", K, I32), F(13, "maxFailedIndexes", K, I32),
    F(14, "podReplacementPolicy", K, Str), F(15, "managedBy", K, Str),
    F(16, "successPolicy", K, Msg(&SUCCESS_POLICY)),
]};

pub static POD_FAILURE_POLICY: Message = Message { name: "PodFailurePolicy", fields: &[
    F(1, "rules", L, Msg(&POD_FAILURE_POLICY_RULE)),
]};

pub static POD_FAILURE_POLICY_RULE: Message = Message { name: "PodFailurePolicyRule", fields: &[
    F(1, "action", K, Str),
    F(2, "onExitCodes", K, Msg(&POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT)),
    F(3, "onPodConditions", L, Msg(&POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN)),
]};

pub static POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT: Message = Message { name: "PodFailurePolicyOnExitCodesRequirement", fields: &[
    F(1, "containerName", K, Str), F(2, "operator", K, Str), F(3, "values", L, I32),
]};

pub static POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN: Message = Message { name: "PodFailurePolicyOnPodConditionsPattern", fields: &[
    F(1, "type", K, Str), F(2, "status", K, Str),
]};

pub static SUCCESS_POLICY: Message = Message { name: "SuccessPolicy", fields: &[
    F(1, "rules", L, Msg(&SUCCESS_POLICY_RULE)),
]};

pub static SUCCESS_POLICY_RULE: Message = Message { name: "SuccessPolicyRule", fields: &[
    F(1, "succeededIndexes", K, Str), F(2, "succeededCount", K, I32),
]};

pub static CRON_JOB: Message = Message { name: "CronJob", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&CRON_JOB_SPEC)),
]};

pub static CRON_JOB_SPEC: Message = Message { name: "CronJobSpec", fields: &[
    F(1, "schedule", K, Str), F(2, "startingDeadlineSeconds", K, I64),
    F(3, "concurrencyPolicy", O, Str), F(4, "suspend", K, Bool),
    F(5, "jobTemplate", O, Msg(&JOB_TEMPLATE_SPEC)), F(6, "successfulJobsHistoryLimit", K, I32),
    F(7, "failedJobsHistoryLimit", K, I32), F(8, "timeZone", K, Str),
]};

pub static JOB_TEMPLATE_SPEC: Message = Message { name: "JobTemplateSpec", fields: &[
    F(1, "metadata", O, Msg(&super::meta::OBJECT_META)), F(2, "spec", O, Msg(&JOB_SPEC)),
]};
