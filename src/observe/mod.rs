//! What an operator sees of the hub: Prometheus metrics (`metrics`: the
//! recorder, the series, a scrape), the store's operations measured
//! (`store`), every HTTP request counted and logged (`http`), the log set
//! up from `[log]` (`log`). May use:
//! `config`, `cluster`, the store interface.

pub mod http;
pub mod log;
pub mod metrics;
pub mod store;

pub use self::metrics::{recorder, Scrape, SERIES};
