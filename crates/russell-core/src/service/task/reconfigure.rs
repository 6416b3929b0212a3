//! A reload's new values for a running task: the service's config and its dependency specs
//! are replaced, and the status shows the new static fields at once. The process is not
//! touched; the actor sends a restart after this where the change needs one (see
//! `russell_config::diff`). Timers read the new values from their next arming on (a
//! changed health-check interval applies from the next probe).

use std::sync::Arc;

use russell_config::Service;

use super::ServiceTask;
use crate::service::DepSpec;

impl ServiceTask {
    pub(super) fn reconfigure(&mut self, svc: Arc<Service>, deps: Vec<DepSpec>) {
        let s = &mut self.status;
        s.name.clone_from(&svc.name);
        s.description.clone_from(&svc.description);
        s.version.clone_from(&svc.version);
        s.grpc_port = svc.grpc_port;
        s.http_port = svc.http_port;
        s.command.clone_from(&svc.command);
        s.max_retries = svc.max_retries;
        s.dependencies.clone_from(&svc.dependencies);
        s.enabled = svc.enabled;
        // Warnings about optional externals were for the old dependency list.
        if deps != self.deps {
            self.warned_optional.clear();
        }
        self.deps = deps;
        self.svc = svc;
    }
}
