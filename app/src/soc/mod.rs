//! The SOC half of the console: Insights (a query manager running Logs Insights queries in the
//! background, CSV export, charts of `stats … by bin()`) and user investigation (a user's
//! timeline, opening vault records with a stated reason, audited first).
//!
//! - [`api`] (both sides): the server functions and the types the pages exchange.
//! - [`highlight`] (both sides): the Insights editor's colouring.
//! - Server only: [`queries`] (StartQuery / GetQueryResults / StopQuery), [`server`] (the
//!   functions' bodies), [`csv`], [`chart`], [`handoff`] (records opened by a plain form post,
//!   waiting for their page).

pub mod api;
pub mod highlight;

#[cfg(feature = "ssr")]
pub mod chart;
#[cfg(feature = "ssr")]
pub mod csv;
#[cfg(feature = "ssr")]
pub mod handoff;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "ssr")]
pub use ssr_only::Soc;

#[cfg(feature = "ssr")]
mod ssr_only {
    use std::sync::Arc;

    use gateway::insights::InsightsBackend;
    use gateway::vault::Vault;

    use super::handoff::Handoff;
    use super::queries::{Limits, QueryManager};

    /// The backends the SOC pages use, shared by every request.
    #[derive(Clone)]
    pub struct Soc {
        pub queries: QueryManager,
        /// For the investigation timeline (run directly, not through the manager).
        pub insights: Arc<dyn InsightsBackend>,
        pub vault: Vault,
        /// Records opened without JavaScript, waiting for their page.
        pub handoff: Arc<Handoff>,
    }

    impl Soc {
        pub fn new(insights: Arc<dyn InsightsBackend>, vault: Vault) -> Soc {
            Soc {
                queries: QueryManager::new(insights.clone(), Limits::default()),
                insights,
                vault,
                handoff: Arc::new(Handoff::default()),
            }
        }
    }
}
