//! The gateway's shared state: configuration and the backends chosen by it, built once at
//! start-up and shared by every request (and by the console when it runs in the same process).

use std::sync::Arc;

use crate::audit::AuditStore;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub audit: Arc<dyn AuditStore>,
}

impl AppState {
    /// Build every backend the configuration names; fails with a clear message otherwise.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let _ = config;
        anyhow::bail!("not yet")
    }
}
