//! `ContainerRuntime` for `Runtime`: each method boxes the inherent async method.

use std::path::Path;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::cri::*;
use crate::daemon::Runtime;

impl ContainerRuntime for Runtime {
    fn run_pod_sandbox<'a>(&'a self, config: &'a PodSandboxConfig) -> BoxFut<'a, SandboxId> {
        Box::pin(Runtime::run_pod_sandbox(self, config))
    }
    fn stop_pod_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFut<'a, ()> {
        Box::pin(Runtime::stop_pod_sandbox(self, id))
    }
    fn remove_pod_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFut<'a, ()> {
        Box::pin(Runtime::remove_pod_sandbox(self, id))
    }
    fn pod_sandbox_status<'a>(&'a self, id: &'a SandboxId) -> BoxFut<'a, PodSandboxStatus> {
        Box::pin(Runtime::pod_sandbox_status(self, id))
    }
    fn list_pod_sandboxes(&self) -> BoxFut<'_, Vec<PodSandboxStatus>> {
        Box::pin(Runtime::list_pod_sandboxes(self))
    }
    fn create_container<'a>(
        &'a self,
        sandbox: &'a SandboxId,
        config: &'a ContainerConfig,
    ) -> BoxFut<'a, ContainerId> {
        Box::pin(Runtime::create_container(self, sandbox, config))
    }
    fn start_container<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ()> {
        Box::pin(Runtime::start_container(self, id))
    }
    fn stop_container<'a>(&'a self, id: &'a ContainerId, timeout: Duration) -> BoxFut<'a, ()> {
        Box::pin(Runtime::stop_container(self, id, timeout))
    }
    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ()> {
        Box::pin(Runtime::remove_container(self, id))
    }
    fn container_status<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ContainerStatus> {
        Box::pin(Runtime::container_status(self, id))
    }
    fn reopen_container_log<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ()> {
        Box::pin(Runtime::reopen_container_log(self, id))
    }
    fn list_containers(&self) -> BoxFut<'_, Vec<ContainerStatus>> {
        Box::pin(Runtime::list_containers(self))
    }
    fn container_stats<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ContainerStats> {
        Box::pin(Runtime::container_stats(self, id))
    }
    fn exec_sync<'a>(
        &'a self,
        id: &'a ContainerId,
        cmd: &'a [String],
        timeout: Duration,
    ) -> BoxFut<'a, ExecResult> {
        Box::pin(Runtime::exec_sync(self, id, cmd, timeout))
    }
    fn events(&self) -> broadcast::Receiver<ContainerExitEvent> {
        self.events.subscribe()
    }
    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        options: &'a PullOptions,
    ) -> BoxFut<'a, ImageStatus> {
        Box::pin(Runtime::pull_image_with(self, reference, options))
    }
    fn import_image<'a>(&'a self, archive: &'a Path) -> BoxFut<'a, Vec<ImageStatus>> {
        Box::pin(Runtime::import_image(self, archive))
    }
    fn image_status<'a>(&'a self, reference: &'a str) -> BoxFut<'a, Option<ImageStatus>> {
        Box::pin(Runtime::image_status(self, reference))
    }
    fn list_images(&self) -> BoxFut<'_, Vec<ImageStatus>> {
        Box::pin(Runtime::list_images(self))
    }
    fn remove_image<'a>(&'a self, reference: &'a str) -> BoxFut<'a, ()> {
        Box::pin(Runtime::remove_image(self, reference))
    }
}

impl Runtime {
    /// Exit events as they happen (see `ContainerRuntime::events`).
    pub fn events(&self) -> broadcast::Receiver<ContainerExitEvent> {
        self.events.subscribe()
    }
}
